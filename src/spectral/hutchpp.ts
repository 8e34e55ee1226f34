/**
 * Hutch++ (Meyer, Musco, Musco & Woodruff 2021, Algorithm 1): with m products, s = ⌊m/3⌋,
 *   Q = orth(M S) for s probes S,   tr(M) ≈ tr(Qᵀ M Q) + tr_Hutchinson((I − QQᵀ) M (I − QQᵀ)),
 * the second term with the m − 2s remaining probes. The top of the spectrum is captured
 * exactly by Q, so on a matrix with a decaying spectrum the variance is far below
 * Hutchinson's (error O(1/m) instead of O(1/√m) for PSD M). The standard error is that of the
 * Hutchinson part (the low-rank part is deterministic given S).
 */
import { dot, meanAndStandardError, orthonormalBasis, orthogonalize } from './host-vectors.js';
import type { HostOperator } from './operator.js';
import { type ProbeDistribution, ProbeStream } from './random.js';
import type { TraceEstimate } from './trace.js';

export async function hutchppTrace(op: HostOperator<unknown>, samples: number, distribution: ProbeDistribution, seed: number): Promise<TraceEstimate> {
  const random = new ProbeStream(seed);
  const s = Math.floor(samples / 3);
  const sketches: Float64Array[] = [];
  for (let i = 0; i < s; i++) sketches.push(await op.apply(random.probe(op.size, distribution)));
  const Q = orthonormalBasis(sketches);
  let lowRank = 0;
  for (const q of Q) lowRank += dot(q, await op.apply(q));
  // Products left for the deflated Hutchinson part (Q may have lost columns to rank deficiency).
  const rest = samples - s - Q.length;
  const quadratics: number[] = [];
  for (let i = 0; i < rest; i++) {
    const z = random.probe(op.size, distribution);
    orthogonalize(z, Q);
    quadratics.push(dot(z, await op.apply(z)));
  }
  const { mean, standardError } = quadratics.length ? meanAndStandardError(quadratics) : { mean: 0, standardError: NaN };
  return { value: lowRank + mean, standardError, samples: op.products };
}
