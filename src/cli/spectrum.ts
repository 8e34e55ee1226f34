/**
 * Spectra for the tables and reports of `npm start` and `nngeometry fim`: the top eigenvalue of
 * a matrix known through products (the public `eigsh`, one eigenpair, a small product budget),
 * and the whole spectrum of a small dense matrix. Browser-safe.
 */
import { eigsh, type LinearOperator } from '../index.js';
import { eighSym } from '../linalg/index.js';

export interface TopEigenvalueOptions {
  /** Maximum number of products M v (default 30). */
  maxIterations?: number;
  /** Stop when the Ritz residual is below tol·‖M‖ (default 1e-3: λ_max to about tol² relatively). */
  tol?: number;
  /** Seed of the start vector (default 0). */
  seed?: number;
}

export interface TopEigenvalueResult {
  /** The largest Ritz value: a lower bound on λ_max that converges to it. */
  value: number;
  /** Products M v used. */
  iterations: number;
}

/**
 * λ_max of a symmetric operator by `eigsh` (Lanczos; one eigenpair, no multiplicity check: only
 * the value is wanted).
 *
 * @example
 * const { value } = await topEigenvalue(F, { maxIterations: 12 });
 */
export async function topEigenvalue(op: LinearOperator, options: TopEigenvalueOptions = {}): Promise<TopEigenvalueResult> {
  const r = await eigsh(op, { k: 1, tol: options.tol ?? 1e-3, maxIterations: options.maxIterations ?? 30, seed: options.seed ?? 0, verifySteps: 0, route: 'lanczos' });
  r.vectors.forEach((v) => v.dispose());
  return { value: r.values[0]!, iterations: r.iterations };
}

/** Eigenvalues of a dense symmetric matrix (row-major, size d), descending, float64. */
export function eigenvaluesDescending(values: ArrayLike<number>, d: number): Float64Array {
  const { values: ascending } = eighSym(new Float64Array(values as ArrayLike<number>), d);
  return ascending.reverse();
}
