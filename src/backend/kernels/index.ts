/**
 * Kernel fixes that make the tfjs 4.22 wasm backend sound and fast for nngeometry's needs
 * (substrate.md sections 1 and 5):
 * - BatchMatMul / _FusedMatMul: explicit transposes, so transposed products reach XNNPACK (10-18x),
 *   and a correct bias add for fused products of batched or transposed matrices; single
 *   (unbatched) BatchMatMul products run in nngeometry's SIMD GEMM instead (1.1-2.9x faster);
 * - MaxPoolGrad: the stock kernel drops gradients of windows whose maximum is ≤ 0;
 * - Conv2DBackpropFilter (missing) and Conv2DBackpropInput (slow): nngeometry's fused WebAssembly
 *   SIMD kernels (im2col / col2im by chunks + 4×8-tile GEMM); without WebAssembly SIMD, im2col /
 *   col2im + XNNPACK matmul or, for stride-1 input gradients, an XNNPACK convolution with the
 *   flipped filter;
 * - Conv2D / FusedConv2D (NHWC, dilation 1, bias, linear or relu, from 32 input channels):
 *   nngeometry's SIMD implicit GEMM; everything else on the stock XNNPACK kernel;
 * - Tile (per-element index arithmetic; BatchNormalization's gradient tiles its statistics):
 *   block copies;
 * - Slice (the stock kernel copies the whole input out of the heap for any slice): block copies;
 * - DepthwiseConv2dNativeBackpropInput / …Filter and UnsortedSegmentSum (missing): JS loops;
 * - Conv3DBackpropInputV2 / …FilterV2 (wrong): the cpu backend's kernels, through a bridge.
 * Only kernels registered under backend 'wasm' change; without tfjs-backend-wasm this is a no-op.
 * The SIMD kernels (wasm/simd_kernels.c, src/backend/kernels/simd) load synchronously on first use
 * and can be turned off with `setSimdKernelsEnabled(false)`; `symmetricRankUpdate` computes XᵀX.
 */
import { InvalidArgumentError } from '../../errors.js';
import { checkOptions, describe } from '../../validation.js';
import { fixesInstalled, installFixes, uninstallFixes, wasmKernelsRegistered } from './install.js';
import { runKernelSelfTest, type KernelSelfTestResult } from './self_test.js';

export type { KernelSelfTestResult } from './self_test.js';
export {
  preloadSimdKernels,
  releaseSimdMemory,
  setSimdKernelsEnabled,
  simdKernelsInfo,
  symmetricRankUpdate,
} from './simd/index.js';
export { SELF_TEST_TOLERANCE } from './self_test.js';

/** What `installKernelFixes` did. */
export interface KernelFixReport {
  /** The backend whose kernels are patched: always 'wasm'. */
  backend: string;
  /** Names of the kernels now replaced or added on wasm; empty when tfjs-backend-wasm is absent. */
  installed: string[];
  /** Per-kernel comparison with the cpu backend, when `selfTest` was requested. */
  selfTest?: KernelSelfTestResult[];
}

/**
 * Installs the wasm kernel fixes. Idempotent and cheap (registry updates only), so it is safe to
 * call on every entry point; a no-op returning `installed: []` when tfjs-backend-wasm has not
 * been imported. Works before or after the wasm backend initialises.
 *
 * @param options.selfTest also compare every fix with the cpu backend (default false; needs the
 *   wasm backend initialised) and throw a KernelSelfTestError listing the kernels that disagree.
 *
 * ```ts
 * import '@tensorflow/tfjs-backend-wasm';
 * await tf.setBackend('wasm');
 * const report = installKernelFixes({ selfTest: true });
 * // report.installed: ['BatchMatMul', '_FusedMatMul', 'MaxPoolGrad', 'Conv2DBackpropFilter', ...]
 * ```
 */
export function installKernelFixes(options: { selfTest?: boolean } = {}): KernelFixReport {
  checkOptions(options, ['selfTest'], 'installKernelFixes');
  if (options.selfTest !== undefined && typeof options.selfTest !== 'boolean') {
    throw new InvalidArgumentError(`installKernelFixes: 'selfTest' must be a boolean, received ${describe(options.selfTest)}`);
  }
  const installed = installFixes();
  const report: KernelFixReport = { backend: 'wasm', installed };
  if (options.selfTest === true && installed.length > 0) {
    report.selfTest = runKernelSelfTest({ throwOnFailure: true });
  }
  return report;
}

/** Restores the stock wasm kernels (the opt-out); the added kernels become missing again. */
export function uninstallKernelFixes(): void {
  uninstallFixes();
}

/** Whether the wasm kernel fixes are currently installed. */
export function kernelFixesInstalled(): boolean {
  return fixesInstalled();
}

/**
 * Runs every kernel fix and the cpu backend's kernel on seeded random inputs (negative values;
 * strides 1 and 2; same, valid and explicit padding; dilation 2 where the kernel supports it; all
 * matmul transpose flags) and reports the worst relative difference per kernel. Requires the wasm
 * backend initialised; returns [] when tfjs-backend-wasm is absent. Leaves no tensors behind.
 *
 * @param options.throwOnFailure throw a KernelSelfTestError listing failing kernels (default false)
 *
 * ```ts
 * for (const r of selfTestKernelFixes()) console.log(r.kernel, r.maxRelError, r.ok);
 * ```
 */
export function selfTestKernelFixes(options: { throwOnFailure?: boolean } = {}): KernelSelfTestResult[] {
  if (!wasmKernelsRegistered()) return [];
  return runKernelSelfTest(options);
}
