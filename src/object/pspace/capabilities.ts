/**
 * Optional operations of a matrix in parameter space, as small interfaces with type guards:
 * code that combines matrices of several representations (PMatMixed) checks each matrix once,
 * when it takes it, and calls the operation through the typed view afterwards, rather than
 * testing for a method at every call.
 *
 * @example
 * ```ts
 * const can = capabilitiesOf(m);
 * if (can.invertible) can.invertible.inv({ regul: 1e-3 });
 * ```
 */
import type { Loader } from '../../data/loader.js';
import type { PMat, SolveOptions } from './pmat.js';

/** (M + regul·I)⁻¹ as a matrix of parameter space. */
export interface Invertible {
  /** (M + regul·I)⁻¹ as a new matrix (exact damping, CONVENTIONS.md). */
  inv(options?: SolveOptions): PMat;
}

/** log det(M + regul·I). */
export interface HasLogdet {
  /** log det(M + regul·I). */
  logdet(options?: SolveOptions): number;
}

/** x·M as a matrix of parameter space. */
export interface Scalable {
  /** x·M as a new matrix. */
  scale(x: number): PMat;
}

/** A diagonal re-estimated in a fixed eigenbasis by one more pass over the data (EKFAC). */
export interface DiagUpdatable {
  /** Replaces the diagonal by the exact second moment of the per-example gradients projected on the eigenbasis, from one pass over `loader`. */
  updateDiag(loader: Loader): Promise<unknown>;
}

const hasMethod = (m: object, name: string): boolean => typeof (m as Record<string, unknown>)[name] === 'function';

/** Whether `m` offers `inv` (then typed as Invertible). */
export const isInvertible = (m: PMat): m is PMat & Invertible => hasMethod(m, 'inv');
/** Whether `m` offers `logdet`. */
export const hasLogdet = (m: PMat): m is PMat & HasLogdet => hasMethod(m, 'logdet');
/** Whether `m` offers `scale`. */
export const isScalable = (m: PMat): m is PMat & Scalable => hasMethod(m, 'scale');
/** Whether `m` offers `updateDiag` (EKFAC). */
export const isDiagUpdatable = (m: PMat): m is PMat & DiagUpdatable => hasMethod(m, 'updateDiag');

/** The optional operations a matrix offers: each its typed view of the matrix, or undefined. */
export interface Capabilities {
  /** `m` as Invertible, when it offers `inv`. */
  readonly invertible?: Invertible;
  /** `m` as HasLogdet, when it offers `logdet`. */
  readonly logdet?: HasLogdet;
  /** `m` as Scalable, when it offers `scale`. */
  readonly scalable?: Scalable;
  /** `m` as DiagUpdatable, when it offers `updateDiag`. */
  readonly diagUpdatable?: DiagUpdatable;
}

/** Checks once which optional operations `m` offers. */
export function capabilitiesOf(m: PMat): Capabilities {
  return {
    ...(isInvertible(m) ? { invertible: m } : {}),
    ...(hasLogdet(m) ? { logdet: m } : {}),
    ...(isScalable(m) ? { scalable: m } : {}),
    ...(isDiagUpdatable(m) ? { diagUpdatable: m } : {}),
  };
}
