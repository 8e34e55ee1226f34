/** Cholesky factorisation, the public front. */
import { activeKernels } from './implementation.js';
import { checkSquare, notPositiveDefinite } from './validate.js';

/**
 * Computes the lower-triangular L (n×n row-major, zeros above the diagonal) with A = L Lᵀ for
 * the symmetric positive-definite n×n row-major float64 matrix `a` (its lower triangle is
 * read; not modified).
 *
 * Throws NotPositiveDefiniteError naming the first pivot that is not positive and its value,
 * with the advice to add a larger damping `regul` to the diagonal; InvalidArgumentError for a
 * wrong length or n; NonFiniteError for NaN or ±Infinity.
 *
 * @example
 * const l = cholesky(new Float64Array([4, 2, 2, 5]), 2); // [2, 0, 1, 2]
 */
export function cholesky(a: Float64Array, n: number): Float64Array {
  checkSquare('cholesky', 'a', a, n);
  if (n === 0) return new Float64Array(0);
  const result = activeKernels().cholesky(a, n);
  if (result instanceof Float64Array) return result;
  throw notPositiveDefinite('cholesky', result.pivot, result.value, a, n);
}
