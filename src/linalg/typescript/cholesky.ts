/** Cholesky factorisation in plain TypeScript: the oracle and the fallback of `cholesky`. */
import { checkSquare, notPositiveDefinite } from '../validate.js';

/**
 * Computes the lower-triangular L with A = L Lᵀ for the symmetric positive-definite n×n
 * row-major `a` (lower triangle read, not modified). L is row-major with zeros above the
 * diagonal. Throws NotPositiveDefiniteError naming the first pivot that is not positive.
 *
 * @example
 * const l = choleskyTS(new Float64Array([4, 2, 2, 5]), 2); // [2, 0, 1, 2]
 */
export function choleskyTS(a: Float64Array, n: number): Float64Array {
  checkSquare('choleskyTS', 'a', a, n);
  const result = choleskyKernel(a, n);
  if (result instanceof Float64Array) return result;
  throw notPositiveDefinite('choleskyTS', result.pivot, result.value, a, n);
}

/**
 * {@link choleskyTS} without argument checks; returns the failing pivot instead of throwing.
 *
 * Row-oriented (Cholesky–Banachiewicz, GVL algorithm 4.2.1 by rows): row i of L needs only
 * rows 0..i of L, so every inner product runs over two contiguous row prefixes. The dot is
 * unrolled four ways, with four accumulators so that the additions do not serialise.
 */
export function choleskyKernel(a: Float64Array, n: number): Float64Array | { pivot: number; value: number } {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let k = 0;
      for (; k + 3 < j; k += 4) {
        s0 += l[ri + k]! * l[rj + k]!;
        s1 += l[ri + k + 1]! * l[rj + k + 1]!;
        s2 += l[ri + k + 2]! * l[rj + k + 2]!;
        s3 += l[ri + k + 3]! * l[rj + k + 3]!;
      }
      for (; k < j; k++) s0 += l[ri + k]! * l[rj + k]!;
      const x = a[ri + j]! - (s0 + s1 + (s2 + s3));
      if (j < i) {
        l[ri + j] = x / l[rj + j]!;
      } else {
        // !(x > 0) also catches NaN, which only an overflow can produce from finite input.
        if (!(x > 0)) return { pivot: i, value: x };
        l[ri + i] = Math.sqrt(x);
      }
    }
  }
  return l;
}
