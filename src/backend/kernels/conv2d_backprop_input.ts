/**
 * Conv2DBackpropInput on wasm as dx = col2im(dy·Wᵀ): the product [M, CO]·[CO, K] runs in the
 * stock XNNPACK matmul, the scatter-add in JS (substrate.md 1.2, 'wasmconvgrad2'). The stock
 * kernel is a naive C loop over every (pixel, tap, in-channel, out-channel) with no blocking.
 * NCHW stays on the stock kernel. Like the filter gradient, an optional `dilations` attribute is
 * honoured (the stock kernel silently assumes 1).
 */
import { col2imAdd, conv2dGeometry, patchMatrixSize } from './conv_geometry.js';
import type { KernelFix } from './kernel_fix.js';
import { runKernel, type KernelArgs, type TensorInfo, type WasmBackend } from './wasm_backend.js';

/** Input gradient of an NHWC conv2d: inputs `dy`, `filter`; attrs as tfjs's Conv2DBackpropInput. */
export function conv2dBackpropInputWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo {
  const dy = inputs['dy'] as TensorInfo;
  const filter = inputs['filter'] as TensorInfo;
  const inputShape = attrs['inputShape'] as number[];
  const info = conv2dGeometry('Conv2DBackpropInput', inputShape, filter.shape, attrs);
  const { M, K } = patchMatrixSize(info);
  const outChannels = info.outChannels;
  if (M === 0 || K === 0 || outChannels === 0) {
    const zero = backend.makeOutput(inputShape, 'float32');
    (backend.typedArrayFromHeap(zero) as Float32Array).fill(0);
    return zero;
  }
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
    const dx = backend.makeOutput(inputShape.slice(), 'float32');
    const out = backend.typedArrayFromHeap(dx) as Float32Array;
    out.fill(0);
    col2imAdd(backend.typedArrayFromHeap(cols), info, out);
    return dx;
  } finally {
    backend.disposeData(cols.dataId);
  }
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
