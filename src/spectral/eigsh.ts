/**
 * eigsh: the k extreme eigenpairs of a symmetric operator, named after scipy.sparse.linalg.eigsh.
 * Exact through the representation's structure where it has one (structured-eigen.ts), else
 * thick-restart Lanczos with full float64 reorthogonalisation (lanczos.ts).
 */
import { DisposedError, InvalidArgumentError } from '../errors.js';
import { describe } from '../object/arguments.js';
import { thickRestartLanczos, type Which } from './lanczos.js';
import { type LinearOperator, type VectorOf, hostOperator, operatorSize } from './operator.js';
import { type SpectralCommonOptions, checkChoice, checkInteger, checkSpectralOptions } from './options.js';
import { type EigshRoute, structuredEigenpairs } from './structured-eigen.js';
import { norm, axpy } from './host-vectors.js';

export type { EigshRoute } from './structured-eigen.js';

export interface EigshOptions extends SpectralCommonOptions {
  /** Number of eigenpairs (an integer in [1, d]; default 1). */
  k?: number;
  /** 'largest' (default) or 'smallest' algebraic eigenvalues. */
  which?: 'largest' | 'smallest';
  /** Convergence: every residual ‖M v − λ v‖ ≤ tol·‖M‖ (default 1e-6; > 0). */
  tol?: number;
  /** Most products M v Lanczos may take (default max(300, 10·basisSize)). */
  maxIterations?: number;
  /**
   * Lanczos basis size before a thick restart. Default min(d, max(2k + 1, k + 16, B)) with
   * B = min(200, ⌊4·10⁶ / d⌋): the basis and its products take at most 64 MB of host memory
   * beyond 2k + 1 vectors, and small operators get a (nearly) unrestarted Krylov space.
   */
  basisSize?: number;
  /**
   * Products spent after convergence checking for eigenvalues a single Krylov chain misses
   * (repeated eigenvalues; default min(10, d); 0 turns the check off).
   */
  verifySteps?: number;
  /** 'auto' (default): the structured route where there is one; 'lanczos': always Lanczos. */
  route?: 'auto' | 'lanczos';
}

/** The top eigenpairs `eigsh` found. */
export interface EigshResult<V> {
  /** Eigenvalues from the extreme inward (largest first for 'largest'). */
  values: Float64Array;
  /** Unit eigenvectors, vectors[i] pairs with values[i] (float32; the caller disposes them). */
  vectors: V[];
  /** Products M v taken (Lanczos), or the k products that measured the residuals (structured routes). */
  iterations: number;
  /** ‖M v_i − λ_i v_i‖ for each pair. */
  residuals: Float64Array;
  /** Whether every residual met tol·‖M‖ (always true on a structured route). */
  converged: boolean;
  /** How the pairs were obtained. */
  route: EigshRoute;
}

/**
 * The k extreme eigenpairs (λᵢ, vᵢ) of a symmetric operator M: M vᵢ = λᵢ vᵢ, ‖vᵢ‖ = 1.
 *
 * PMatDiag, PMatKFAC, PMatEKFAC, PMatDense, PMatBlockDiag and FMatDense are answered exactly
 * from their structure (`route` says which); anything else with `mv` (PMatImplicit,
 * PMatHessianImplicit, PMatLowRank, an `asOperator`) by thick-restart Lanczos, k pairs in one
 * run.
 *
 * @example
 * const F = await FIM({ model, loader, representation: PMatImplicit });
 * const { values, vectors, residuals } = await eigsh(F, { k: 10 });
 * vectors.forEach((v) => v.dispose());
 */
export async function eigsh<Op extends LinearOperator>(op: Op, options: EigshOptions = {}): Promise<EigshResult<VectorOf<Op>>> {
  const where = 'eigsh';
  const d = operatorSize(op, where);
  const o = checkSpectralOptions(options, ['k', 'which', 'tol', 'maxIterations', 'basisSize', 'verifySteps', 'route'], where);
  const k = checkInteger(o.k ?? 1, 'k', where, 1, d, ` (d = ${d}: the operator's dimension)`);
  const which = checkChoice<Which>(o.which ?? 'largest', ['largest', 'smallest'], 'which', where);
  const tol = o.tol ?? 1e-6;
  if (!(typeof tol === 'number' && Number.isFinite(tol) && tol > 0)) throw new InvalidArgumentError(`${where}: 'tol' must be a finite number > 0, received ${describe(o.tol)}`);
  const basisSize = checkInteger(o.basisSize ?? Math.min(d, Math.max(2 * k + 1, k + 16, Math.min(200, Math.floor(4e6 / d)))), 'basisSize', where, Math.min(k + 1, d), d);
  const maxIterations = checkInteger(o.maxIterations ?? Math.max(300, 10 * basisSize), 'maxIterations', where, 1);
  const verifySteps = checkInteger(o.verifySteps ?? Math.min(10, d), 'verifySteps', where, 0);
  const route = checkChoice(o.route ?? 'auto', ['auto', 'lanczos'], 'route', where);

  if (route === 'auto') {
    let exact: ReturnType<typeof structuredEigenpairs>;
    try {
      exact = structuredEigenpairs(op, k, which, d);
    } catch (e) {
      if (e instanceof DisposedError) throw new DisposedError(`${where}: the operator has been disposed (${e.message}); compute it again or pass a live one`);
      throw e;
    }
    if (exact) {
      const host = hostOperator(op, where, { signal: o.signal, onProgress: o.onProgress, maxProducts: k });
      const residuals = new Float64Array(k);
      for (let i = 0; i < k; i++) {
        const r = await host.apply(exact.vectors[i]!);
        axpy(r, -exact.values[i]!, exact.vectors[i]!);
        residuals[i] = norm(r);
      }
      return { values: exact.values, vectors: exact.vectors.map((v) => host.toVector(v)), iterations: host.products, residuals, converged: true, route: exact.route };
    }
  }
  const host = hostOperator(op, where, { signal: o.signal, onProgress: o.onProgress, maxProducts: maxIterations });
  const r = await thickRestartLanczos(host, { k, which, tol, maxProducts: maxIterations, basisSize, verifySteps, seed: o.seed });
  return { values: r.values, vectors: r.vectors.map((v) => host.toVector(v)), iterations: r.products, residuals: r.residuals, converged: r.converged, route: 'lanczos' };
}
