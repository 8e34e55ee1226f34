/**
 * Extreme eigenvalues of a PSD parameter-space matrix through products M v only (Lanczos with
 * full reorthogonalisation, Golub & Van Loan §10.1), for the matrices whose own `norm(2)` would
 * be too costly: a low-rank factor with n·O ≫ d rows, or a matrix-free one where each product
 * is a pass over the data. Browser-safe.
 */
import { tf } from '../tf.js';
import { PVector, type LayerCollection } from '../index.js';
import { eighSym } from '../linalg/index.js';

export interface LanczosOptions {
  /** Maximum number of products M v (default 30). */
  maxIterations?: number;
  /** Stop when the largest Ritz value changes by less than rtol relatively (default 1e-4). */
  rtol?: number;
  /** Seed of the start vector (default 0). */
  seed?: number;
}

export interface LanczosResult {
  /** The largest Ritz value: a lower bound on λ_max that converges to it. */
  value: number;
  /** Products M v used. */
  iterations: number;
}

/**
 * The largest eigenvalue of the symmetric matrix behind `mv` (a function of PVectors of `lc`).
 *
 * @example
 * const { value } = await lanczosTopEigenvalue((v) => F.mv(v), F.layerCollection);
 */
export async function lanczosTopEigenvalue(
  mv: (v: PVector) => PVector | Promise<PVector>,
  lc: LayerCollection,
  options: LanczosOptions = {},
): Promise<LanczosResult> {
  const d = lc.numel();
  const maxIterations = Math.min(options.maxIterations ?? 30, d);
  const rtol = options.rtol ?? 1e-4;
  // Host float64 basis: reorthogonalising in float32 loses the orthogonality Lanczos needs.
  const start = tf.tidy(() => tf.randomNormal([d], 0, 1, 'float32', options.seed ?? 0));
  let q: Float64Array = new Float64Array(start.dataSync());
  start.dispose();
  scaleInPlace(q, 1 / norm(q));
  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = [];
  let previous = NaN;
  let value = 0;
  for (let k = 0; k < maxIterations; k++) {
    basis.push(q);
    const w = await applyOnHost(mv, lc, q);
    const a = dot(w, q);
    alpha.push(a);
    // w ← w − Σ_j (wᵀq_j) q_j twice ("twice is enough", Parlett).
    for (let pass = 0; pass < 2; pass++) for (const b of basis) axpy(w, -dot(w, b), b);
    value = largestTridiagonalEigenvalue(alpha, beta);
    const bk = norm(w);
    if (Math.abs(value - previous) <= rtol * Math.abs(value) || bk <= 1e-12 * Math.max(Math.abs(value), 1e-30)) {
      return { value, iterations: k + 1 };
    }
    previous = value;
    beta.push(bk);
    q = w;
    scaleInPlace(q, 1 / bk);
  }
  return { value, iterations: maxIterations };
}

async function applyOnHost(mv: (v: PVector) => PVector | Promise<PVector>, lc: LayerCollection, x: Float64Array): Promise<Float64Array> {
  const t = tf.tensor1d(new Float32Array(x));
  const v = PVector.fromFlat(lc, t);
  t.dispose();
  try {
    const out = await mv(v);
    try {
      return new Float64Array(out.data.dataSync());
    } finally {
      out.dispose();
    }
  } finally {
    v.dispose();
  }
}

/** λ_max of the symmetric tridiagonal matrix with diagonal `a` and off-diagonal `b` (float64). */
function largestTridiagonalEigenvalue(a: number[], b: number[]): number {
  const k = a.length;
  const t = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    t[i * k + i] = a[i]!;
    if (i + 1 < k) t[i * k + i + 1] = t[(i + 1) * k + i] = b[i]!;
  }
  const { values } = eighSym(t, k);
  return values[k - 1]!;
}

/** Eigenvalues of a dense symmetric matrix (row-major, size d), descending, float64. */
export function eigenvaluesDescending(values: ArrayLike<number>, d: number): Float64Array {
  const { values: ascending } = eighSym(new Float64Array(values as ArrayLike<number>), d);
  return ascending.reverse();
}

function dot(x: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  return s;
}
function norm(x: Float64Array): number {
  return Math.sqrt(dot(x, x));
}
function axpy(y: Float64Array, a: number, x: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += a * x[i]!;
}
function scaleInPlace(x: Float64Array, a: number): void {
  for (let i = 0; i < x.length; i++) x[i]! *= a;
}
