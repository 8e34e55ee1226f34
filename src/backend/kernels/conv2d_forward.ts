/**
 * Conv2D and FusedConv2D (convolution + bias + activation) on wasm, NHWC, dilation 1, float32,
 * activation linear or relu: nngeometry's WebAssembly SIMD implicit-GEMM kernel
 * (wasm/simd_kernels.c, nn_conv_forward). Within one filter row the taps of an output pixel are
 * FW·C consecutive floats of x, and the next pixel's start sw·C floats further, so four pixels of
 * an output row that read no padding form a 4×(FW·C) block of the patch matrix read in place by
 * the GEMM's 4×8 register tile (Chellapilla et al. 2006 without the patch matrix; the "indirect"
 * or implicit GEMM of Dukhan 2019, "The Indirect Convolution Algorithm"); border pixels take
 * the taps of their filter rows that fall inside the input. Bias and relu are applied while the
 * output row is in cache.
 *
 * Where it pays: XNNPACK's convolution is already close to the SIMD128 peak on this hardware.
 * Measured on the shapes of the bench CNNs (batch 128, 3×3 unless said; CPU time, minimum of 30
 * runs interleaved with the stock kernel, load 12 on 2 cores), SIMD ÷ stock time: 1.43 with 3
 * input channels (32×32, same), 1.02-1.10 with 16, 0.93 with 32 (15×15, stride 2), 0.91 for a
 * 1×1 over 64 channels. So the SIMD route takes inputs of at least SIMD_FORWARD_MIN_CHANNELS
 * channels (16: level on one thread, and it splits between the helper threads, where XNNPACK runs
 * on one), the stock kernel the others.
 *
 * Everything else — NCHW, dilations, other dtypes, other activations or a PReLU, a bias that is
 * not one value per output channel, empty tensors, no WebAssembly SIMD, or a failure of the
 * module (memory) — runs the stock XNNPACK kernel, which `selfTestKernelFixes` checks as well.
 */
import { conv2dGeometry, patchMatrixSize } from './conv_geometry.js';
import type { KernelFix } from './kernel_fix.js';
import { conv2dForwardSimd } from './simd/kernels.js';
import { simdKernels } from './simd/module.js';
import type { tf } from '../../tf.js';
import type { KernelArgs, TensorInfo, WasmBackend } from './wasm_backend.js';

/**
 * Input channels from which the SIMD route runs (see the file comment): level with the stock
 * kernel on one thread from 16, and split between the helper threads where there are any
 * (`setSimdThreads`), which the stock kernel is not. The route never depends on the thread
 * count, so neither do the numbers.
 */
export const SIMD_FORWARD_MIN_CHANNELS = 16;

let minChannels = SIMD_FORWARD_MIN_CHANNELS;

/** Runs `fn` with another channel threshold (tests: 1 sends every accepted geometry to the SIMD route). */
export async function withForwardMinChannels<T>(channels: number, fn: () => Promise<T>): Promise<T> {
  const was = minChannels;
  minChannels = channels;
  try {
    return await fn();
  } finally {
    minChannels = was;
  }
}

const dilationOne = (d: unknown): boolean =>
  d == null || d === 1 || (Array.isArray(d) && d.every((v) => v === 1));

/**
 * y by the SIMD kernel, or null where it does not apply or does not pay (fewer than
 * SIMD_FORWARD_MIN_CHANNELS input channels; see the file comment): the caller then runs the stock
 * kernel.
 */
export function conv2dForwardBySimd({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo | null {
  const x = inputs['x'] as TensorInfo;
  const filter = inputs['filter'] as TensorInfo;
  const bias = (inputs['bias'] as TensorInfo | undefined) ?? null;
  const activation = (attrs['activation'] as string | undefined) ?? 'linear';
  if ((attrs['dataFormat'] ?? 'NHWC') !== 'NHWC' || !dilationOne(attrs['dilations'])) return null;
  if (activation !== 'linear' && activation !== 'relu') return null;
  if (inputs['preluActivationWeights'] != null) return null;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4 || filter.shape.length !== 4) return null;
  const co = filter.shape[3]!;
  if (bias != null && (bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== co)) return null;
  if (x.shape[3]! < minChannels) return null;
  const simd = simdKernels();
  if (simd == null) return null;
  const info = conv2dGeometry('Conv2D', x.shape, filter.shape, attrs);
  const { M, K } = patchMatrixSize(info);
  if (M === 0 || K === 0 || co === 0) return null;
  const y = backend.makeOutput(info.outShape.slice(), 'float32');
  try {
    // Views after the allocation (it may grow and detach the heap).
    conv2dForwardSimd(simd, backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(filter),
      bias != null ? backend.typedArrayFromHeap(bias) : null, info, activation === 'relu', backend.typedArrayFromHeap(y) as Float32Array);
    return y;
  } catch {
    backend.disposeData(y.dataId);
    return null;
  }
}

function withStockFallback(kernelName: string, stock: tf.KernelConfig | undefined): tf.KernelFunc {
  if (stock == null) throw new Error(`kernel '${kernelName}' is missing on wasm; nothing to patch`);
  return (args) => conv2dForwardBySimd(args as unknown as KernelArgs<WasmBackend>) ?? stock.kernelFunc(args);
}

/** Conv2D: the SIMD implicit GEMM where it applies, the stock XNNPACK kernel otherwise. */
export const conv2dForwardFix: KernelFix = {
  kernelName: 'Conv2D',
  build: (stock) => withStockFallback('Conv2D', stock),
};

/** FusedConv2D (bias, linear or relu): the SIMD implicit GEMM where it applies, stock otherwise. */
export const fusedConv2dForwardFix: KernelFix = {
  kernelName: 'FusedConv2D',
  build: (stock) => withStockFallback('FusedConv2D', stock),
};
