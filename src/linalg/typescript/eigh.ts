/** Symmetric eigen-decomposition in plain TypeScript: the oracle and the fallback of `eighSym`. */
import { NNGeometryError } from '../../errors.js';
import type { SymmetricEigen } from '../types.js';
import { checkSquare } from '../validate.js';
import { tridiagonalEigen } from './tridiagonal-eigen.js';
import { tridiagonalize } from './tridiagonal.js';

/**
 * Computes A = V diag(values) Vᵀ for the symmetric n×n row-major `a` (not modified; read as
 * symmetric) in plain TypeScript: Householder tridiagonalisation, then implicit QL.
 * Eigenvalues are ascending; column j of `vectors` (row-major) is the eigenvector of values[j].
 *
 * @example
 * const { values, vectors } = eighSymTS(new Float64Array([2, 1, 1, 2]), 2); // values = [1, 3]
 */
export function eighSymTS(a: Float64Array, n: number): SymmetricEigen {
  checkSquare('eighSymTS', 'a', a, n);
  return eighSymKernel(a, n);
}

/** {@link eighSymTS} without argument checks. */
export function eighSymKernel(a: Float64Array, n: number): SymmetricEigen {
  // Scale to max |a_ij| = 1 (as LAPACK dsyev does) so that no square over- or underflows.
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale = Math.max(scale, Math.abs(a[i]!));
  if (scale === 0) {
    const vectors = new Float64Array(n * n);
    for (let i = 0; i < n; i++) vectors[i * n + i] = 1;
    return { values: new Float64Array(n), vectors };
  }
  const scaled = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) scaled[i] = a[i]! / scale;
  const { d, e, q } = tridiagonalize(scaled, n);
  if (!tridiagonalEigen(d, e, q, n)) {
    throw new NNGeometryError(`eighSymTS: the QL iterations did not converge for n = ${n}`);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[i]! - d[j]! || i - j);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let j = 0; j < n; j++) values[j] = d[order[j]!]! * scale;
  for (let i = 0; i < n; i++) {
    const row = i * n;
    for (let j = 0; j < n; j++) vectors[row + j] = q[row + order[j]!]!;
  }
  return { values, vectors };
}
