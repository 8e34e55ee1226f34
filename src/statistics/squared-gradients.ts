/**
 * The squared-gradients statistic: the diagonal of M,
 *   M_kk = (1/n) Σᵢ Σ_o (∂f̃_o(xᵢ)/∂θ_k)²,
 * over the whole layer collection in parameter order. Per layer, the kind's
 * `squaredGradientSum` never forms per-example gradients where an identity exists
 * (Dense: (x̃∘x̃)ᵀ(g∘g)). Each layer's sum goes into the running sum at the layer's offset and
 * is released at once, so that at d ≈ 10⁸ the device holds the pending sum and one layer's term,
 * not a whole-vector concatenation as well.
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { HostSum } from './host-sum.js';
import type { Statistic } from './statistic.js';

/**
 * diag(M) as float64 [d], d = `lc.numel()`.
 *
 * @example
 * const { value: diag } = await accumulate(spec, squaredGradients(spec.layerCollection));
 */
export function squaredGradients(lc: LayerCollection): Statistic<Float64Array> {
  return squaredGradientsInto(new HostSum(lc.numel()), lc, (sum, examples) => sum.mean(examples));
}

/**
 * diag(M) as a float32 tensor [d] left on the device when the pass allows it (at most
 * HostSum.BATCHES_PER_TRANSFER batches: the same numbers as `squaredGradients` bit for bit, see
 * `HostSum.deviceMean`), else as float64 [d]. The caller owns the tensor.
 */
export function squaredGradientsMean(lc: LayerCollection): Statistic<Float64Array | tf.Tensor1D> {
  return squaredGradientsInto(new HostSum(lc.numel(), { flat: true }), lc, (sum, examples) => sum.deviceMean(examples) ?? sum.mean(examples));
}

function squaredGradientsInto<R>(sum: HostSum, lc: LayerCollection, result: (sum: HostSum, examples: number) => R): Statistic<R> {
  return {
    onOutputs: (g) => {
      for (const e of lc.layers) {
        // Each term is a fresh tensor of its own tidy: the sum takes it over (no copy).
        sum.addOwned(
          tf.tidy(() => e.kind.squaredGradientSum(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, g.count)),
          e.offset,
        );
      }
    },
    onBatchEnd: () => sum.flush(),
    result: (examples) => result(sum, examples),
    dispose: () => sum.dispose(),
  };
}
