/**
 * Thick-restart Lanczos (Wu & Simon 2000, SIAM J. Matrix Anal. Appl. 22(2)) for the k extreme
 * eigenpairs of a symmetric operator, with full reorthogonalisation in float64 on the host.
 *
 * The basis Q (d×b, orthonormal) grows by the Lanczos step q_{b+1} ∝ (I − QQᵀ) M q_b (taken as
 * the residual M y − θ y of the most extreme unconverged Ritz pair, parallel to it in a Krylov
 * space and still the right direction once the space is not one: Morgan & Scott 1986). Rather
 * than the three-term recurrence, the projected matrix is formed from the stored products
 * W = MQ as H = sym(QᵀW), and residual norms come from the Gram matrix WᵀW:
 *   ‖M y − θ y‖² = sᵀ WᵀW s − θ²   for the Ritz pair (θ, y = Q s), sᵀ H s = θ, ‖s‖ = 1,
 * so every Ritz pair's residual is known without another product, and any vector may join the
 * basis (the Rayleigh–Ritz step stays exact). When b reaches the basis size m, the basis is
 * compressed to the p most wanted Ritz vectors and the continuation q_{m+1} (orthogonal to the
 * whole old basis: the thick restart), at no extra product.
 *
 * Repeated eigenvalues: a Krylov space from one start vector holds one direction of each
 * eigenspace. So when the k wanted pairs have converged, a random vector orthogonal to the
 * basis is injected and the Lanczos chain continues from it for `verifySteps` products; a
 * missing copy of a converged eigenvalue (or any eigenvalue the first chain missed) is extreme
 * in that deflated chain, grows fast, and enters the wanted set, in which case the run goes on
 * (and verifies again). Without such a copy the wanted set stays converged and the run stops.
 */
import { eighSym } from '../linalg/index.js';
import { axpy, combine, dot, orthogonalize, scale } from './host-vectors.js';
import { ProbeStream } from './random.js';
import type { HostOperator } from './operator.js';

export type Which = 'largest' | 'smallest';

export interface LanczosSettings {
  k: number;
  which: Which;
  /** Converged when ‖M y − θ y‖ ≤ tol · ‖M‖ (‖M‖ estimated by the largest |Ritz value| seen). */
  tol: number;
  /** Most products. */
  maxProducts: number;
  /** Largest basis before a restart. */
  basisSize: number;
  /** Products of the multiplicity check after convergence (0: none). */
  verifySteps: number;
  seed: number;
}

export interface LanczosOutcome {
  values: Float64Array;
  vectors: Float64Array[];
  residuals: Float64Array;
  converged: boolean;
  products: number;
  restarts: number;
}

interface Ritz {
  values: Float64Array; // wanted order
  coefficients: Float64Array[]; // s_i, length b
  residuals: Float64Array;
}

export async function thickRestartLanczos(op: HostOperator<unknown>, s: LanczosSettings): Promise<LanczosOutcome> {
  const d = op.size;
  const m = Math.min(d, s.basisSize);
  const random = new ProbeStream(s.seed);
  const Q: Float64Array[] = [];
  const W: Float64Array[] = [];
  // H = sym(QᵀW) and G = WᵀW, row-major m×m (only the leading b×b is in use).
  let H = new Float64Array(m * m);
  let G = new Float64Array(m * m);
  let next: Float64Array = random.probe(d, 'normal');
  let normEstimate = 0;
  let restarts = 0;
  let verifyFrom = -1; // products count when the current verification chain began
  let kthAtVerify = 0; // the k-th wanted value then
  let ritz: Ritz | null = null;
  let converged = false;

  while (true) {
    // Extend the basis by `next`, made orthonormal to Q; a chain that has become invariant (or a
    // vector already in span Q) is replaced by a random direction.
    let len = orthogonalize(next, Q);
    for (let tries = 0; len <= 1e-10 * Math.max(normEstimate, 1e-300) && tries < 3 && Q.length < d; tries++) {
      next = random.probe(d, 'normal');
      len = orthogonalize(next, Q);
    }
    if (Q.length >= d || len === 0) break;
    scale(next, 1 / len);
    const b = Q.length;
    const w = await op.apply(next);
    Q.push(next);
    W.push(w);
    for (let i = 0; i <= b; i++) {
      const h = 0.5 * (dot(Q[i]!, w) + dot(next, W[i]!));
      H[i * m + b] = H[b * m + i] = h;
      G[i * m + b] = G[b * m + i] = dot(W[i]!, w);
    }
    const size = b + 1;
    // The b×b eigenproblem costs O(b³): with a large basis, solve it every ~b/16 steps only
    // (in between, the chain simply continues from the last product, the Lanczos step).
    if (ritz && size > 32 && size % Math.ceil(size / 16) !== 0 && size < m && size < d && op.products < s.maxProducts) {
      next = Float64Array.from(w);
      continue;
    }
    ritz = rayleighRitz(H, G, m, size, s);
    for (const v of ritz.values) normEstimate = Math.max(normEstimate, Math.abs(v));
    const allConverged = size >= s.k && ritz.residuals.every((r) => r <= s.tol * normEstimate);
    const kth = ritz.values[ritz.values.length - 1]!;
    // The injected chain found something (an unconverged pair, or a converged one beyond the
    // k-th value): converge it, then verify again with a fresh vector.
    if (verifyFrom >= 0 && (!allConverged || Math.abs(kth - kthAtVerify) > s.tol * normEstimate)) verifyFrom = -1;
    if (allConverged && (s.verifySteps === 0 || size >= d || (verifyFrom >= 0 && op.products - verifyFrom >= s.verifySteps))) {
      converged = true;
      break;
    }
    if (op.products >= s.maxProducts) break;
    if (allConverged && verifyFrom < 0) {
      verifyFrom = op.products;
      kthAtVerify = kth;
      next = random.probe(d, 'normal');
    } else if (allConverged) {
      next = Float64Array.from(w); // the verification chain goes on
    } else {
      // The residual of the most extreme unconverged pair: in a Krylov space every Ritz residual
      // is parallel to the Lanczos vector q_{b+1}, so this is the Lanczos step; once a random
      // vector has joined the basis it still refines the pair that needs it (Davidson-style).
      const t = ritz.residuals.findIndex((r) => r > s.tol * normEstimate);
      next = combine(W, ritz.coefficients[t]!, d);
      axpy(next, -ritz.values[t]!, combine(Q, ritz.coefficients[t]!, d));
    }
    if (Q.length === m && Q.length < d) {
      // Thick restart: continuation orthogonal to the whole basis, then compress.
      orthogonalize(next, Q);
      const keep = Math.min(Q.length - 1, Math.max(s.k + Math.floor((m - s.k) / 2), s.k));
      const all = rayleighRitz(H, G, m, Q.length, { ...s, k: keep });
      const newQ = all.coefficients.map((c) => combine(Q, c, d));
      const newW = all.coefficients.map((c) => combine(W, c, d));
      const [H2, G2] = [new Float64Array(m * m), new Float64Array(m * m)];
      for (let i = 0; i < keep; i++) {
        H2[i * m + i] = all.values[i]!;
        for (let j = 0; j < keep; j++) G2[i * m + j] = dot(newW[i]!, newW[j]!);
      }
      Q.splice(0, Q.length, ...newQ);
      W.splice(0, W.length, ...newW);
      H = H2;
      G = G2;
      restarts++;
    }
  }
  const k = Math.min(s.k, ritz?.values.length ?? 0);
  return {
    values: ritz ? ritz.values.slice(0, k) : new Float64Array(0),
    vectors: ritz ? ritz.coefficients.slice(0, k).map((c) => combine(Q, c, d)) : [],
    residuals: ritz ? ritz.residuals.slice(0, k) : new Float64Array(0),
    converged,
    products: op.products,
    restarts,
  };
}

/** The min(k, b) most wanted Ritz pairs of the leading b×b of H, with residual norms from G. */
function rayleighRitz(H: Float64Array, G: Float64Array, m: number, b: number, s: Pick<LanczosSettings, 'k' | 'which'>): Ritz {
  const h = new Float64Array(b * b);
  for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) h[i * b + j] = H[i * m + j]!;
  const { values, vectors } = eighSym(h, b); // ascending
  const k = Math.min(s.k, b);
  const order = Array.from({ length: k }, (_, t) => (s.which === 'largest' ? b - 1 - t : t));
  const coefficients = order.map((j) => Float64Array.from({ length: b }, (_, r) => vectors[r * b + j]!));
  const residuals = new Float64Array(k);
  coefficients.forEach((c, t) => {
    let sgs = 0;
    for (let i = 0; i < b; i++) {
      let row = 0;
      for (let j = 0; j < b; j++) row += G[i * m + j]! * c[j]!;
      sgs += c[i]! * row;
    }
    const theta = values[order[t]!]!;
    residuals[t] = Math.sqrt(Math.max(0, sgs - theta * theta));
  });
  return { values: Float64Array.from(order, (j) => values[j]!), coefficients, residuals };
}
