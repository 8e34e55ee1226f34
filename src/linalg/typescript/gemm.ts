/** Dense float64 matrix product in plain TypeScript: the oracle and fallback of `gemm`. */
import { checkDimension, checkMatrix } from '../validate.js';

/**
 * Computes C = A B for A (m×k) and B (k×n), all row-major float64. Returns C (m×n).
 *
 * @example
 * gemmTS(new Float64Array([1, 2]), 1, 2, new Float64Array([3, 4]), 1); // [11]
 */
export function gemmTS(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array {
  checkGemmArguments('gemmTS', a, m, k, b, n);
  return gemmKernel(a, m, k, b, n);
}

/** Checks the (a, m, k, b, n) arguments of a matrix product. */
export function checkGemmArguments(fn: string, a: unknown, m: number, k: number, b: unknown, n: number): void {
  checkDimension(fn, 'm', m);
  checkDimension(fn, 'k', k);
  checkDimension(fn, 'n', n);
  checkMatrix(fn, 'a', a, m, k);
  checkMatrix(fn, 'b', b, k, n);
}

/**
 * {@link gemmTS} without checks. i-k-j order: the inner loop is an axpy of row p of B into
 * row i of C, both contiguous; four rows of B are combined per pass to cut the loads and
 * stores of C by four.
 */
export function gemmKernel(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ra = i * k, rc = i * n;
    let p = 0;
    for (; p + 3 < k; p += 4) {
      const a0 = a[ra + p]!, a1 = a[ra + p + 1]!, a2 = a[ra + p + 2]!, a3 = a[ra + p + 3]!;
      const b0 = p * n, b1 = b0 + n, b2 = b1 + n, b3 = b2 + n;
      for (let j = 0; j < n; j++) {
        c[rc + j] = c[rc + j]! + a0 * b[b0 + j]! + a1 * b[b1 + j]! + a2 * b[b2 + j]! + a3 * b[b3 + j]!;
      }
    }
    for (; p < k; p++) {
      const ap = a[ra + p]!, bp = p * n;
      for (let j = 0; j < n; j++) c[rc + j] = c[rc + j]! + ap * b[bp + j]!;
    }
  }
  return c;
}
