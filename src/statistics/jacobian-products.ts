/**
 * Products with M = (1/n) JᵀJ that never form M: each is a statistic of one pass over the data,
 * J being the per-example Jacobian rows ∇θf̃_o(xᵢ) of the square-root outputs. These are the
 * operations of the matrix-free representation (PMatImplicit), which holds only the definition
 * of M and so needs one pass per operation:
 *   tr(M)  = (1/n) Σᵢ Σ_o ‖∇θf̃_o(xᵢ)‖²,
 *   M v    = (1/n) Σᵢ Σ_o ∇θf̃_o(xᵢ) ⟨∇θf̃_o(xᵢ), v⟩,
 *   vᵀMv   = (1/n) Σᵢ Σ_o ⟨∇θf̃_o(xᵢ), v⟩²,
 *   M R_rᵀ = (1/n) Σᵢ Σ_o ∇θf̃_o(xᵢ) ⟨∇θf̃_o(xᵢ), R_r⟩ and R_r M R_rᵀ for every row R_r of R.
 * The directional derivatives ⟨∇θf̃_o(xᵢ), v⟩ and the weighted sums Σ u ∇θf̃ come from the layer
 * kinds' `gradientDot` and `weightedGradientSum`, without per-example gradients.
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { OutputGradients } from '../backend/pass.js';
import { forEachOutput } from '../backend/stacking.js';
import { rowSums, rowSumsLength } from '../object/reductions.js';
import { batchJacobian, directionalDerivatives as directional, squaredGradientSum } from './contractions.js';
import { HostSum, divideBy } from './host-sum.js';
import type { Statistic } from './statistic.js';

/**
 * A statistic whose `visit(g, add)` adds terms (of `size` elements) to one float64 sum, ending in
 * `finish(total, n)`.
 */
function summed<R>(size: number, visit: (g: OutputGradients, add: (t: tf.Tensor) => void) => void, finish: (total: Float64Array, examples: number) => R): Statistic<R> {
  const sum = new HostSum(size);
  return {
    onOutputs: (g) => visit(g, (t) => sum.add(t)),
    onBatchEnd: () => sum.flush(),
    result: (examples) => finish(sum.total, examples),
    dispose: () => sum.dispose(),
  };
}

/**
 * tr(M), the squared gradients summed over parameters through partial sums over rows of 128
 * parameters added in float64 (see object/reductions.ts).
 *
 * @example
 * const { value: trace } = await accumulate(spec, gramTrace(spec.layerCollection));
 */
export function gramTrace(lc: LayerCollection): Statistic<number> {
  return summed(rowSumsLength(lc.numel()), (g, add) => add(rowSums(squaredGradientSum(lc, g))), (total, n) => total.reduce((a, b) => a + b, 0) / n);
}

/**
 * M v for v [d] on the device (read during the pass, not owned): a float32 tensor [d] left on
 * the device when the pass has at most HostSum.BATCHES_PER_TRANSFER batches (the float32
 * rounding of the float64 mean, which is what the float64 route gives once rounded to float32),
 * else float64 [d]. The caller owns a returned tensor.
 *
 * @example
 * const { value: mv } = await accumulate(spec, gramVectorProduct(lc, v.data));
 */
export function gramVectorProduct(lc: LayerCollection, v: tf.Tensor1D): Statistic<Float64Array | tf.Tensor1D> {
  // Layer by layer into one flat sum at the layer's offset, each term taken over and released at
  // once, and the mean taken in place: at d ≈ 10⁸ a whole-vector concatenation beside the pending
  // sum would be 0.4 GB on the device, and a float64 mean 0.8 GB of fresh host memory.
  const sum = new HostSum(lc.numel(), { flat: true });
  return {
    onOutputs: (g) => {
      const u = directional(lc, g, v);
      try {
        for (const e of lc.layers) {
          sum.addOwned(tf.tidy(() => e.kind.weightedGradientSum(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, u, g.count)), e.offset);
        }
      } finally {
        u.dispose();
      }
    },
    onBatchEnd: () => sum.flush(),
    result: (examples) => sum.deviceMean(examples) ?? divideBy(sum.total, examples),
    dispose: () => sum.dispose(),
  };
}

/**
 * vᵀMv for v [d] on the device (read during the pass, not owned).
 *
 * @example
 * const { value: q } = await accumulate(spec, gramQuadraticForm(lc, v.data));
 */
export function gramQuadraticForm(lc: LayerCollection, v: tf.Tensor1D): Statistic<number> {
  return summed(1, (g, add) => add(tf.sum(tf.square(directional(lc, g, v)))), (total, n) => total[0]! / n);
}

/**
 * (M R_rᵀ)ᵀ for every row of R (`rows`: any shape [..., d], r = size/d rows), float64 [r·d]
 * row-major: per batch and output, with G [B, d] the per-example gradients, U = G Rᵀ [B, r] and
 * M R_rᵀ = (1/n) Σ Gᵀ U[:, r]. One output at a time, so that the transient Jacobian stays B×d.
 *
 * @example
 * const { value } = await accumulate(spec, gramRowsProduct(lc, pfmap.data)); // [O·n·d]
 */
export function gramRowsProduct(lc: LayerCollection, rows: tf.Tensor): Statistic<Float64Array> {
  const d = lc.numel();
  const r = rows.size / d;
  return summed(
    r * d,
    (stacked, add) =>
      forEachOutput(stacked, (g) => {
        const grads = batchJacobian(lc, g);
        const u = tf.matMul(grads, rows.reshape([r, d]), false, true);
        add(tf.matMul(u, grads, true, false));
      }),
    (total, n) => total.map((x) => x / n),
  );
}

/**
 * R_r M R_rᵀ = (1/n) Σᵢ Σ_o ⟨∇θf̃_o(xᵢ), R_r⟩² for every row of R (`rows`: [..., d]), float64 [r].
 *
 * @example
 * const { value } = await accumulate(spec, gramRowsQuadraticForms(lc, pfmap.data)); // [O·n]
 */
export function gramRowsQuadraticForms(lc: LayerCollection, rows: tf.Tensor): Statistic<Float64Array> {
  const d = lc.numel();
  const r = rows.size / d;
  return summed(
    r,
    (stacked, add) => forEachOutput(stacked, (g) => add(tf.sum(tf.square(tf.matMul(batchJacobian(lc, g), rows.reshape([r, d]), false, true)), 0))),
    (total, n) => total.map((x) => x / n),
  );
}
