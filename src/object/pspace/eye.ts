/**
 * PMatEye: s·I on a layer collection — the isotropic prior of a Laplace approximation, the
 * damping term of an optimiser, or a baseline. Holds no tensor.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, NotPositiveDefiniteError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';
import { checkLayerCollection, checkOptions, describe } from '../arguments.js';
import { type NormOrder, type PMat, type SolveOptions, checkAlive, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import type { RepresentationState } from './state.js';

export class PMatEye implements PMat {
  /** The name in saved files and messages: 'PMatEye'. */
  static readonly representationName = 'PMatEye';
  readonly layerCollection: LayerCollection;
  private readonly s: number;
  private disposed = false;

  /** s·I on `lc` (default s = 1). */
  constructor(lc: LayerCollection, scaling = 1) {
    this.layerCollection = checkLayerCollection(lc, 'PMatEye');
    this.s = checkScalar(scaling, 'PMatEye');
  }

  /** The persisted state: the factor s. */
  toState(): RepresentationState {
    return { meta: { scaling: this.scaling }, arrays: {} };
  }

  /** Rebuilds a PMatEye from `toState()` on `lc`. */
  static fromState(lc: LayerCollection, state: RepresentationState): PMatEye {
    return new PMatEye(lc, state.meta.scaling as number);
  }

  /** The factor s; throws DisposedError once disposed (as every method does). */
  get scaling(): number {
    checkAlive(!this.disposed, 'PMatEye');
    return this.s;
  }

  private get d(): number {
    checkAlive(!this.disposed, 'PMatEye');
    return this.layerCollection.numel();
  }

  trace(): number {
    return this.scaling * this.d;
  }

  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatEye.norm');
    return ord === 'fro' ? Math.abs(this.scaling) * Math.sqrt(this.d) : Math.abs(this.scaling);
  }

  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'PMatEye.mv');
    return v.scale(this.scaling);
  }

  vTMv(v: PVector): number {
    checkVector(v, this.layerCollection, 'PMatEye.vTMv');
    return this.scaling * v.dot(v);
  }

  getDiag(): tf.Tensor1D {
    return tf.fill([this.d], this.scaling) as tf.Tensor1D;
  }

  toTensor(): tf.Tensor2D {
    return tf.tidy(() => tf.mul(tf.eye(this.d), this.scaling) as tf.Tensor2D);
  }

  solve(v: PVector, options?: SolveOptions): PVector {
    checkVector(v, this.layerCollection, 'PMatEye.solve');
    return v.scale(1 / this.damped(checkRegul(options, 'PMatEye.solve')));
  }

  /** (s + regul)⁻¹·I as a new matrix. */
  inv(options?: SolveOptions): PMatEye {
    return new PMatEye(this.layerCollection, 1 / this.damped(checkRegul(options, 'PMatEye.inv')));
  }

  /** (s + regul)^p · I. */
  pow(p: number, options?: SolveOptions): PMatEye {
    checkScalar(p, 'PMatEye.pow');
    const x = this.scaling + checkRegul(options, 'PMatEye.pow');
    if (x < 0 && !Number.isInteger(p)) throw new InvalidArgumentError(`PMatEye.pow: a fractional power of a negative scaling (${x}) is not real`);
    if (x === 0 && p < 0) throw new NotPositiveDefiniteError(`PMatEye.pow(${p}) of a zero matrix`);
    return new PMatEye(this.layerCollection, x ** p);
  }

  /** 1/s · I if |s| > atol, else 0. */
  pinv(options: { atol?: number } = {}): PMatEye {
    const atol = checkOptions(options, ['atol'], 'PMatEye.pinv').atol ?? 1e-8;
    if (!(typeof atol === 'number' && Number.isFinite(atol) && atol >= 0)) throw new InvalidArgumentError(`PMatEye.pinv: 'atol' must be a finite number ≥ 0, received ${describe(atol)}`);
    return new PMatEye(this.layerCollection, Math.abs(this.scaling) > atol ? 1 / this.scaling : 0);
  }

  /** log det(sI + regul·I) = d·log(s + regul). */
  logdet(options?: SolveOptions): number {
    return this.d * Math.log(this.scaling + checkRegul(options, 'PMatEye.logdet'));
  }

  /** x·s·I as a new matrix. */
  scale(x: number): PMatEye {
    return new PMatEye(this.layerCollection, this.scaling * checkScalar(x, 'PMatEye.scale'));
  }

  /** (s + s′)·I as a new matrix. */
  add(other: PMatEye): PMatEye {
    return new PMatEye(this.layerCollection, this.scaling + this.other(other, 'add'));
  }

  /** (s − s′)·I as a new matrix. */
  sub(other: PMatEye): PMatEye {
    return new PMatEye(this.layerCollection, this.scaling - this.other(other, 'sub'));
  }

  /** (s·s′)·I as a new matrix. */
  mm(other: PMatEye): PMatEye {
    return new PMatEye(this.layerCollection, this.scaling * this.other(other, 'mm'));
  }

  /** Holds no tensor; afterwards every method throws DisposedError. */
  dispose(): void {
    this.disposed = true;
  }

  private damped(regul: number): number {
    const x = this.scaling + regul;
    if (x === 0) throw new NotPositiveDefiniteError(`PMatEye: s + regul = 0 is not invertible; use a regul ≠ −s`);
    return x;
  }

  private other(o: PMatEye, op: string): number {
    if (!(o instanceof PMatEye)) throw new InvalidArgumentError(`PMatEye.${op}: 'other' must be a PMatEye, received ${describe(o)}`);
    this.layerCollection.assertSame(o.layerCollection, `the matrix given to PMatEye.${op}`);
    return o.scaling;
  }
}
