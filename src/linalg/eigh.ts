/** Symmetric eigen-decomposition, the public front. */
import { activeKernels } from './implementation.js';
import type { SymmetricEigen } from './types.js';
import { checkSquare } from './validate.js';

/**
 * Computes A = V diag(values) Vᵀ for the symmetric n×n row-major float64 matrix `a`: the
 * eigenvalues in ascending order and an orthonormal matrix V (n×n row-major) whose column j
 * is the eigenvector of values[j]. `a` is assumed symmetric (its upper triangle is what is
 * read) and is not modified. Uses the Eigen WebAssembly module once `initLinalg` has loaded
 * it, the TypeScript implementation before.
 *
 * Throws InvalidArgumentError for a wrong length or n, NonFiniteError for NaN or ±Infinity.
 *
 * @example
 * await initLinalg();
 * const { values, vectors } = eighSym(new Float64Array([2, 1, 1, 2]), 2);
 * // values = [1, 3]; column 0 of vectors is ±[1, −1]/√2
 */
export function eighSym(a: Float64Array, n: number): SymmetricEigen {
  checkSquare('eighSym', 'a', a, n);
  if (n === 0) return { values: new Float64Array(0), vectors: new Float64Array(0) };
  return activeKernels().eighSym(a, n);
}
