/**
 * The weight–bias cross-terms statistic (Ollivier 2015, "Riemannian metrics for neural
 * networks I", §3.1): for every output unit c of a layer whose bias is the last row of its
 * [K, C] parameter layout, the terms between the unit's incoming weights W[:, c] and its bias b[c],
 *   U[k, c] = M[(k,c), (K−1,c)] = (1/n) Σᵢ Σ_o ∂_{W[k,c]} f̃_o(xᵢ) · ∂_{b[c]} f̃_o(xᵢ),  k < K−1,
 * from the kind's `weightBiasCross` contraction (no per-example gradient is formed).
 */
import type { KroneckerSupport } from '../layers/layer-kind.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { HostSum } from './host-sum.js';
import type { Statistic } from './statistic.js';

/**
 * Per layer of `lc`, in order: U as a float64 row-major [K−1, C] array, or null for a layer
 * without a bias. `supports` are the layers' Kronecker supports (the caller refuses layers
 * whose bias is not the last row of [K, C]).
 *
 * @example
 * const { value: cross } = await accumulate(spec, weightBiasCross(lc, checkKroneckerLayers(lc, 'PMatQuasiDiag')));
 */
export function weightBiasCross(lc: LayerCollection, supports: readonly KroneckerSupport[]): Statistic<Array<Float64Array | null>> {
  const sums = lc.layers.map((e, i) => {
    const s = supports[i]!;
    const [k, c] = s.factorSizes(e.layer);
    return s.hasBias(e.layer) ? new HostSum((k - 1) * c) : null;
  });
  return {
    onOutputs: (out) => lc.layers.forEach((e, i) => sums[i]?.add(supports[i]!.weightBiasCross(e.layer, out.inputs.get(e.id)!, out.grads.get(e.id)!, out.count))),
    onBatchEnd: () => sums.forEach((s) => s?.flush()),
    result: (examples) => sums.map((s) => (s ? s.mean(examples) : null)),
    dispose: () => sums.forEach((s) => s?.dispose()),
  };
}
