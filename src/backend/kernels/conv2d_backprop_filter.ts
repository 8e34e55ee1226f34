/**
 * Conv2DBackpropFilter on wasm (tfjs-wasm has none, so conv2d weight gradients fail with "kernel
 * not registered"; bridging to cpu costs 50 s per small-CNN step, substrate.md 1.1).
 * dW = Pᵀ·dy, by nngeometry's fused WebAssembly SIMD kernel (wasm/simd_kernels.c: im2col on
 * cache-sized chunks of output pixels feeding a 4×8-tile GEMM, so the patch matrix is never
 * materialised; 1.1x faster than the route below with one input channel, 1.8-2.7x with 3-64,
 * bench/kernels.ts). Where WebAssembly SIMD is unavailable: JS im2col written directly in the transposed [K, M] layout, then the stock XNNPACK
 * matmul with no transpose flags (substrate.md 1.2, 'wasmconvgrad2').
 * Beyond tfjs's attributes, an optional `dilations` attribute is honoured (tfjs itself has no
 * gradient for dilated conv2d, but the library may call this kernel directly).
 */
import type { tf } from '../../tf.js';
import { conv2dGeometry, im2colTransposed, patchMatrixSize, type Conv2DInfo } from './conv_geometry.js';
import type { KernelFix } from './kernel_fix.js';
import { conv2dFilterGradSimd } from './simd/kernels.js';
import { simdKernels } from './simd/module.js';
import { runKernel, type KernelArgs, type TensorInfo, type WasmBackend } from './wasm_backend.js';

/** dW by the fused SIMD kernel; null when SIMD is unavailable or the kernel fails. */
export function filterGradBySimd(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo, filterShape: number[]): TensorInfo | null {
  const simd = simdKernels();
  if (simd == null || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const dW = backend.makeOutput(filterShape.slice(), 'float32');
  try {
    // Views after the allocation: it may have grown and detached the heap.
    conv2dFilterGradSimd(simd, backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(dy), info, backend.typedArrayFromHeap(dW) as Float32Array);
    return dW;
  } catch {
    // E.g. the module's memory cannot grow that far: the route below needs less.
    backend.disposeData(dW.dataId);
    return null;
  }
}

/** dW by JS im2col in the [K, M] layout and the stock XNNPACK matmul. */
export function filterGradByMatMul(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo, filterShape: number[]): TensorInfo {
  const { M, K } = patchMatrixSize(info);
  const patchesT = backend.makeOutput([K, M], 'float32');
  try {
    // Views after the allocation: it may have grown and detached the heap.
    im2colTransposed(backend.typedArrayFromHeap(x), info, backend.typedArrayFromHeap(patchesT) as Float32Array);
    // dy [N, OH, OW, CO] is the row-major matrix [M, CO]; same data, only the shape is restated.
    const dyMatrix: TensorInfo = { dataId: dy.dataId, shape: [M, info.outChannels], dtype: dy.dtype };
    const dW = runKernel('BatchMatMul', backend, { a: patchesT, b: dyMatrix }, { transposeA: false, transposeB: false });
    // [K, CO] with K = (kr, kc, ci) row-major is exactly the filter layout [fh, fw, ci, co].
    dW.shape = filterShape.slice();
    return dW;
  } finally {
    backend.disposeData(patchesT.dataId);
  }
}

/** Filter gradient of an NHWC conv2d: inputs `x`, `dy`; attrs as tfjs's Conv2DBackpropFilter. */
export function conv2dBackpropFilterWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo {
  const x = inputs['x'] as TensorInfo;
  const dy = inputs['dy'] as TensorInfo;
  const filterShape = attrs['filterShape'] as number[];
  const info = conv2dGeometry('Conv2DBackpropFilter', x.shape, filterShape, attrs);
  const { M, K } = patchMatrixSize(info);
  if (M === 0 || K === 0 || info.outChannels === 0) {
    const zero = backend.makeOutput(filterShape, 'float32');
    (backend.typedArrayFromHeap(zero) as Float32Array).fill(0);
    return zero;
  }
  return filterGradBySimd(backend, x, dy, info, filterShape) ?? filterGradByMatMul(backend, x, dy, info, filterShape);
}

/** Adds the missing Conv2DBackpropFilter (see the file comment). */
export const conv2dBackpropFilterFix: KernelFix = {
  kernelName: 'Conv2DBackpropFilter',
  build: () => conv2dBackpropFilterWasm as unknown as tf.KernelFunc,
};
