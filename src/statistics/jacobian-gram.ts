/**
 * The Jacobian Gram statistic: with J the per-example Jacobian rows ∇θf̃_o(xᵢ) of the square-root
 * outputs,
 *   M = (1/n) Σᵢ Σ_o ∇θf̃_o(xᵢ) ∇θf̃_o(xᵢ)ᵀ = (1/n) JᵀJ,
 * summed batch by batch as JᵀJ of the batch's rows (the SIMD symmetric rank-k update on wasm),
 * either whole (d×d) or one diagonal block per layer (d_l×d_l, the cross-layer terms dropped).
 */
import type { LayerCollection } from '../layers/layer-collection.js';
import { batchJacobian, gram, layerJacobian } from './contractions.js';
import { HostSum } from './host-sum.js';
import type { Statistic } from './statistic.js';

/**
 * M as a float64 row-major d×d array.
 *
 * @example
 * const { value } = await accumulate(spec, jacobianGram(spec.layerCollection)); // value.length === d * d
 */
export function jacobianGram(lc: LayerCollection): Statistic<Float64Array> {
  const d = lc.numel();
  const sum = new HostSum(d * d);
  return {
    onOutputs: (g) => sum.add(gram(batchJacobian(lc, g))),
    onBatchEnd: () => sum.flush(),
    result: (examples) => sum.mean(examples),
    dispose: () => sum.dispose(),
  };
}

/**
 * The diagonal blocks B_l = (1/n) Σᵢ Σ_o ∇θ_l f̃_o(xᵢ) ∇θ_l f̃_o(xᵢ)ᵀ, one float64 row-major
 * d_l×d_l array per layer of `lc`, in order.
 *
 * @example
 * const { value: blocks } = await accumulate(spec, layerJacobianGrams(spec.layerCollection));
 */
export function layerJacobianGrams(lc: LayerCollection): Statistic<Float64Array[]> {
  const sums = lc.layers.map((e) => new HostSum(e.numel * e.numel));
  return {
    onOutputs: (g) => lc.layers.forEach((e, i) => sums[i]!.add(gram(layerJacobian(e, g)))),
    onBatchEnd: () => sums.forEach((s) => s.flush()),
    result: (examples) => sums.map((s) => s.mean(examples)),
    dispose: () => sums.forEach((s) => s.dispose()),
  };
}
