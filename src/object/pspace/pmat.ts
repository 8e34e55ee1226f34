/**
 * The interface shared by every representation of a d×d parameter-space matrix M (a FIM, GGN,
 * Hessian, ...). Stored representations implement `PMat` synchronously; matrix-free ones
 * (PMatImplicit) implement the same method names returning promises, so `await M.trace()` works
 * with every representation.
 */
import type { tf } from '../../tf.js';
import { DisposedError, InvalidArgumentError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import type { PassSpec } from '../../backend/pass.js';
import { PVector } from '../pvector.js';
import { checkOptions, describe } from '../arguments.js';

/** Matrix norms: Frobenius, spectral (largest singular value) and smallest singular value. */
export type NormOrder = 'fro' | 2 | -2;

/** Options of `solve` and `inv`. */
export interface SolveOptions {
  /** Damping λ ≥ 0: solve and inv compute (M + λI)⁻¹ exactly. Default 0. */
  regul?: number;
}

/** Operations every representation supports. */
export interface PMatBase {
  /** The parameters the matrix is over (its rows and columns, in this order). */
  readonly layerCollection: LayerCollection;
  /** Releases the tensors the matrix holds; using it afterwards throws DisposedError. */
  dispose(): void;
}

/**
 * Any representation `FIM` and `FIMMonteCarlo` return, stored or matrix-free: a stored one
 * ({@link PMat}) answers synchronously, a matrix-free one (PMatImplicit, which recomputes from
 * the data) with promises. `await` each answer and the same code works for every
 * representation.
 *
 * @example
 * ```ts
 * const reps: Array<Representation<AnyPMat>> = [PMatDense, PMatKFAC, PMatImplicit];
 * for (const representation of reps) {
 *   const F = await FIM({ model, loader, representation });
 *   console.log(representation.representationName, await F.trace());
 *   F.dispose();
 * }
 * ```
 */
export interface AnyPMat extends PMatBase {
  /** tr(M). */
  trace(): number | Promise<number>;
  /** M v. */
  mv(v: PVector): PVector | Promise<PVector>;
  /** vᵀ M v. */
  vTMv(v: PVector): number | Promise<number>;
  /** (M + regul·I)⁻¹ v (exact for stored representations, conjugate gradient for matrix-free ones). */
  solve(v: PVector, options?: SolveOptions): PVector | Promise<PVector>;
  /** ‖M‖ for ord 'fro' (default), 2, −2; absent on matrix-free representations. */
  norm?(ord?: NormOrder): number;
}

/** A stored representation: every operation is synchronous. */
export interface PMat extends AnyPMat {
  /** tr(M). */
  trace(): number;
  /** ‖M‖ for ord 'fro' (default), 2 (largest singular value), −2 (smallest). */
  norm(ord?: NormOrder): number;
  /** M v. */
  mv(v: PVector): PVector;
  /** vᵀ M v. */
  vTMv(v: PVector): number;
  /** diag(M), shape [d]. */
  getDiag(): tf.Tensor1D;
  /** The dense d×d matrix (only for small d). */
  toTensor(): tf.Tensor2D;
  /** (M + regul·I)⁻¹ v. */
  solve(v: PVector, options?: SolveOptions): PVector;
}

/** What a representation is computed from: the matrix's definition and the data. */
export type FisherSpec = PassSpec;

/** A representation class, as passed to FIM({ representation }). */
export interface Representation<M extends PMatBase> {
  /** The class name ('PMatDense', 'PMatKFAC', ...), for messages, files and tables. */
  readonly representationName: string;
  /** Computes the matrix defined by `spec` in this representation. */
  compute(spec: FisherSpec): Promise<M>;
}

/**
 * The matrix class a representation computes: `PMatKFAC` for `typeof PMatKFAC`, and for a union
 * of representations the union of their classes (so `FIM` called with any of several
 * representations returns a matrix typed as one of them).
 */
export type RepresentationResult<R> = R extends Representation<infer M> ? M : never;

/**
 * Validates and returns the damping of solve/inv/pow/logdet: `options` must be undefined or an
 * object with only the keys in `allowed` (default: regul), and regul a finite number ≥ 0.
 */
export function checkRegul(options: SolveOptions | undefined, where: string, allowed: readonly string[] = ['regul']): number {
  const regul = checkOptions(options, allowed, where).regul ?? 0;
  if (typeof regul !== 'number' || !Number.isFinite(regul) || regul < 0) {
    throw new InvalidArgumentError(`${where}: 'regul' must be a finite number ≥ 0, received ${typeof regul === 'number' ? regul : describe(regul)}`);
  }
  return regul;
}

/**
 * Checks the vector argument of a product or solve: a live PVector on `lc`. Throws
 * InvalidArgumentError (not a PVector), DisposedError or LayerCollectionMismatchError, naming
 * `where` (e.g. 'PMatDense.mv').
 */
export function checkVector(v: unknown, lc: LayerCollection, where: string, name = 'v'): PVector {
  if (!(v instanceof PVector)) throw new InvalidArgumentError(`${where}: '${name}' must be a PVector, received ${describe(v)}`);
  if (v.isDisposed) throw new DisposedError(`${where}: the PVector '${name}' has been disposed`);
  lc.assertSame(v.layerCollection, `the vector given to ${where}`);
  return v;
}

export { checkAlive } from '../disposal.js';

/** Validates a norm order. */
export function checkNormOrder(ord: unknown, where: string): NormOrder {
  if (ord !== 'fro' && ord !== 2 && ord !== -2) {
    throw new InvalidArgumentError(`${where}: 'ord' must be 'fro', 2 or -2, received ${JSON.stringify(ord)}`);
  }
  return ord;
}

/** Validates a scalar factor. */
export function checkScalar(x: unknown, where: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) {
    throw new InvalidArgumentError(`${where}: 'x' must be a finite number, received ${typeof x === 'number' ? x : describe(x)}`);
  }
  return x;
}
