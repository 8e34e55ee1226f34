/** Triangular and Cholesky solves in plain TypeScript: the oracle and fallback of the fronts. */
import { checkDimension, checkMatrix, checkSquare } from '../validate.js';

/**
 * Solves L X = B by forward substitution; L is n×n row-major lower triangular (the upper
 * triangle is ignored), B is n×nrhs row-major. Returns X (a new array).
 *
 * @example
 * solveTriangularLowerTS(new Float64Array([2, 0, 1, 1]), 2, new Float64Array([2, 3]), 1); // [1, 2]
 */
export function solveTriangularLowerTS(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array {
  checkSolveArguments('solveTriangularLowerTS', l, n, b, nrhs);
  return forwardKernel(l, n, b.slice(), nrhs);
}

/**
 * Solves Lᵀ X = B by back substitution; L is n×n row-major lower triangular, B is n×nrhs
 * row-major. Returns X (a new array).
 */
export function solveTriangularUpperTTS(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array {
  checkSolveArguments('solveTriangularUpperTTS', l, n, b, nrhs);
  return backwardTransposedKernel(l, n, b.slice(), nrhs);
}

/**
 * Solves L Lᵀ X = B (that is A X = B with A = L Lᵀ from a Cholesky factorisation); B is
 * n×nrhs row-major. Returns X (a new array).
 */
export function choleskySolveTS(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array {
  checkSolveArguments('choleskySolveTS', l, n, b, nrhs);
  return backwardTransposedKernel(l, n, forwardKernel(l, n, b.slice(), nrhs), nrhs);
}

/** Checks the (l, n, b, nrhs) arguments shared by every solve. */
export function checkSolveArguments(fn: string, l: unknown, n: number, b: unknown, nrhs: number): void {
  checkSquare(fn, 'l', l, n);
  checkDimension(fn, 'nrhs', nrhs);
  checkMatrix(fn, 'b', b, n, nrhs);
}

/**
 * Forward substitution in place on x (= B on entry): row i of X is (B_i − Σ_{j<i} L_ij X_j) / L_ii,
 * computed as contiguous row axpys.
 */
export function forwardKernel(l: Float64Array, n: number, x: Float64Array, nrhs: number): Float64Array {
  for (let i = 0; i < n; i++) {
    const ri = i * n, xi = i * nrhs;
    for (let j = 0; j < i; j++) {
      const f = l[ri + j]!;
      if (f === 0) continue;
      const xj = j * nrhs;
      for (let c = 0; c < nrhs; c++) x[xi + c] = x[xi + c]! - f * x[xj + c]!;
    }
    const inv = 1 / l[ri + i]!;
    for (let c = 0; c < nrhs; c++) x[xi + c] = x[xi + c]! * inv;
  }
  return x;
}

/**
 * Back substitution for Lᵀ in place on x, right-looking: once row i of X is final, it is
 * subtracted from rows j < i with weights L_ij, which are row i of L (contiguous), instead of
 * column i of L (stride n).
 */
export function backwardTransposedKernel(l: Float64Array, n: number, x: Float64Array, nrhs: number): Float64Array {
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n, xi = i * nrhs;
    const inv = 1 / l[ri + i]!;
    for (let c = 0; c < nrhs; c++) x[xi + c] = x[xi + c]! * inv;
    for (let j = 0; j < i; j++) {
      const f = l[ri + j]!;
      if (f === 0) continue;
      const xj = j * nrhs;
      for (let c = 0; c < nrhs; c++) x[xj + c] = x[xj + c]! - f * x[xi + c]!;
    }
  }
  return x;
}
