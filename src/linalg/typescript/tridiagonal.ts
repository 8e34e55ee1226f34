/**
 * Householder reduction of a symmetric matrix to tridiagonal form, A = Q T Qᵀ
 * (Golub and Van Loan, Matrix Computations, 4th ed., algorithm 8.3.1), on full row-major storage.
 */
import { formHouseholderQ } from './householder-q.js';

/** The tridiagonal form and the orthogonal factor of A = Q T Qᵀ. */
export interface Tridiagonal {
  /** Diagonal of T (length n). */
  d: Float64Array;
  /** Sub-diagonal of T: e[i] = T[i+1][i] for i < n−1; e[n−1] = 0. */
  e: Float64Array;
  /** Q, n×n row-major. */
  q: Float64Array;
}

/**
 * Computes d, e and Q with A = Q T Qᵀ for the symmetric n×n row-major `a` (not modified).
 *
 * Step k reflects row k (= column k) of the trailing matrix B onto e₁ with H = I − τvvᵀ and
 * updates B ← HBH = B − vwᵀ − wvᵀ, where p = τBv and w = p − (τ/2)(pᵀv)v (GVL eq. 8.3.3).
 * Only the upper triangle is kept, and the rank-2 update of step k−1 is applied lazily,
 * in the same row-streaming pass that computes p for step k: each entry is loaded and
 * stored once per step, at contiguous addresses.
 */
export function tridiagonalize(a: Float64Array, n: number): Tridiagonal {
  const w = a.slice(); // working copy; row k ends up holding the Householder vector v_k
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  // Pending rank-2 update (vPrev, wPrev) and the current reflector v, indexed by global row.
  let vPrev = new Float64Array(n);
  let wPrev = new Float64Array(n);
  let v = new Float64Array(n);
  let p = new Float64Array(n);

  for (let k = 0; k < n; k++) {
    const rk = k * n;
    // Bring row k up to date with the pending update.
    const vk = vPrev[k]!, wk = wPrev[k]!;
    for (let j = k; j < n; j++) w[rk + j] = w[rk + j]! - vk * wPrev[j]! - wk * vPrev[j]!;
    d[k] = w[rk + k]!;
    if (k === n - 1) break;

    // Householder vector for x = w[k, k+1..]: H x = beta e₁ with beta = −sign(x₀)‖x‖.
    v.fill(0, 0, k + 1);
    const alpha = w[rk + k + 1]!;
    let sigma = 0;
    for (let j = k + 2; j < n; j++) sigma += w[rk + j]! * w[rk + j]!;
    let t = 0;
    if (sigma === 0) {
      e[k] = alpha; // already reduced: H = I
      v.fill(0, k + 1);
    } else {
      const norm = Math.sqrt(alpha * alpha + sigma);
      const beta = alpha <= 0 ? norm : -norm;
      t = (beta - alpha) / beta;
      const scale = 1 / (alpha - beta);
      v[k + 1] = 1;
      for (let j = k + 2; j < n; j++) v[j] = w[rk + j]! * scale;
      e[k] = beta;
    }
    tau[k] = t;
    for (let j = k + 1; j < n; j++) w[rk + j] = v[j]!;

    // Fused pass over the trailing upper triangle: apply the pending update and form p = B v.
    p.fill(0);
    for (let i = k + 1; i < n; i++) {
      const ri = i * n;
      const vpi = vPrev[i]!, wpi = wPrev[i]!, vi = v[i]!;
      let b = w[ri + i]! - 2 * vpi * wpi;
      w[ri + i] = b;
      let acc = b * vi;
      for (let j = i + 1; j < n; j++) {
        b = w[ri + j]! - vpi * wPrev[j]! - wpi * vPrev[j]!;
        w[ri + j] = b;
        acc += b * v[j]!;
        p[j] = p[j]! + b * vi;
      }
      p[i] = p[i]! + acc;
    }
    // w = τp − (τ²/2)(pᵀv)v becomes the next pending update, together with v.
    let pv = 0;
    for (let j = k + 1; j < n; j++) pv += p[j]! * v[j]!;
    const half = 0.5 * t * t * pv;
    for (let j = 0; j <= k; j++) p[j] = 0;
    for (let j = k + 1; j < n; j++) p[j] = t * p[j]! - half * v[j]!;
    [vPrev, v] = [v, vPrev];
    [wPrev, p] = [p, wPrev];
  }
  const q = formHouseholderQ(w, tau, n, n - 2);
  return { d, e, q };
}
