/**
 * Eigenvalues and eigenvectors of a symmetric tridiagonal matrix by the implicit QL method
 * with Wilkinson shifts (Bowdler, Martin, Reinsch and Wilkinson, "The QR and QL algorithms for
 * symmetric matrices", Numer. Math. 11, 1968; the EISPACK routine tql2).
 *
 * Unlike tql2, the iteration does not update the eigenvector matrix as it goes: it records its
 * Givens rotations, which are then replayed on cache-sized panels of Q. Applying each rotation
 * to two full columns of a row-major Q would stride through all of Q once per sweep.
 */

/** Rows of Q per panel: 16 rows × n columns stay in cache, and the carried column fits in locals. */
const PANEL = 16;
/** Rotations recorded before a replay, to bound the extra memory (about 20 bytes each). */
const CHUNK = 1 << 18;

/** Recorded QL sweeps: sweep i has rotations in planes (k, k+1) for k = hi−1 down to lo. */
class RotationLog {
  cs = new Float64Array(2 * CHUNK);
  count = 0;
  lo: number[] = [];
  hi: number[] = [];
  clear(): void {
    this.count = 0;
    this.lo.length = 0;
    this.hi.length = 0;
  }
}

/**
 * Overwrites `d` with the eigenvalues (unsorted) of the tridiagonal (d, e) and `q` (row-major
 * n×n) with Q·Z, where the columns of Z are the eigenvectors of the tridiagonal.
 * Returns false when the iterations exceed 30·n in total (the budget of LAPACK dsteqr).
 *
 * Deflation uses the relative test of LAPACK dsteqr, e_i² ≤ ε²|d_i d_{i+1}| + safmin, which
 * keeps small eigenvalues accurate relative to their own size.
 */
export function tridiagonalEigen(d: Float64Array, e: Float64Array, q: Float64Array, n: number): boolean {
  const eps2 = Number.EPSILON * Number.EPSILON;
  const safmin = 2.2250738585072014e-308;
  const negligible = (i: number): boolean => e[i]! * e[i]! <= eps2 * Math.abs(d[i]! * d[i + 1]!) + safmin;
  const log = new RotationLog();
  const panel = new Float64Array(n * PANEL);
  let budget = 30 * n;
  for (let lo = 0; lo < n - 1; lo++) {
    for (;;) {
      let hi = lo;
      while (hi < n - 1 && !negligible(hi)) hi++;
      if (hi < n - 1) e[hi] = 0;
      if (hi === lo) break;
      if (budget-- === 0) return false;
      if (log.count + (hi - lo) > CHUNK) {
        replay(q, n, log, panel);
        log.clear();
      }
      qlSweep(d, e, lo, hi, log);
    }
  }
  if (log.lo.length > 0) replay(q, n, log, panel);
  return true;
}

/**
 * One implicit QL step on the unreduced block lo..hi: the QR step of the block with its order
 * reversed, so that the bulge is chased upwards and d[lo] converges first. The shift is the
 * eigenvalue of the leading 2×2 block closer to d[lo] (Wilkinson), written with hypot so that
 * nothing overflows. Records rotation (c, s) acting on columns (k, k+1) as
 * [q_k, q_{k+1}] ← [c q_k − s q_{k+1}, s q_k + c q_{k+1}].
 */
function qlSweep(d: Float64Array, e: Float64Array, lo: number, hi: number, log: RotationLog): void {
  const td = 0.5 * (d[lo + 1]! - d[lo]!);
  const el = e[lo]!;
  let mu = d[lo]!;
  if (td === 0) mu -= Math.abs(el);
  else mu -= (el / (td + (td > 0 ? Math.hypot(td, el) : -Math.hypot(td, el)))) * el;

  let x = d[hi]! - mu;
  let z = e[hi - 1]!;
  const cs = log.cs;
  let at = 2 * log.count;
  for (let k = hi - 1; k >= lo; k--) {
    const r = Math.hypot(x, z);
    let c = 1, s = 0;
    if (r !== 0) {
      c = x / r;
      s = -z / r;
    }
    if (k < hi - 1) e[k + 1] = r; // the bulge is annihilated into e[k+1]
    // T ← GᵀTG on the 2×2 block, in reversed coordinates (a = d[k+1], cc = d[k]).
    const a = d[k + 1]!, b = e[k]!, cc = d[k]!;
    const sc = s * c, c2 = c * c, s2 = s * s;
    d[k + 1] = a * c2 - 2 * b * sc + cc * s2;
    d[k] = a * s2 + 2 * b * sc + cc * c2;
    e[k] = (a - cc) * sc + b * (c2 - s2);
    if (k > lo) {
      z = -s * e[k - 1]!;
      e[k - 1] = e[k - 1]! * c;
    }
    x = e[k]!;
    // In original column order the rotation is (c, −s).
    cs[at++] = c;
    cs[at++] = -s;
  }
  log.count += hi - lo;
  log.lo.push(lo);
  log.hi.push(hi);
}

/**
 * Applies the logged rotations to Q, PANEL rows at a time. The panel is transposed into
 * `panel` (panel[k·PANEL + t] = Q[r+t][k]) so that each column is contiguous; a QL sweep then
 * streams down through the columns carrying the updated column k from one rotation to the next.
 */
function replay(q: Float64Array, n: number, log: RotationLog, panel: Float64Array): void {
  const cs = log.cs;
  const sweeps = log.lo.length;
  for (let r = 0; r < n; r += PANEL) {
    const rows = Math.min(PANEL, n - r);
    panel.fill(0);
    for (let t = 0; t < rows; t++) {
      const row = (r + t) * n;
      for (let k = 0; k < n; k++) panel[k * PANEL + t] = q[row + k]!;
    }
    let at = 0;
    for (let sw = 0; sw < sweeps; sw++) {
      const lo = log.lo[sw]!, hi = log.hi[sw]!;
      for (let h = 0; h < PANEL; h += 8) {
        let base = hi * PANEL + h;
        let y0 = panel[base]!, y1 = panel[base + 1]!, y2 = panel[base + 2]!, y3 = panel[base + 3]!;
        let y4 = panel[base + 4]!, y5 = panel[base + 5]!, y6 = panel[base + 6]!, y7 = panel[base + 7]!;
        let a = at;
        for (let k = hi - 1; k >= lo; k--) {
          const c = cs[a++]!, s = cs[a++]!;
          const below = base;
          base -= PANEL;
          let x = panel[base]!;
          panel[below] = s * x + c * y0; y0 = c * x - s * y0;
          x = panel[base + 1]!;
          panel[below + 1] = s * x + c * y1; y1 = c * x - s * y1;
          x = panel[base + 2]!;
          panel[below + 2] = s * x + c * y2; y2 = c * x - s * y2;
          x = panel[base + 3]!;
          panel[below + 3] = s * x + c * y3; y3 = c * x - s * y3;
          x = panel[base + 4]!;
          panel[below + 4] = s * x + c * y4; y4 = c * x - s * y4;
          x = panel[base + 5]!;
          panel[below + 5] = s * x + c * y5; y5 = c * x - s * y5;
          x = panel[base + 6]!;
          panel[below + 6] = s * x + c * y6; y6 = c * x - s * y6;
          x = panel[base + 7]!;
          panel[below + 7] = s * x + c * y7; y7 = c * x - s * y7;
        }
        panel[base] = y0; panel[base + 1] = y1; panel[base + 2] = y2; panel[base + 3] = y3;
        panel[base + 4] = y4; panel[base + 5] = y5; panel[base + 6] = y6; panel[base + 7] = y7;
      }
      at += 2 * (hi - lo);
    }
    for (let t = 0; t < rows; t++) {
      const row = (r + t) * n;
      for (let k = 0; k < n; k++) q[row + k] = panel[k * PANEL + t]!;
    }
  }
}
