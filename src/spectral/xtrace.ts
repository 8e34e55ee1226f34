/**
 * XTrace (Epperly, Tropp & Webber 2024, "XTrace: making the most of every sample in stochastic
 * trace estimation", SIAM J. Matrix Anal. Appl. 45(1)): the exchangeable version of Hutch++.
 * With m/2 probes Ω and Y = MΩ = QR, each probe ωᵢ is in turn the Hutchinson probe while the
 * others build the low-rank part:
 *   tᵢ = tr(Qᵢᵀ M Qᵢ) + ωᵢᵀ (I − QᵢQᵢᵀ) M (I − QᵢQᵢᵀ) ωᵢ,   range Qᵢ = range(M Ω₋ᵢ),
 *   tr(M) ≈ (1/(m/2)) Σᵢ tᵢ,   standard error = std(tᵢ)/√(m/2).
 * Qᵢ needs no new products: range(M Ω₋ᵢ) = range(Q (I − sᵢsᵢᵀ)) with sᵢ the normalised i-th
 * column of R⁻ᵀ (orthogonal to every other column of R), so with Z = MQ and H = QᵀZ:
 *   tr(Qᵢᵀ M Qᵢ) = tr H − sᵢᵀ H sᵢ,
 *   x = (I − QᵢQᵢᵀ) ωᵢ = ωᵢ − Q(I − sᵢsᵢᵀ)Qᵀωᵢ,   M x = yᵢ − Z(I − sᵢsᵢᵀ)Qᵀωᵢ.
 * Total: m/2 products for Y and m/2 for Z.
 */
import { InvalidArgumentError } from '../errors.js';
import { axpy, combine, dot, meanAndStandardError, scale } from './host-vectors.js';
import type { HostOperator } from './operator.js';
import { type ProbeDistribution, ProbeStream } from './random.js';
import type { TraceEstimate } from './trace.js';

/** What XTrace and XDiag share: probes Ω, Y = MΩ, Q (Y = QR), Z = MQ, and the vectors sᵢ. */
export interface ExchangeableSketch {
  omega: Float64Array[];
  Y: Float64Array[];
  Q: Float64Array[];
  Z: Float64Array[];
  /** sᵢ (length r = number of columns of Q), one per probe. */
  s: Float64Array[];
}

/** Builds the sketch from `probes` probes (2·probes products). */
export async function exchangeableSketch(op: HostOperator<unknown>, probes: number, distribution: ProbeDistribution, seed: number, where: string): Promise<ExchangeableSketch> {
  const random = new ProbeStream(seed);
  const omega = Array.from({ length: probes }, () => random.probe(op.size, distribution));
  const Y: Float64Array[] = [];
  for (const w of omega) Y.push(await op.apply(w));
  // Modified Gram–Schmidt twice, keeping R (Y = QR); a rank-deficient sketch (M of rank < m/2)
  // has no R⁻¹, and then the plain Hutchinson estimator is the right tool.
  const Q: Float64Array[] = [];
  const R = new Float64Array(probes * probes); // row-major, R[i, j] = qᵢᵀ y_j
  Y.forEach((y, j) => {
    const x = Float64Array.from(y);
    for (let pass = 0; pass < 2; pass++) {
      Q.forEach((q, i) => {
        const c = dot(x, q);
        R[i * probes + j]! += c;
        axpy(x, -c, q);
      });
    }
    const len = Math.sqrt(dot(x, x));
    const before = Math.sqrt(dot(y, y));
    if (!(len > 1e-10 * before)) {
      throw new InvalidArgumentError(`${where}: the sketch M Ω is rank deficient (the operator has rank < ${probes}); use method 'hutchinson' or fewer samples`);
    }
    R[j * probes + j] = len;
    scale(x, 1 / len);
    Q.push(x);
  });
  // sᵢ = R⁻ᵀ eᵢ normalised: solve Rᵀ s = eᵢ (forward substitution, Rᵀ lower triangular).
  const s = Array.from({ length: probes }, (_, i) => {
    const x = new Float64Array(probes);
    for (let r = 0; r < probes; r++) {
      let v = r === i ? 1 : 0;
      for (let c = 0; c < r; c++) v -= R[c * probes + r]! * x[c]!;
      x[r] = v / R[r * probes + r]!;
    }
    scale(x, 1 / Math.sqrt(dot(x, x)));
    return x;
  });
  const Z: Float64Array[] = [];
  for (const q of Q) Z.push(await op.apply(q));
  return { omega, Y, Q, Z, s };
}

/** Coefficients (I − ssᵀ) c for a vector c of length r. */
export function deflate(c: Float64Array, s: Float64Array): Float64Array {
  const out = Float64Array.from(c);
  axpy(out, -dot(s, c), s);
  return out;
}

export async function xtraceTrace(op: HostOperator<unknown>, samples: number, distribution: ProbeDistribution, seed: number): Promise<TraceEstimate> {
  const probes = Math.floor(samples / 2);
  const { omega, Y, Q, Z, s } = await exchangeableSketch(op, probes, distribution, seed, 'estimateTrace');
  const r = Q.length;
  const H = new Float64Array(r * r);
  for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) H[i * r + j] = 0.5 * (dot(Q[i]!, Z[j]!) + dot(Q[j]!, Z[i]!));
  let trH = 0;
  for (let i = 0; i < r; i++) trH += H[i * r + i]!;
  const estimates = omega.map((w, i) => {
    const si = s[i]!;
    let sHs = 0;
    for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) sHs += si[a]! * H[a * r + b]! * si[b]!;
    const c = deflate(Float64Array.from(Q, (q) => dot(q, w)), si);
    const x = Float64Array.from(w);
    axpy(x, -1, combine(Q, c, op.size));
    const mx = Float64Array.from(Y[i]!);
    axpy(mx, -1, combine(Z, c, op.size));
    return trH - sHs + dot(x, mx);
  });
  const { mean, standardError } = meanAndStandardError(estimates);
  return { value: mean, standardError, samples: op.products };
}
