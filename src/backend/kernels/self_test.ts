/**
 * Self-test of the wasm kernel fixes: each fix runs on seeded random inputs and is compared with
 * tfjs-backend-cpu, the reference backend (substrate.md 6, "a self-test that compares every
 * gradient kernel with cpu on random inputs including negative values").
 */
import { tf } from '../../tf.js';
import { KernelSelfTestError } from '../../errors.js';
import { fixKernelFunc, KERNEL_FIXES } from './install.js';
import {
  batchMatMulCases,
  conv2dForwardCases,
  conv3dBackpropCases,
  convBackpropCases,
  fusedMatMulCases,
  maxPoolGradCases,
  mulberry32,
  sliceCases,
  tileCases,
  unsortedSegmentSumCases,
  type KernelCase,
} from './self_test_cases.js';
import { runOnBackend } from './self_test_run.js';
import { selfTestSimdKernels, withoutSimd } from './self_test_simd.js';
import { simdKernels } from './simd/module.js';
import { cpuBackend, requireKernel, wasmBackendIfReady, type CpuBackend } from './wasm_backend.js';

/** Outcome of the self-test of one kernel fix. */
export interface KernelSelfTestResult {
  /**
   * The tfjs kernel name; for nngeometry's WebAssembly SIMD kernels (present where WebAssembly
   * SIMD is available), 'SIMD im2col [M, K]', 'SIMD im2col [K, M]', 'SIMD col2im', 'SIMD GEMM',
   * 'SIMD XᵀX', and 'BatchMatMul (without SIMD)', 'Conv2DBackpropFilter (without SIMD)', 'Conv2D (without SIMD)', 'FusedConv2D (without SIMD)',
   * 'Conv2DBackpropInput (without SIMD)' for the plain routes those kernels fall back to.
   */
  kernel: string;
  /** Worst case over the inputs of max|wasm − cpu| / max|cpu| (Infinity when the kernel threw). */
  maxRelError: number;
  /** `maxRelError ≤ SELF_TEST_TOLERANCE`. */
  ok: boolean;
  /** The error message when the kernel threw. */
  error?: string;
}

/** Relative tolerance of the comparison: float32 round-off of short sums stays near 1e-6. */
export const SELF_TEST_TOLERANCE = 1e-4;

const SEED = 20261128;

function casesFor(kernelName: string, rng: () => number, cpu: CpuBackend): KernelCase[] {
  switch (kernelName) {
    case 'BatchMatMul':
      return batchMatMulCases(rng);
    case '_FusedMatMul':
      return fusedMatMulCases(rng);
    case 'MaxPoolGrad':
      return maxPoolGradCases(rng, cpu);
    case 'Conv2DBackpropFilter':
      return convBackpropCases(rng, 'conv2d', 'filter');
    case 'Conv2DBackpropInput':
      return convBackpropCases(rng, 'conv2d', 'input');
    case 'Conv2D':
      return conv2dForwardCases(rng, false);
    case 'FusedConv2D':
      return conv2dForwardCases(rng, true);
    case 'DepthwiseConv2dNativeBackpropFilter':
      return convBackpropCases(rng, 'depthwise', 'filter');
    case 'DepthwiseConv2dNativeBackpropInput':
      return convBackpropCases(rng, 'depthwise', 'input');
    case 'Conv3DBackpropFilterV2':
      return conv3dBackpropCases(rng, 'filter');
    case 'Conv3DBackpropInputV2':
      return conv3dBackpropCases(rng, 'input');
    case 'UnsortedSegmentSum':
      return unsortedSegmentSumCases(rng);
    case 'Tile':
      return tileCases(rng);
    case 'Slice':
      return sliceCases(rng);
    default:
      throw new Error(`no self-test cases for kernel '${kernelName}'`);
  }
}

/** Normwise relative difference max|a − e| / max|e| (0 when both are all zero). */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Number.POSITIVE_INFINITY;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    // NaN compares false: catch it explicitly so that it cannot pass as 0.
    if (!(d <= diff)) diff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  if (diff === 0) return 0;
  return scale === 0 ? Number.POSITIVE_INFINITY : diff / scale;
}

/** A seed per kernel, so that each kernel's inputs do not depend on which kernels ran before. */
function seedFor(kernelName: string): number {
  let h = SEED;
  for (let i = 0; i < kernelName.length; i++) h = Math.imul(h ^ kernelName.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Compares `kernelFunc` (by default the fix for `kernelName`) on the wasm backend with the cpu
 * reference on that kernel's seeded cases. Needs the wasm backend initialised.
 */
export function selfTestKernel(kernelName: string, kernelFunc?: tf.KernelFunc): KernelSelfTestResult {
  const wasm = wasmBackendIfReady();
  if (wasm == null) {
    throw new KernelSelfTestError(
      "the wasm kernel self-test needs an initialised wasm backend: run `await tf.setBackend('wasm')` first",
    );
  }
  const cpu = cpuBackend();
  let worst = 0;
  try {
    const fix = KERNEL_FIXES.find((f) => f.kernelName === kernelName);
    const func = kernelFunc ?? (fix != null ? fixKernelFunc(fix) : requireKernel(kernelName, 'wasm'));
    for (const c of casesFor(kernelName, mulberry32(seedFor(kernelName)), cpu)) {
      const actual = runOnBackend(wasm, func, c.inputs, c.attrs);
      const expected = c.expected?.(cpu) ?? runOnBackend(cpu, requireKernel(kernelName, 'cpu'), c.inputs, c.attrs).values;
      worst = Math.max(worst, maxRelativeError(actual.values, expected));
    }
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    return { kernel: kernelName, maxRelError: Number.POSITIVE_INFINITY, ok: false, error };
  }
  return { kernel: kernelName, maxRelError: worst, ok: worst <= SELF_TEST_TOLERANCE };
}

/**
 * Compares every wasm kernel fix, and nngeometry's WebAssembly SIMD kernels with the plain routes
 * they replace, with the cpu backend on seeded inputs. Needs the wasm backend
 * initialised (after `await tf.setBackend('wasm')` or `await tf.ready()` with wasm active); it
 * runs the kernels directly, so the active backend and the tensor count are left unchanged.
 * @param options.throwOnFailure throw a KernelSelfTestError naming the failing kernels (default false)
 */
export function runKernelSelfTest(options: { throwOnFailure?: boolean } = {}): KernelSelfTestResult[] {
  if (tf.getKernel('BatchMatMul', 'wasm') == null) return [];
  const results = KERNEL_FIXES.map((fix) => selfTestKernel(fix.kernelName));
  if (simdKernels() != null) {
    for (const kernel of ['BatchMatMul', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'Conv2D', 'FusedConv2D']) {
      results.push({ ...withoutSimd(() => selfTestKernel(kernel)), kernel: `${kernel} (without SIMD)` });
    }
    results.push(...selfTestSimdKernels(cpuBackend(), seedFor('SIMD'), maxRelativeError, SELF_TEST_TOLERANCE));
  }
  const failures = results.filter((r) => !r.ok);
  if (options.throwOnFailure === true && failures.length > 0) {
    const lines = failures.map((f) => `${f.kernel}: ${f.error ?? `max relative error ${f.maxRelError.toExponential(2)}`}`);
    throw new KernelSelfTestError(
      `wasm kernel fixes disagree with the cpu backend (tolerance ${SELF_TEST_TOLERANCE}):\n  ${lines.join('\n  ')}`,
    );
  }
  return results;
}
