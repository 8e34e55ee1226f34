/**
 * Hutchinson's diagonal estimator (Bekas, Kokiopoulou & Saad 2007):
 *   diag(M) ≈ (1/m) Σᵢ zᵢ ⊙ M zᵢ,   E[zᵢ ⊙ M zᵢ]_j = Σ_k M_jk E[z_j z_k] = M_jj.
 * With Rademacher probes entry j has variance Σ_{k≠j} M_jk².
 */
import type { HostOperator } from './operator.js';
import { type ProbeDistribution, ProbeStream } from './random.js';

export async function hutchinsonDiag(op: HostOperator<unknown>, samples: number, distribution: ProbeDistribution, seed: number): Promise<Float64Array> {
  const random = new ProbeStream(seed);
  const sum = new Float64Array(op.size);
  for (let i = 0; i < samples; i++) {
    const z = random.probe(op.size, distribution);
    const mz = await op.apply(z);
    for (let j = 0; j < sum.length; j++) sum[j]! += z[j]! * mz[j]!;
  }
  for (let j = 0; j < sum.length; j++) sum[j]! /= samples;
  return sum;
}
