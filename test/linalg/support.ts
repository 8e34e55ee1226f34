/**
 * Fixtures for the linear-algebra tests: a seeded generator, test matrices, naive reference
 * products and the error measures the tests assert on. Everything here is deliberately
 * simple (naive triple loops) so that it can serve as an independent reference.
 */
import { initLinalg, useLinalgImplementation, type LinalgImplementation } from '../../src/linalg/index.js';

/** Both implementations; the Eigen module is loaded once per test process. */
export const IMPLEMENTATIONS: LinalgImplementation[] = ['typescript', 'eigen-wasm'];

/** Switches the public functions to `impl`, loading the Eigen module first if needed. */
export async function useImplementation(impl: LinalgImplementation): Promise<void> {
  if (impl === 'eigen-wasm') {
    const info = await initLinalg();
    if (info.implementation !== 'eigen-wasm') throw new Error(`Eigen module unavailable: ${info.fallbackReason}`);
  }
  useLinalgImplementation(impl);
}

/** mulberry32: a seeded generator of uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` numbers uniform in (−0.5, 0.5). */
export function uniform(length: number, seed: number): Float64Array {
  const next = mulberry32(seed);
  return Float64Array.from({ length }, () => next() - 0.5);
}

/** C = A B for A (m×k), B (k×n), row-major, by the textbook triple loop. */
export function matmul(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
      c[i * n + j] = s;
    }
  }
  return c;
}

/** Transpose of the row-major m×n matrix `a`. */
export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j]!;
  return t;
}

/** A = GᵀG/n + 0.01·I with G uniform: symmetric positive definite, eigenvalues ≥ 0.01. */
export function randomSpd(n: number, seed: number): Float64Array {
  const g = uniform(n * n, seed);
  const a = matmul(transpose(g, n, n), n, n, g, n);
  for (let i = 0; i < n * n; i++) a[i] = a[i]! / Math.max(n, 1);
  for (let i = 0; i < n; i++) a[i * n + i] = a[i * n + i]! + 0.01;
  return a;
}

/** A random n×n orthogonal matrix (modified Gram–Schmidt on the rows of a uniform matrix). */
export function randomOrthogonal(n: number, seed: number): Float64Array {
  const q = uniform(n * n, seed);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      let d = 0;
      for (let c = 0; c < n; c++) d += q[i * n + c]! * q[j * n + c]!;
      for (let c = 0; c < n; c++) q[i * n + c] = q[i * n + c]! - d * q[j * n + c]!;
    }
    let norm = 0;
    for (let c = 0; c < n; c++) norm += q[i * n + c]! ** 2;
    norm = Math.sqrt(norm);
    for (let c = 0; c < n; c++) q[i * n + c] = q[i * n + c]! / norm;
  }
  return q;
}

/** Q diag(d) Qᵀ for a random orthogonal Q: a symmetric matrix with exactly the spectrum d. */
export function withSpectrum(d: number[], seed: number): Float64Array {
  const n = d.length;
  const q = randomOrthogonal(n, seed);
  const qd = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) qd[i * n + j] = q[i * n + j]! * d[j]!;
  return matmul(qd, n, n, transpose(q, n, n), n);
}

/** ‖x‖_F */
export function frobenius(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

/** ‖x − y‖_F / ‖y‖_F (0 when both are empty). */
export function relativeDifference(x: Float64Array, y: Float64Array): number {
  let num = 0;
  for (let i = 0; i < x.length; i++) num += (x[i]! - y[i]!) ** 2;
  const den = frobenius(y);
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num) / den;
}

/** ‖AV − V diag(w)‖_F / ‖A‖_F */
export function eigResidual(a: Float64Array, n: number, w: Float64Array, v: Float64Array): number {
  const av = matmul(a, n, n, v, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) av[i * n + j] = av[i * n + j]! - v[i * n + j]! * w[j]!;
  const norm = frobenius(a);
  return norm === 0 ? frobenius(av) : frobenius(av) / norm;
}

/** ‖VᵀV − I‖_F */
export function orthogonalityError(v: Float64Array, n: number): number {
  const vtv = matmul(transpose(v, n, n), n, n, v, n);
  for (let i = 0; i < n; i++) vtv[i * n + i] = vtv[i * n + i]! - 1;
  return frobenius(vtv);
}

/** True when w is sorted in ascending order. */
export function isAscending(w: Float64Array): boolean {
  for (let i = 1; i < w.length; i++) if (!(w[i - 1]! <= w[i]!)) return false;
  return true;
}
