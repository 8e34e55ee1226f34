/**
 * The Hessian-vector product of the mean loss, H v = (1/n) Σ_batches ∇θ⟨∇θ L_batch, v⟩, summed
 * over one pass (PMatHessianImplicit's operations).
 *
 * Not a `Statistic` of the engine's pass: that pass hands each layer's (x, g) for first-order
 * quantities of the square-root outputs, whereas H v needs the second derivatives of the loss,
 * which come from reverse-over-reverse differentiation of each whole batch
 * (metrics/hessian-vector-product.ts, `forEachHessianBatch`, with its own validation of the loss
 * and targets). The per-batch loop and its float64 sum live here all the same, so that the
 * representation class is only algebra. `forEachHessianBatch` is the one import of this module
 * from a layer below statistics/ (metrics/): it belongs with the Hessian's loss definitions.
 */
import { tf } from '../tf.js';
import { type HessianSpec, forEachHessianBatch, unflatten } from '../metrics/hessian-vector-product.js';
import { HostSum } from './host-sum.js';

/**
 * H v as float64 [d] for v [d] on the device (read, not owned): one pass over the data, each
 * batch's product added to a `HostSum` (float32 within 16 batches, float64 across), divided by n.
 *
 * @example
 * const hv = await hessianVectorMean(spec, v.data); // Float64Array [d]
 */
export async function hessianVectorMean(spec: HessianSpec, v: tf.Tensor1D): Promise<Float64Array> {
  const sum = new HostSum(spec.layerCollection.numel());
  const parts = unflatten(spec.layerCollection, v);
  try {
    const n = await forEachHessianBatch(spec, (b) => {
      const hv = b.hvp(parts);
      sum.add(hv);
      hv.dispose();
      sum.flush();
    });
    return sum.total.map((x) => x / n);
  } finally {
    sum.dispose();
    tf.dispose(parts);
  }
}
