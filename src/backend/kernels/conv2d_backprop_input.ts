/**
 * Conv2DBackpropInput on wasm. The stock kernel is a naive C loop over every (pixel, tap,
 * in-channel, out-channel) with no blocking: 4-10x slower than the routes below.
 * - First choice, any stride: nngeometry's fused WebAssembly SIMD kernel (wasm/simd_kernels.c):
 *   dy·Wᵀ in 4×8 register tiles on cache-sized chunks of output pixels, each scattered back
 *   (col2im) while still in cache. 1.2-1.8x faster than the XNNPACK convolution below at
 *   stride 1, 2.2x faster than the JS col2im route at stride 2 (bench/kernels.ts).
 *   Where WebAssembly SIMD is unavailable:
 * - Stride 1: the input gradient of a stride-1 convolution is itself a stride-1 convolution of
 *   dy with the spatially flipped filter, in/out channels swapped, padded by (effective filter
 *   size - 1 - forward padding) (Dumoulin & Visin 2016, "A guide to convolution arithmetic for
 *   deep learning", relationship 8), so it runs in the stock XNNPACK Conv2D: 2x faster than the
 *   col2im route below at 16-64 channels.
 * - Otherwise dx = col2im(dy·Wᵀ): the product [M, CO]·[CO, K] in the stock XNNPACK matmul, the
 *   scatter-add in JS (substrate.md 1.2, 'wasmconvgrad2').
 * NCHW stays on the stock kernel. An optional `dilations` attribute is honoured (the stock kernel
 * silently assumes 1).
 */
import { col2imAdd, conv2dGeometry, patchMatrixSize, type Conv2DInfo } from './conv_geometry.js';
import type { KernelFix } from './kernel_fix.js';
import { conv2dInputGradSimd } from './simd/kernels.js';
import { simdKernels } from './simd/module.js';
import { runKernel, type KernelArgs, type TensorInfo, type WasmBackend } from './wasm_backend.js';

/** W'[kr, kc, co, ci] = W[fh-1-kr, fw-1-kc, ci, co]: the filter of the transposed convolution. */
function flippedTransposedFilter(backend: WasmBackend, filter: TensorInfo): TensorInfo {
  const [fh, fw, ci, co] = filter.shape as [number, number, number, number];
  const out = backend.makeOutput([fh, fw, co, ci], 'float32');
  const w = backend.typedArrayFromHeap(filter);
  const f = backend.typedArrayFromHeap(out) as Float32Array;
  for (let kr = 0; kr < fh; kr++) {
    for (let kc = 0; kc < fw; kc++) {
      const src = ((fh - 1 - kr) * fw + (fw - 1 - kc)) * ci * co;
      const dst = (kr * fw + kc) * co * ci;
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) f[dst + o * ci + i] = w[src + i * co + o];
    }
  }
  return out;
}

/** dx as a stride-1 convolution of dy, or null when the geometry needs negative padding. */
export function inputGradByConvolution(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo | null {
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return null;
  const top = info.effectiveFilterHeight - 1 - info.padInfo.top;
  const left = info.effectiveFilterWidth - 1 - info.padInfo.left;
  // dy row oh feeds input rows oh - top_fwd + kr·d; the last input row reads dy row H - 1 + top_fwd.
  const bottom = info.inHeight + info.padInfo.top - info.outHeight;
  const right = info.inWidth + info.padInfo.left - info.outWidth;
  if (Math.min(top, left, bottom, right) < 0) return null;
  const flipped = flippedTransposedFilter(backend, filter);
  try {
    return runKernel('Conv2D', backend, { x: dy, filter: flipped }, {
      strides: 1,
      pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
      dataFormat: 'NHWC',
      dilations: [info.dilationHeight, info.dilationWidth],
    });
  } finally {
    backend.disposeData(flipped.dataId);
  }
}

/** dx = col2im(dy·Wᵀ). */
export function inputGradByCol2im(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { M, K } = patchMatrixSize(info);
  const outChannels = info.outChannels;
  // The filter [fh, fw, ci, co] is the row-major matrix W [K, CO]; Wᵀ is small, transpose it.
  const filterMatrix: TensorInfo = { dataId: filter.dataId, shape: [K, outChannels], dtype: filter.dtype };
  const filterT = runKernel('Transpose', backend, { x: filterMatrix }, { perm: [1, 0] });
  let cols: TensorInfo;
  try {
    const dyMatrix: TensorInfo = { dataId: dy.dataId, shape: [M, outChannels], dtype: dy.dtype };
    cols = runKernel('BatchMatMul', backend, { a: dyMatrix, b: filterT }, { transposeA: false, transposeB: false });
  } finally {
    backend.disposeData(filterT.dataId);
  }
  try {
    const dx = backend.makeOutput(info.inShape.slice(), 'float32');
    // Views after the allocation above (it may grow and detach the heap).
    const out = backend.typedArrayFromHeap(dx) as Float32Array;
    out.fill(0);
    col2imAdd(backend.typedArrayFromHeap(cols), info, out);
    return dx;
  } finally {
    backend.disposeData(cols.dataId);
  }
}

/** dx by the fused SIMD kernel (dy·Wᵀ in 4×8 tiles + col2im by chunks); null when SIMD is unavailable or fails. */
export function inputGradBySimd(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo | null {
  const simd = simdKernels();
  if (simd == null || dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const dx = backend.makeOutput(info.inShape.slice(), 'float32');
  try {
    // Views after the allocation (it may grow and detach the heap).
    conv2dInputGradSimd(simd, backend.typedArrayFromHeap(dy), backend.typedArrayFromHeap(filter), info, backend.typedArrayFromHeap(dx) as Float32Array);
    return dx;
  } catch {
    backend.disposeData(dx.dataId);
    return null;
  }
}

/** Input gradient of an NHWC conv2d: inputs `dy`, `filter`; attrs as tfjs's Conv2DBackpropInput. */
export function conv2dBackpropInputWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo {
  const dy = inputs['dy'] as TensorInfo;
  const filter = inputs['filter'] as TensorInfo;
  const inputShape = attrs['inputShape'] as number[];
  const info = conv2dGeometry('Conv2DBackpropInput', inputShape, filter.shape, attrs);
  const { M, K } = patchMatrixSize(info);
  if (M === 0 || K === 0 || info.outChannels === 0) {
    const zero = backend.makeOutput(inputShape.slice(), 'float32');
    (backend.typedArrayFromHeap(zero) as Float32Array).fill(0);
    return zero;
  }
  const bySimd = inputGradBySimd(backend, dy, filter, info);
  if (bySimd != null) return bySimd;
  const byConvolution = inputGradByConvolution(backend, dy, filter, info);
  if (byConvolution != null) {
    byConvolution.shape = inputShape.slice();
    return byConvolution;
  }
  return inputGradByCol2im(backend, dy, filter, info);
}

/** Replaces the slow stock Conv2DBackpropInput for NHWC; NCHW goes to the stock kernel. */
export const conv2dBackpropInputFix: KernelFix = {
  kernelName: 'Conv2DBackpropInput',
  build: (stock) => (args) => {
    const dataFormat = args.attrs?.['dataFormat'] ?? 'NHWC';
    if (dataFormat !== 'NHWC' && stock != null) return stock.kernelFunc(args);
    return conv2dBackpropInputWasm(args as unknown as KernelArgs<WasmBackend>);
  },
};
