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
  const sum = new HostSum(lc.numel());
  return {
    onOutputs: (g) => {
      for (const e of lc.layers) {
        const term = tf.tidy(() => e.kind.squaredGradientSum(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, g.count));
        try {
          sum.add(term, e.offset);
        } finally {
          term.dispose();
        }
      }
    },
    onBatchEnd: () => sum.flush(),
    result: (examples) => sum.mean(examples),
    dispose: () => sum.dispose(),
  };
}
