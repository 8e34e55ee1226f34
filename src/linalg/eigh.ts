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

/**
 * `eighSym` by the WebAssembly module's QR-iteration route (Householder tridiagonalisation,
 * explicit Q, implicitly shifted QR), the route `eighSym` used before divide and conquer and
 * the one it falls back to; for cross-checks and benchmarks. Undefined while the active
 * implementation has no such route (TypeScript, or an older module).
 *
 * @example
 * await initLinalg();
 * const reference = eighSymQR(a, n)?.values;
 */
export function eighSymQR(a: Float64Array, n: number): SymmetricEigen | undefined {
  checkSquare('eighSymQR', 'a', a, n);
  const kernel = activeKernels().eighSymQR;
  if (!kernel) return undefined;
  if (n === 0) return { values: new Float64Array(0), vectors: new Float64Array(0) };
  return kernel(a, n);
}

/**
 * Which route the WebAssembly `eighSym` took on its last call: 'divide-and-conquer', or
 * 'qr-fallback' when divide and conquer failed and the QR iterations answered instead.
 * Undefined for implementations with one route. For tests and diagnostics.
 *
 * @example
 * eighSym(a, n);
 * lastEighRoute(); // 'divide-and-conquer'
 */
export function lastEighRoute(): 'divide-and-conquer' | 'qr-fallback' | undefined {
  return activeKernels().lastEighRoute?.();
}
