/**
 * Eigendecomposition of a wide Gram-type matrix A = s·XᵀX (K×K) from its m < K rows X (m×K)
 * through the m×m matrix G = s·XXᵀ: A and G share their non-zero spectrum, and for
 * G v = λ v with λ > 0, u = Xᵀ v √(s/λ) is a unit eigenvector of A (A u = s XᵀX Xᵀ v √(s/λ)
 * = Xᵀ (G v) √(s/λ) = λ u). The remaining K − r eigenvalues are 0, with an orthonormal basis
 * of the complement of span(U_r) from the Householder QR of U_r (Golub and Van Loan,
 * "Matrix Computations", 4th ed., §5.2.1): Q = H₀⋯H_{r−1} = I − Y T Yᵀ (compact WY, T from
 * the recurrence of LAPACK dlarft), whose last K − r columns Q[:, r:] = E_⊥ − Y T Y₂ᵀ
 * (Y₂ = rows r.. of Y) are formed by two matrix products.
 *
 * Cost: the m×m eigensolver, 2Km² for G and U_r, ~4Kr² for the QR and YᵀY, and 2Kr(K−r) for
 * the complement, against the direct eigensolver's O(K³). The thin form (`eighFromRowsThin`)
 * stops after U_r and leaves the null space implicit; see docs/performance.md for timings.
 */
import { InvalidArgumentError } from '../errors.js';
import { eighSym } from './eigh.js';
import { gemm } from './gemm.js';
import type { SymmetricEigen } from './types.js';

/**
 * Eigenvalues of G at or below this fraction of the largest are taken as 0: their vectors
 * Xᵀv/√λ would carry relative errors ~ε·λ_max/λ (above 1e-7 here) and A's true spectrum
 * there is rounding noise of the same size.
 */
export const GRAM_RANK_TOLERANCE = 1e-9;

/**
 * The eigendecomposition of a K×K positive semi-definite matrix kept as its range:
 * A = U_r diag(values) U_rᵀ, with the null space implicit (eigenvalue 0, orthogonal projector
 * I − U_r U_rᵀ). `completeEigen` materialises the full decomposition when a consumer needs an
 * explicit basis of the null space.
 */
export interface ThinSymmetricEigen {
  /** K, the order of A. */
  readonly k: number;
  /** r, the number of eigenvalues kept (above GRAM_RANK_TOLERANCE · λ_max). */
  readonly rank: number;
  /** The r kept eigenvalues, ascending, all > 0. */
  readonly values: Float64Array;
  /** U_r, K×r row-major with orthonormal columns; column j is the eigenvector of values[j]. */
  readonly vectors: Float64Array;
}

/**
 * A = scale·XᵀX (k×k) for X (m×k row-major float64, not modified), decomposed as by
 * `eighSym`: eigenvalues ascending (the k − r zero eigenvalues first), V (k×k row-major) with
 * column j the unit eigenvector of values[j]. Exact for any m; it pays when m ≤ k/4 (CPU time
 * at m/k ≈ 0.19: 2.4–3× less than eighSym; at m/k = 0.5: 1.4× more). Most of its cost is the
 * explicit completion (2k r (k − r) flops); `eighFromRowsThin` skips it.
 *
 * @example
 * // 3 examples of 1,000 features: two 1,000×1,000 products and a 3×3 eigensolver instead of a 1,000×1,000 one.
 * const { values, vectors } = eighFromRows(x, 3, 1000, 1 / 3);
 */
export function eighFromRows(x: Float64Array, m: number, k: number, scale = 1): SymmetricEigen {
  return completeEigen(eighFromRowsThin(x, m, k, scale));
}

/**
 * A = scale·XᵀX (k×k) for X (m×k row-major float64, not modified) as its range only: the r ≤ m
 * non-zero eigenpairs from the m×m Gram matrix G = scale·XXᵀ (u = Xᵀv·√(scale/λ) for G v = λ v),
 * the null space implicit. Costs the m×m eigensolver and 2km² flops for G and U_r, against
 * O(k³) for `eighSym` and 2k r (k − r) more for the completion of `eighFromRows`.
 *
 * @example
 * const thin = eighFromRowsThin(x, 1024, 5409, 1 / 1024); // U_r is 5,409×r, r ≤ 1,024
 * // f(A) v = U_r f(Λ) U_rᵀ v + f(0) (v − U_r U_rᵀ v)
 */
export function eighFromRowsThin(x: Float64Array, m: number, k: number, scale = 1): ThinSymmetricEigen {
  if (!Number.isInteger(m) || !Number.isInteger(k) || m < 0 || k < 0 || x.length !== m * k) {
    throw new InvalidArgumentError(`eighFromRows: expected X of m×k = ${m}×${k} = ${m * k} values, received ${x.length}`);
  }
  if (!(scale > 0) || !Number.isFinite(scale)) throw new InvalidArgumentError(`eighFromRows: 'scale' must be a positive finite number, received ${scale}`);
  const xt = transpose(x, m, k); // k×m
  const g = gemm(x, m, k, xt, m);
  for (let i = 0; i < g.length; i++) g[i]! *= scale;
  const small = eighSym(g, m);
  const top = m > 0 ? Math.max(small.values[m - 1]!, 0) : 0;
  // Keep the eigenpairs above the tolerance (ascending, so they are the last r).
  let first = 0;
  while (first < m && !(small.values[first]! > GRAM_RANK_TOLERANCE * top)) first++;
  const r = m - first;
  const vr = new Float64Array(m * r);
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) vr[i * r + j] = small.vectors[i * m + first + j]!;
  const ur = r > 0 ? gemm(xt, k, m, vr, r) : new Float64Array(0); // k×r, column j ∝ Xᵀv_j
  const f = new Float64Array(r);
  for (let j = 0; j < r; j++) f[j] = Math.sqrt(scale / small.values[first + j]!);
  for (let i = 0; i < k; i++) for (let j = 0; j < r; j++) ur[i * r + j]! *= f[j]!;
  return { k, rank: r, values: small.values.slice(first), vectors: ur };
}

/**
 * The full decomposition of a thin one: eigenvalues ascending with the k − r zeros first, and
 * V = [Q_⊥, U_r] (k×k row-major) with Q_⊥ an orthonormal basis of the null space from the
 * Householder QR of U_r (`orthonormalComplement`, 2k r (k − r) flops).
 *
 * @example
 * const { values, vectors } = completeEigen(eighFromRowsThin(x, m, k));
 */
export function completeEigen(thin: ThinSymmetricEigen): SymmetricEigen {
  const { k, rank: r } = thin;
  const complement = orthonormalComplement(thin.vectors, k, r);
  const values = new Float64Array(k);
  const vectors = new Float64Array(k * k);
  const z = k - r;
  values.set(thin.values, z);
  for (let i = 0; i < k; i++) {
    const row = i * k;
    vectors.set(complement.subarray(i * z, (i + 1) * z), row);
    vectors.set(thin.vectors.subarray(i * r, (i + 1) * r), row + z);
  }
  return { values, vectors };
}

/**
 * An orthonormal basis (k×(k−r) row-major) of the orthogonal complement of the span of the r
 * orthonormal columns of `u` (k×r row-major), from the Householder QR of u: the last k − r
 * columns of Q = H₀⋯H_{r−1}.
 */
export function orthonormalComplement(u: Float64Array, k: number, r: number): Float64Array {
  const z = k - r;
  if (z <= 0) return new Float64Array(0);
  if (r === 0) {
    const eye = new Float64Array(k * k);
    for (let i = 0; i < k; i++) eye[i * k + i] = 1;
    return eye;
  }
  // Reflector j as row j of `y` (r×k), contiguous: y[j][i] = v_j[i], zero above i = j, 1 at j.
  // Blocked (GVL Algorithm 5.2.2): each panel of NB reflectors is factored row by row here, and
  // the later columns take the panel's I − Y T Yᵀ in two products (`gemm`).
  const y = transpose(u, k, r);
  const tau = new Float64Array(r);
  for (let j0 = 0; j0 < r; j0 += QR_BLOCK) {
    const j1 = Math.min(r, j0 + QR_BLOCK);
    for (let j = j0; j < j1; j++) {
      householderRow(y, k, j, tau);
      applyReflector(y, k, j, tau[j]!, j + 1, j1);
    }
    if (j1 === r) break;
    // Later columns C (rows j1.. of y, entries j0..): C ← C (I − Y T Yᵀ) in row form, that is
    // (H_{j0}⋯H_{j1−1})ᵀ applied to the columns, with Y the panel's reflectors.
    const nb = j1 - j0;
    const width = k - j0;
    const trail = r - j1;
    const panel = new Float64Array(nb * width);
    for (let l = 0; l < nb; l++) panel.set(y.subarray((j0 + l) * k + j0, (j0 + l + 1) * k), l * width);
    const c = new Float64Array(trail * width);
    for (let l = 0; l < trail; l++) c.set(y.subarray((j1 + l) * k + j0, (j1 + l + 1) * k), l * width);
    const t = upperT(gemm(panel, nb, width, transpose(panel, nb, width), nb), tau.subarray(j0, j1), nb);
    const w = gemm(gemm(c, trail, width, transpose(panel, nb, width), nb), trail, nb, t, nb);
    const update = gemm(w, trail, nb, panel, width);
    for (let l = 0; l < trail; l++) {
      const row = (j1 + l) * k + j0;
      for (let i = 0; i < width; i++) y[row + i]! -= update[l * width + i]!;
    }
  }
  // T (r×r upper triangular): H₀⋯H_{r−1} = I − Y T Yᵀ, T[:j, j] = −τ_j T[:j, :j] (Yᵀ y_j)[:j], T[j][j] = τ_j.
  const tm = upperT(gemm(y, r, k, transpose(y, r, k), r), tau, r);
  // Q[:, r:] = E_⊥ − Y (T Y₂ᵀ), Y₂ᵀ = y[:, r:] (r×z).
  const y2t = new Float64Array(r * z);
  for (let j = 0; j < r; j++) y2t.set(y.subarray(j * k + r, (j + 1) * k), j * z);
  const tY2t = gemm(tm, r, r, y2t, z);
  const q = gemm(transpose(y, r, k), k, r, tY2t, z);
  for (let i = 0; i < q.length; i++) q[i] = -q[i]!;
  for (let i = 0; i < z; i++) q[(r + i) * z + i]! += 1;
  return q;
}

/** Reflectors per panel of the blocked QR. */
const QR_BLOCK = 64;

/** Householder reflector (LAPACK dlarfg) zeroing row j of `y` beyond entry j; stores v_j in place and τ_j. */
function householderRow(y: Float64Array, k: number, j: number, tau: Float64Array): void {
  const row = j * k;
  let norm2 = 0;
  for (let i = j + 1; i < k; i++) norm2 += y[row + i]! * y[row + i]!;
  const alpha = y[row + j]!;
  if (norm2 === 0 && alpha >= 0) {
    tau[j] = 0; // H_j = I
  } else {
    const beta = -Math.sign(alpha || 1) * Math.sqrt(alpha * alpha + norm2);
    tau[j] = (beta - alpha) / beta;
    const inv = 1 / (alpha - beta);
    for (let i = j + 1; i < k; i++) y[row + i]! *= inv;
  }
  y[row + j] = 1;
  for (let i = 0; i < j; i++) y[row + i] = 0;
}

/** Applies H_j = I − τ v_j v_jᵀ to rows from..to−1 of `y` (entries j..). */
function applyReflector(y: Float64Array, k: number, j: number, t: number, from: number, to: number): void {
  if (t === 0) return;
  const row = j * k;
  for (let l = from; l < to; l++) {
    const other = l * k;
    let dot = 0;
    for (let i = j; i < k; i++) dot += y[row + i]! * y[other + i]!;
    const s = t * dot;
    if (s !== 0) for (let i = j; i < k; i++) y[other + i]! -= s * y[row + i]!;
  }
}

/**
 * T (n×n upper triangular) with H₀⋯H_{n−1} = I − Y T Yᵀ, from YᵀY (`yty`, n×n) and τ: the
 * recurrence of LAPACK dlarft, T[:j, j] = −τ_j T[:j, :j] (YᵀY)[:j, j], T[j][j] = τ_j.
 */
function upperT(yty: Float64Array, tau: Float64Array, n: number): Float64Array {
  const tm = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < j; i++) {
      let s = 0;
      for (let l = i; l < j; l++) s += tm[i * n + l]! * yty[l * n + j]!;
      tm[i * n + j] = -tau[j]! * s;
    }
    tm[j * n + j] = tau[j]!;
  }
  return tm;
}

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}
