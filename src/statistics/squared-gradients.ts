/**
 * The squared-gradients statistic: the diagonal of M,
 *   M_kk = (1/n) Σᵢ Σ_o (∂f̃_o(xᵢ)/∂θ_k)²,
 * over the whole layer collection in parameter order. Per layer, the kind's
 * `squaredGradientSum` never forms per-example gradients where an identity exists
 * (Dense: (x̃∘x̃)ᵀ(g∘g)).
 */
import type { LayerCollection } from '../layers/layer-collection.js';
import { squaredGradientSum } from './contractions.js';
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
    onOutputs: (g) => sum.add(squaredGradientSum(lc, g)),
    onBatchEnd: () => sum.flush(),
    result: (examples) => sum.mean(examples),
    dispose: () => sum.dispose(),
  };
}
