/**
 * The Jacobian statistic: every per-example Jacobian row of the square-root outputs kept apart,
 *   J[o, i, :] = ∇θf̃_o(xᵢ),   J ∈ R^{O×n×d},
 * in loader order (the raw outputs f_o for `Jacobian`; the loss for the per-example loss
 * gradients, O = 1). A float32 device tensor, as PFMapDense stores it; unlike jacobian-rows.ts
 * (J/√n, rows output-major within each batch) the outputs' blocks stay whole.
 */
import type { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { batchJacobian } from './contractions.js';
import { outputRows } from './output-rows.js';
import type { Statistic } from './statistic.js';

/**
 * J as a [O, n, d] tensor, owned by the caller; one forward and O backward passes per batch.
 *
 * @example
 * const { value: j } = await accumulate(spec, outputJacobian(spec.layerCollection)); // [O, n, d]
 */
export function outputJacobian(lc: LayerCollection): Statistic<tf.Tensor3D> {
  return outputRows((g) => batchJacobian(lc, g)) as Statistic<tf.Tensor3D>;
}
