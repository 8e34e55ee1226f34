/** The eigendecomposition of one Kronecker factor: through its rows when it is wide, else directly. */
import { eighSym } from '../../../linalg/index.js';
import { eighFromRowsThin } from '../../../linalg/gram-eigen.js';
import { GRAM_ROUTE_MAX_RATIO } from '../../../statistics/factor-rows.js';
import { FactorBasis } from './factor-basis.js';

/** A factor's eigenvalues (ascending, the zeros of a wide factor first) and eigenbasis. */
export interface FactorEigen {
  readonly values: Float64Array;
  /** U: explicit, or for a wide factor its range with the null space implicit. */
  readonly basis: FactorBasis;
  /** U (k×k row-major) itself; for an implicit basis this materialises the null-space basis. */
  readonly vectors: Float64Array;
}

// An output factor held as rows has the same m ≤ k/4 bound for its Gram route although its rows
// are kept up to m ≤ k: its basis is used explicitly (U_G in every product), so the thin route
// pays the completion too. Measured (CPU, load ≈ 2.8, k = 2,048): m = 1,280 thin 1.71 s +
// completion 2.25 s against 0.73 s to form G on the device + 2.45 s eighSym; m = 512 thin
// 0.32 s + completion 0.77 s against 0.42 + 2.48 s.

/**
 * A = V diag(values) Vᵀ for the k×k factor `a`; with `rows` R (m×k, A = RᵀR, m ≤ k/4) through
 * the m×m Gram matrix RRᵀ (exact: the same non-zero spectrum, the other k − r eigenvalues 0),
 * which costs O(k m²) instead of O(k³); the null space is then left implicit (FactorBasis)
 * until a consumer asks for `vectors`. `a` may be a function returning A, called only when the
 * direct route is taken (A held as its rows is then never formed here).
 *
 * @example
 * const { values, basis } = factorEigen(f.a, f.k, f.aRows);
 */
export function factorEigen(a: Float64Array | (() => Float64Array), k: number, rows?: Float64Array): FactorEigen {
  if (rows && rows.length > 0 && rows.length % k === 0 && GRAM_ROUTE_MAX_RATIO * (rows.length / k) <= k) {
    const thin = eighFromRowsThin(rows, rows.length / k, k, 1);
    const values = new Float64Array(k);
    values.set(thin.values, k - thin.rank);
    return withVectors(values, FactorBasis.thin(thin));
  }
  const { values, vectors } = eighSym(typeof a === 'function' ? a() : a, k);
  return withVectors(values, FactorBasis.explicit(vectors, k));
}

function withVectors(values: Float64Array, basis: FactorBasis): FactorEigen {
  return {
    values,
    basis,
    get vectors() {
      return basis.full();
    },
  };
}
