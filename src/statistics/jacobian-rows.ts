/**
 * The Jacobian-rows statistic: every per-example Jacobian row ∇θf̃_o(xᵢ) of the square-root
 * outputs, stacked batch after batch (output-major within each batch) and divided by √n,
 *   J/√n ∈ R^{m×d}, m = O·n, so that (J/√n)ᵀ(J/√n) = M.
 *
 * Unlike the other statistics, the result stays a float32 device tensor: it is the factor a
 * low-rank matrix multiplies with (and stores, in float32) as it is; a float64 host copy would
 * add m·d values and two transfers for no gain in precision, the rows being float32 already.
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { batchJacobian } from './contractions.js';
import type { Statistic } from './statistic.js';

/**
 * J/√n as a [m, d] tensor, owned by the caller.
 *
 * @example
 * const { value: factor } = await accumulate(spec, scaledJacobianRows(spec.layerCollection));
 */
export function scaledJacobianRows(lc: LayerCollection): Statistic<tf.Tensor2D> {
  const rows: tf.Tensor2D[] = [];
  return {
    onOutputs: (g) => void rows.push(tf.keep(batchJacobian(lc, g))),
    result: (examples) => tf.tidy(() => tf.div(tf.concat(rows, 0), Math.sqrt(examples)) as tf.Tensor2D),
    dispose: () => {
      tf.dispose(rows);
      rows.length = 0;
    },
  };
}
