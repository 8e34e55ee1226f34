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
 * computed as contiguous row axpys, four rows X_j at a time so that row i is loaded and stored
 * once per four terms (the rows of X do not fit in cache for large n).
 */
export function forwardKernel(l: Float64Array, n: number, x: Float64Array, nrhs: number): Float64Array {
  for (let i = 0; i < n; i++) {
    const ri = i * n, xi = i * nrhs;
    let j = 0;
    for (; j + 3 < i; j += 4) {
      const f0 = l[ri + j]!, f1 = l[ri + j + 1]!, f2 = l[ri + j + 2]!, f3 = l[ri + j + 3]!;
      const x0 = j * nrhs, x1 = x0 + nrhs, x2 = x1 + nrhs, x3 = x2 + nrhs;
      for (let c = 0; c < nrhs; c++) {
        x[xi + c] = x[xi + c]! - (f0 * x[x0 + c]! + f1 * x[x1 + c]! + f2 * x[x2 + c]! + f3 * x[x3 + c]!);
      }
    }
    for (; j < i; j++) {
      const f = l[ri + j]!, xj = j * nrhs;
      for (let c = 0; c < nrhs; c++) x[xi + c] = x[xi + c]! - f * x[xj + c]!;
    }
    const inv = 1 / l[ri + i]!;
    for (let c = 0; c < nrhs; c++) x[xi + c] = x[xi + c]! * inv;
  }
  return x;
}

/**
 * Back substitution for Lᵀ in place on x, right-looking: once rows i of X are final, they are
 * subtracted from the rows j < i with weights L_ij, which are rows i of L (contiguous), instead
 * of columns of L (stride n). Rows are finished four at a time, and their four updates are
 * applied to each row j in one pass.
 */
export function backwardTransposedKernel(l: Float64Array, n: number, x: Float64Array, nrhs: number): Float64Array {
  let top = n; // rows top.. are final and already subtracted from the rows above
  while (top > 0) {
    const lo = Math.max(0, top - 4);
    // Finish rows top−1 down to lo, subtracting each from the rows of the group above it.
    for (let i = top - 1; i >= lo; i--) {
      const ri = i * n, xi = i * nrhs;
      const inv = 1 / l[ri + i]!;
      for (let c = 0; c < nrhs; c++) x[xi + c] = x[xi + c]! * inv;
      for (let j = lo; j < i; j++) {
        const f = l[ri + j]!, xj = j * nrhs;
        for (let c = 0; c < nrhs; c++) x[xj + c] = x[xj + c]! - f * x[xi + c]!;
      }
    }
    // Subtract the finished group from every row above it (only the last group, at lo = 0,
    // can have fewer than four rows, and it has none above).
    if (lo > 0) {
      const r0 = lo * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      const x0 = lo * nrhs, x1 = x0 + nrhs, x2 = x1 + nrhs, x3 = x2 + nrhs;
      for (let j = 0; j < lo; j++) {
        const f0 = l[r0 + j]!, f1 = l[r1 + j]!, f2 = l[r2 + j]!, f3 = l[r3 + j]!;
        const xj = j * nrhs;
        for (let c = 0; c < nrhs; c++) {
          x[xj + c] = x[xj + c]! - (f0 * x[x0 + c]! + f1 * x[x1 + c]! + f2 * x[x2 + c]! + f3 * x[x3 + c]!);
        }
      }
    }
    top = lo;
  }
  return x;
}
