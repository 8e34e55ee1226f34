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
  inv(options?: SolveOptions): PMat;
}

/** log det(M + regul·I). */
export interface HasLogdet {
  logdet(options?: SolveOptions): number;
}

/** x·M as a matrix of parameter space. */
export interface Scalable {
  scale(x: number): PMat;
}

/** A diagonal re-estimated in a fixed eigenbasis by one more pass over the data (EKFAC). */
export interface DiagUpdatable {
  updateDiag(loader: Loader): Promise<unknown>;
}

const hasMethod = (m: object, name: string): boolean => typeof (m as Record<string, unknown>)[name] === 'function';

export const isInvertible = (m: PMat): m is PMat & Invertible => hasMethod(m, 'inv');
export const hasLogdet = (m: PMat): m is PMat & HasLogdet => hasMethod(m, 'logdet');
export const isScalable = (m: PMat): m is PMat & Scalable => hasMethod(m, 'scale');
export const isDiagUpdatable = (m: PMat): m is PMat & DiagUpdatable => hasMethod(m, 'updateDiag');

/** The optional operations a matrix offers: each its typed view of the matrix, or undefined. */
export interface Capabilities {
  readonly invertible?: Invertible;
  readonly logdet?: HasLogdet;
  readonly scalable?: Scalable;
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
