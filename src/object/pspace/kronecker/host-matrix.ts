/** Small float64 row-major matrix helpers for the Kronecker representations. */
import { gemm } from '../../../linalg/index.js';

export function transposeHost(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}

/** Uᵀ V W for U (k×k), V (k×c), W (c×c). */
export function sandwichT(u: Float64Array, k: number, v: Float64Array, c: number, w: Float64Array): Float64Array {
  return gemm(gemm(transposeHost(u, k, k), k, k, v, c), k, c, w, c);
}

/** U V Wᵀ for U (k×k), V (k×c), W (c×c). */
export function sandwich(u: Float64Array, k: number, v: Float64Array, c: number, w: Float64Array): Float64Array {
  return gemm(gemm(u, k, k, v, c), k, c, transposeHost(w, c, c), c);
}

export function traceHost(a: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i * n + i]!;
  return s;
}

export function frobeniusSquaredHost(a: Float64Array): number {
  let s = 0;
  for (const x of a) s += x * x;
  return s;
}

/** a + s·I (new array). */
export function addIdentity(a: Float64Array, n: number, s: number): Float64Array {
  const out = new Float64Array(a);
  for (let i = 0; i < n; i++) out[i * n + i]! += s;
  return out;
}
