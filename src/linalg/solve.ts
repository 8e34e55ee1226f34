/** Triangular and Cholesky solves, the public fronts. */
import { activeKernels } from './implementation.js';
import { checkSolveArguments } from './typescript/triangular.js';

/**
 * Solves A X = B for X given the Cholesky factor L of A = L Lᵀ (n×n row-major lower, as
 * returned by `cholesky`); B is n×nrhs row-major and is not modified. Returns X (n×nrhs).
 *
 * @example
 * const l = cholesky(a, n);
 * const x = choleskySolve(l, n, b, 1); // a x = b
 */
export function choleskySolve(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array {
  checkSolveArguments('choleskySolve', l, n, b, nrhs);
  if (n === 0 || nrhs === 0) return new Float64Array(n * nrhs);
  return activeKernels().choleskySolve(l, n, b, nrhs);
}

/**
 * Solves L X = B for X, where L is n×n row-major lower triangular (entries above the diagonal
 * are ignored) and B is n×nrhs row-major (not modified). Returns X (n×nrhs).
 *
 * @example
 * solveTriangularLower(new Float64Array([2, 0, 1, 1]), 2, new Float64Array([2, 3]), 1); // [1, 2]
 */
export function solveTriangularLower(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array {
  checkSolveArguments('solveTriangularLower', l, n, b, nrhs);
  if (n === 0 || nrhs === 0) return new Float64Array(n * nrhs);
  return activeKernels().solveTriangularLower(l, n, b, nrhs);
}

/**
 * Solves Lᵀ X = B for X, where L is n×n row-major lower triangular (entries above the diagonal
 * are ignored) and B is n×nrhs row-major (not modified). Returns X (n×nrhs).
 *
 * @example
 * solveTriangularUpperT(new Float64Array([2, 0, 1, 1]), 2, new Float64Array([3, 2]), 1); // [0.5, 2]
 */
export function solveTriangularUpperT(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array {
  checkSolveArguments('solveTriangularUpperT', l, n, b, nrhs);
  if (n === 0 || nrhs === 0) return new Float64Array(n * nrhs);
  return activeKernels().solveTriangularUpperT(l, n, b, nrhs);
}
