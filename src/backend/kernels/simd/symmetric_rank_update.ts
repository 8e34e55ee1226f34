/**
 * XᵀX for the Kronecker factors of KFAC and dense Gram blocks: on the wasm backend, nngeometry's
 * SIMD rank-k update (wasm/simd_kernels.c, nn_ssyrk: 4×8 tiles of the upper triangle only, then
 * mirrored, so about half the work of a product and an exactly symmetric result: 1.8-2.6x faster
 * than the full product `tf.matMul(x, x, true, false)` on XNNPACK or on the SIMD GEMM, 20-28x
 * faster than the stock tfjs-wasm kernel, for x of [128..25088, 145..785], bench/kernels.ts);
 * elsewhere, or without WebAssembly SIMD, `tf.matMul(x, x, true, false)`.
 */
import { tf } from '../../../tf.js';
import { InvalidArgumentError } from '../../../errors.js';
import type { WasmBackend } from '../wasm_backend.js';
import { syrkSimd } from './kernels.js';
import { simdKernels } from './module.js';

/**
 * XᵀX [n, n] for x [m, n] (float32), plus `accumulate` when given (which must then be symmetric,
 * e.g. a previous factor: the update is C + XᵀX). The result is exactly symmetric. Not recorded
 * on the gradient tape (use tf.matMul inside gradient computations). The inputs are not disposed.
 *
 * ```ts
 * const A = symmetricRankUpdate(x);            // Σ_i x_i x_iᵀ over the rows x_i of x
 * const B = symmetricRankUpdate(g, previousB); // previousB + gᵀg
 * ```
 */
export function symmetricRankUpdate(x: tf.Tensor2D, accumulate?: tf.Tensor2D): tf.Tensor2D {
  if (x.rank !== 2) throw new InvalidArgumentError(`symmetricRankUpdate: x must be a matrix [m, n], got shape [${x.shape}]`);
  const [m, n] = x.shape;
  if (accumulate != null && (accumulate.rank !== 2 || accumulate.shape[0] !== n || accumulate.shape[1] !== n)) {
    throw new InvalidArgumentError(`symmetricRankUpdate: accumulate must be [${n}, ${n}], got [${accumulate.shape}]`);
  }
  // The SIMD route is faster than matMul at every size measured, down to [128, 11] (bench/kernels.ts).
  const simd = tf.getBackend() === 'wasm' ? simdKernels() : null;
  if (simd == null || n === 0) {
    return tf.tidy(() => {
      const product = tf.matMul(x.toFloat(), x.toFloat(), true, false) as tf.Tensor2D;
      return accumulate != null ? (tf.add(accumulate, product) as tf.Tensor2D) : product;
    });
  }
  const backend = tf.backend() as unknown as WasmBackend;
  const xf = x.dtype === 'float32' ? x : x.toFloat();
  const acc = accumulate == null || accumulate.dtype === 'float32' ? accumulate : accumulate.toFloat();
  try {
    const out = backend.makeOutput([n, n], 'float32');
    try {
      // Views after the allocation (it may grow and detach the heap).
      const values = backend.typedArrayFromHeap(out) as Float32Array;
      if (acc != null) values.set(backend.typedArrayFromHeap({ dataId: acc.dataId, shape: acc.shape, dtype: 'float32' }));
      const xValues = backend.typedArrayFromHeap({ dataId: xf.dataId, shape: xf.shape, dtype: 'float32' });
      syrkSimd(simd, xValues, m, n, values, acc != null);
    } catch (e) {
      backend.disposeData(out.dataId);
      throw e;
    }
    return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor2D;
  } finally {
    if (xf !== x) xf.dispose();
    if (acc != null && acc !== accumulate) acc.dispose();
  }
}
