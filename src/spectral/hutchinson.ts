/**
 * Hutchinson's trace estimator (Hutchinson 1989): tr(M) ≈ (1/m) Σᵢ zᵢᵀ M zᵢ with E[z zᵀ] = I.
 * Unbiased; the standard error is the sample standard deviation of zᵢᵀ M zᵢ over √m. With
 * Rademacher probes Var[zᵀMz] = 2(‖M‖²_F − Σ M_jj²).
 */
import { dot, meanAndStandardError } from './host-vectors.js';
import type { HostOperator } from './operator.js';
import { type ProbeDistribution, ProbeStream } from './random.js';
import type { TraceEstimate } from './trace.js';

export async function hutchinsonTrace(op: HostOperator<unknown>, samples: number, distribution: ProbeDistribution, seed: number): Promise<TraceEstimate> {
  const random = new ProbeStream(seed);
  const quadratics: number[] = [];
  for (let i = 0; i < samples; i++) {
    const z = random.probe(op.size, distribution);
    quadratics.push(dot(z, await op.apply(z)));
  }
  const { mean, standardError } = meanAndStandardError(quadratics);
  return { value: mean, standardError, samples };
}
