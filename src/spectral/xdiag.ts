/**
 * XDiag (Epperly, Tropp & Webber 2024, §4): the exchangeable diagonal estimator. With the XTrace
 * sketch (probes ωᵢ, Y = MΩ = QR, Z = MQ, Qᵢ = Q(I − sᵢsᵢᵀ) spanning M Ω₋ᵢ; see xtrace.ts), each
 * probe in turn estimates what the others' low-rank part leaves:
 *   Dᵢ = diag(Qᵢ Qᵢᵀ M) + ωᵢ ⊙ (I − QᵢQᵢᵀ) M ωᵢ,   diag(M) ≈ (1/(m/2)) Σᵢ Dᵢ,
 * with diag(QᵢQᵢᵀM)_j = Σ_a (Q(I − sᵢsᵢᵀ))_ja Z_ja (M symmetric, so QᵀM = Zᵀ) and
 * (I − QᵢQᵢᵀ) M ωᵢ = yᵢ − Q (I − sᵢsᵢᵀ) Qᵀ yᵢ. Unbiased term by term like Hutchinson's; the
 * low-rank part removes the top of the spectrum from its variance.
 */
import { axpy, combine, dot } from './host-vectors.js';
import type { HostOperator } from './operator.js';
import type { ProbeDistribution } from './random.js';
import { deflate, exchangeableSketch } from './xtrace.js';

export async function xdiagDiag(op: HostOperator<unknown>, samples: number, distribution: ProbeDistribution, seed: number): Promise<Float64Array> {
  const probes = Math.floor(samples / 2);
  const d = op.size;
  const { omega, Y, Q, Z, s } = await exchangeableSketch(op, probes, distribution, seed, 'estimateDiag');
  // diag(QQᵀM) = Σ_a Q_a ⊙ Z_a, shared by every i; the rank-one correction is (Q sᵢ) ⊙ (Z sᵢ).
  const full = new Float64Array(d);
  Q.forEach((q, a) => {
    const z = Z[a]!;
    for (let j = 0; j < d; j++) full[j]! += q[j]! * z[j]!;
  });
  const sum = new Float64Array(d);
  omega.forEach((w, i) => {
    const si = s[i]!;
    const qs = combine(Q, si, d);
    const zs = combine(Z, si, d);
    const residual = Float64Array.from(Y[i]!);
    axpy(residual, -1, combine(Q, deflate(Float64Array.from(Q, (q) => dot(q, Y[i]!)), si), d));
    for (let j = 0; j < d; j++) sum[j]! += full[j]! - qs[j]! * zs[j]! + w[j]! * residual[j]!;
  });
  for (let j = 0; j < d; j++) sum[j]! /= probes;
  return sum;
}
