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
 * A first pass without eigenvectors (O(n²)) finds the eigenvalues; the second pass, which
 * records rotations, shifts each sweep by the eigenvalue nearest to the Wilkinson shift. An
 * exact eigenvalue of the block deflates in one sweep in exact arithmetic ("perfect shifts",
 * Parlett, The Symmetric Eigenvalue Problem, §8.13); in floating point this still saves about
 * a quarter of the rotations. Shifts only change the speed, never the backward stability.
 */
export function tridiagonalEigen(d: Float64Array, e: Float64Array, q: Float64Array, n: number): boolean {
  const values = d.slice();
  if (!qlIterate(values, e.slice(), n, undefined, undefined)) return false;
  values.sort();
  return qlIterate(d, e, n, values, q);
}

/**
 * QL iterations until (d, e) is diagonal, replaying the rotations on `q` when given.
 * Deflation is the normwise test of EISPACK tql2, |e_i| ≤ ε‖T‖: the Householder reduction has
 * already perturbed A by about ε‖A‖, so a relative test (LAPACK dsteqr) would only cost sweeps.
 */
function qlIterate(
  d: Float64Array,
  e: Float64Array,
  n: number,
  shifts: Float64Array | undefined,
  q: Float64Array | undefined,
): boolean {
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(d[i]!) + Math.abs(e[i]!) + (i > 0 ? Math.abs(e[i - 1]!) : 0));
  const tol = Number.EPSILON * norm;
  const log = q ? new RotationLog() : undefined;
  const panel = q ? new Float64Array(n * PANEL) : undefined;
  let budget = 30 * n;
  let snappedAt = -1; // lo of the last sweep shifted by a known eigenvalue
  for (let lo = 0; lo < n - 1; lo++) {
    for (;;) {
      let hi = lo;
      while (hi < n - 1 && Math.abs(e[hi]!) > tol) hi++;
      if (hi < n - 1) e[hi] = 0;
      if (hi === lo) break;
      if (budget-- === 0) return false;
      if (log && log.count + (hi - lo) > CHUNK) {
        replay(q!, n, log, panel!);
        log.clear();
      }
      // A known eigenvalue within |e[lo+1]| of Wilkinson's shift is at least as good a shift
      // (the leading 2×2 block's eigenvalue is that close to one of the block's, by Weyl).
      // A farther one may belong to another block and could stall the iteration, so it is
      // not used, and a snapped sweep that did not deflate is followed by a Wilkinson sweep.
      let mu = wilkinsonShift(d, e, lo);
      const retry = snappedAt === lo;
      snappedAt = -1;
      if (shifts && hi - lo >= 2 && !retry) {
        const candidate = nearest(shifts, mu);
        if (Math.abs(candidate - mu) <= Math.abs(e[lo + 1]!)) {
          mu = candidate;
          snappedAt = lo;
        }
      }
      qlSweep(d, e, lo, hi, mu, log);
    }
  }
  if (log && log.lo.length > 0) replay(q!, n, log, panel!);
  return true;
}

/**
 * The eigenvalue of the leading 2×2 block [[d_lo, e_lo], [e_lo, d_lo+1]] closer to d_lo
 * (Wilkinson's shift), written with hypot so that nothing overflows.
 */
function wilkinsonShift(d: Float64Array, e: Float64Array, lo: number): number {
  const td = 0.5 * (d[lo + 1]! - d[lo]!);
  const el = e[lo]!;
  if (td === 0) return d[lo]! - Math.abs(el);
  const h = Math.hypot(td, el);
  return d[lo]! - (el / (td + (td > 0 ? h : -h))) * el;
}

/** The entry of the ascending `sorted` closest to mu (binary search). */
function nearest(sorted: Float64Array, mu: number): number {
  let a = 0, b = sorted.length - 1;
  while (b - a > 1) {
    const m = (a + b) >> 1;
    if (sorted[m]! < mu) a = m;
    else b = m;
  }
  return Math.abs(sorted[a]! - mu) <= Math.abs(sorted[b]! - mu) ? sorted[a]! : sorted[b]!;
}

/**
 * One implicit QL step with shift mu on the unreduced block lo..hi: the QR step of the block
 * with its order reversed, so that the bulge is chased upwards and d[lo] converges first.
 * Records rotation (c, s) acting on columns (k, k+1) as
 * [q_k, q_{k+1}] ← [c q_k − s q_{k+1}, s q_k + c q_{k+1}].
 */
function qlSweep(d: Float64Array, e: Float64Array, lo: number, hi: number, mu: number, log: RotationLog | undefined): void {
  let x = d[hi]! - mu;
  let z = e[hi - 1]!;
  const cs = log?.cs;
  let at = log ? 2 * log.count : 0;
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
    if (cs) {
      // In original column order the rotation is (c, −s).
      cs[at++] = c;
      cs[at++] = -s;
    }
  }
  if (log) {
    log.count += hi - lo;
    log.lo.push(lo);
    log.hi.push(hi);
  }
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
