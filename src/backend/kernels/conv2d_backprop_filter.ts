/**
 * Conv2DBackpropFilter on wasm (tfjs-wasm has none, so conv2d weight gradients fail with "kernel
 * not registered"; bridging to cpu costs 50 s per small-CNN step, substrate.md 1.1).
 * dW = Pᵀ·dy: JS im2col written directly in the transposed [K, M] layout, then the stock XNNPACK
 * matmul with no transpose flags (substrate.md 1.2, 'wasmconvgrad2').
 * Beyond tfjs's attributes, an optional `dilations` attribute is honoured (tfjs itself has no
 * gradient for dilated conv2d, but the library may call this kernel directly).
 */
import type { tf } from '../../tf.js';
import { conv2dGeometry, im2colTransposed, patchMatrixSize } from './conv_geometry.js';
import type { KernelFix } from './kernel_fix.js';
import { runKernel, type KernelArgs, type TensorInfo, type WasmBackend } from './wasm_backend.js';

/** Filter gradient of an NHWC conv2d: inputs `x`, `dy`; attrs as tfjs's Conv2DBackpropFilter. */
export function conv2dBackpropFilterWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo {
  const x = inputs['x'] as TensorInfo;
  const dy = inputs['dy'] as TensorInfo;
  const filterShape = attrs['filterShape'] as number[];
  const info = conv2dGeometry('Conv2DBackpropFilter', x.shape, filterShape, attrs);
  const { M, K } = patchMatrixSize(info);
  const outChannels = info.outChannels;
  if (M === 0 || K === 0 || outChannels === 0) {
    const zero = backend.makeOutput(filterShape, 'float32');
    (backend.typedArrayFromHeap(zero) as Float32Array).fill(0);
    return zero;
  }
  const patchesT = backend.makeOutput([K, M], 'float32');
  try {
    // Views after the allocation: it may have grown and detached the heap.
    im2colTransposed(backend.typedArrayFromHeap(x), info, backend.typedArrayFromHeap(patchesT) as Float32Array);
    // dy [N, OH, OW, CO] is the row-major matrix [M, CO]; same data, only the shape is restated.
    const dyMatrix: TensorInfo = { dataId: dy.dataId, shape: [M, outChannels], dtype: dy.dtype };
    const dW = runKernel('BatchMatMul', backend, { a: patchesT, b: dyMatrix }, { transposeA: false, transposeB: false });
    // [K, CO] with K = (kr, kc, ci) row-major is exactly the filter layout [fh, fw, ci, co].
    dW.shape = filterShape.slice();
    return dW;
  } finally {
    backend.disposeData(patchesT.dataId);
  }
}

/** Adds the missing Conv2DBackpropFilter (see the file comment). */
export const conv2dBackpropFilterFix: KernelFix = {
  kernelName: 'Conv2DBackpropFilter',
  build: () => conv2dBackpropFilterWasm as unknown as tf.KernelFunc,
};
