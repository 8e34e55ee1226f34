/**
 * A vector in parameter space: one float32 tensor of length d = layerCollection.numel(), laid
 * out as in CONVENTIONS.md (layers in collection order, each weight row-major, kernel then bias).
 */
import { tf } from '../tf.js';
import { DisposedError, InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import { checkAlive } from './disposal.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { preciseSumOf } from './reductions.js';
import { ensureKernelFixes } from '../backend/substrate.js';
import { checkFiniteTensor, checkLayerCollection, checkModel, describe } from './arguments.js';
import type { RepresentationState } from './pspace/state.js';

/** A vector in parameter space, laid out as its layer collection's flat parameter vector (a gradient, a direction, a model's weights). */
export class PVector {
  /** The parameters the vector is over, in their flat order (CONVENTIONS.md). */
  readonly layerCollection: LayerCollection;
  private flat: tf.Tensor1D | null;

  /** Takes ownership of `flat` (shape [d]); prefer the static constructors. */
  private constructor(lc: LayerCollection, flat: tf.Tensor1D) {
    ensureKernelFixes();
    this.layerCollection = lc;
    this.flat = flat;
  }

  /** The persisted state: the float32 values. */
  toState(): RepresentationState {
    return { meta: {}, arrays: { flat: new Float32Array(this.data.dataSync()) } };
  }

  /** Rebuilds a PVector from `toState()` on `lc` (size checked before the tensor is made). */
  static fromState(lc: LayerCollection, state: RepresentationState): PVector {
    const flat = state.arrays.flat;
    if (!(flat instanceof Float32Array) || flat.length !== lc.numel()) {
      throw new InvalidArgumentError(`PVector.fromState: array 'flat' must hold ${lc.numel()} float32 values, found ${flat ? `${flat.length} ${flat instanceof Float32Array ? 'float32' : 'float64'}` : 'none'}`);
    }
    return new PVector(lc, tf.tensor1d(flat));
  }

  /** Wraps a tensor the caller gives up (internal use: no copy). */
  static adopt(lc: LayerCollection, flat: tf.Tensor1D): PVector {
    return new PVector(lc, flat);
  }

  /**
   * A copy of the model's current trainable weights on `lc` (default: all supported layers).
   * @example const w0 = PVector.fromModel(model);
   */
  static fromModel(model: tf.LayersModel, lc?: LayerCollection): PVector {
    checkModel(model, 'PVector.fromModel');
    lc = lc === undefined ? LayerCollection.fromModel(model) : checkLayerCollection(lc, 'PVector.fromModel');
    const layers = lc.layersOf(model);
    const flat = tf.tidy(() => {
      const parts = layers.flatMap((l) => l.trainableWeights.map((w) => w.read().reshape([-1])));
      return parts.length === 0 ? tf.zeros([0]) : tf.concat(parts);
    });
    return new PVector(lc, flat as tf.Tensor1D);
  }

  /** A vector holding a copy of `t` (shape [d], float32). */
  static fromFlat(lc: LayerCollection, t: tf.Tensor): PVector {
    checkLayerCollection(lc, 'PVector.fromFlat');
    if (!(t instanceof tf.Tensor)) throw new InvalidArgumentError(`PVector.fromFlat: 't' must be a tf.Tensor, received ${describe(t)}`);
    if (t.isDisposed) throw new DisposedError(`PVector.fromFlat: tensor 't' is disposed`);
    if (t.rank !== 1 || t.shape[0] !== lc.numel()) {
      throw new ShapeMismatchError(`PVector.fromFlat: 't' must have shape [${lc.numel()}] (the collection's numel), received [${t.shape}]`);
    }
    if (t.dtype !== 'float32') throw new InvalidArgumentError(`PVector.fromFlat: 't' must be float32, received ${t.dtype}`);
    checkFiniteTensor(t, 'PVector.fromFlat');
    return new PVector(lc, t.clone() as tf.Tensor1D);
  }

  /** Standard normal entries; reproducible when `seed` is given. */
  static random(lc: LayerCollection, seed?: number): PVector {
    checkLayerCollection(lc, 'PVector.random');
    if (seed !== undefined && !Number.isSafeInteger(seed)) throw new InvalidArgumentError(`PVector.random: 'seed' must be an integer, received ${describe(seed)}`);
    // tfjs treats a seed of 0 as "no seed" (a fresh random stream): map it to a fixed non-zero one.
    const tfSeed = seed === 0 ? 0x9e3779b9 : seed;
    return new PVector(lc, tf.randomNormal([lc.numel()], 0, 1, 'float32', tfSeed) as tf.Tensor1D);
  }

  /** The zero vector. */
  static zeros(lc: LayerCollection): PVector {
    checkLayerCollection(lc, 'PVector.zeros');
    return new PVector(lc, tf.zeros([lc.numel()]) as tf.Tensor1D);
  }

  /** The underlying flat tensor, not copied (valid until dispose). */
  get data(): tf.Tensor1D {
    checkAlive(this.flat !== null && !this.flat.isDisposed, 'PVector');
    return this.flat;
  }

  /** Whether `dispose()` was called (or the tensor was disposed elsewhere). */
  get isDisposed(): boolean {
    return !this.flat || this.flat.isDisposed;
  }

  /** A copy of the flat vector, shape [d]. */
  toFlat(): tf.Tensor1D {
    return this.data.clone();
  }

  /** Copies of one layer's parameters in their tfjs shapes (e.g. [kernel, bias]). */
  layer(id: string): tf.Tensor[] {
    const e = this.layerCollection.get(id);
    const data = this.data;
    return tf.tidy(() => {
      let at = e.offset;
      return e.parameters.map((p) => {
        const t = tf.slice(data, [at], [p.size]).reshape([...p.shape]);
        at += p.size;
        return t;
      });
    });
  }

  /** Writes this vector into the model's weights (the model must match the collection). */
  copyToModel(model: tf.LayersModel): void {
    this.writeToModel(model, false);
  }

  /** Adds this vector to the model's weights in place. */
  addToModel(model: tf.LayersModel): void {
    this.writeToModel(model, true);
  }

  private writeToModel(model: tf.LayersModel, add: boolean): void {
    checkModel(model, add ? 'PVector.addToModel' : 'PVector.copyToModel');
    const layers = this.layerCollection.layersOf(model);
    const data = this.data;
    tf.tidy(() => {
      this.layerCollection.layers.forEach((e, li) => {
        let at = e.offset;
        layers[li]!.trainableWeights.forEach((w, k) => {
          const p = e.parameters[k]!;
          const v = tf.slice(data, [at], [p.size]).reshape([...p.shape]);
          w.write(add ? tf.add(w.read(), v) : v);
          at += p.size;
        });
      });
    });
  }

  private check(other: PVector, op: string): tf.Tensor1D {
    if (!(other instanceof PVector)) throw new InvalidArgumentError(`PVector.${op}: 'other' must be a PVector, received ${describe(other)}`);
    if (other.isDisposed) throw new DisposedError(`PVector.${op}: the PVector 'other' has been disposed`);
    this.layerCollection.assertSame(other.layerCollection, `the PVector given to ${op}`);
    return other.data;
  }

  /**
   * v + w as a new vector (same layer collection).
   *
   * @example
   * ```ts
   * const theta = PVector.fromModel(model);
   * const moved = theta.add(step); // θ + Δ
   * ```
   */
  add(other: PVector): PVector {
    const o = this.check(other, 'add');
    return new PVector(this.layerCollection, tf.add(this.data, o));
  }

  /** v − w as a new vector. */
  sub(other: PVector): PVector {
    const o = this.check(other, 'sub');
    return new PVector(this.layerCollection, tf.sub(this.data, o));
  }

  /** x·v as a new vector. */
  scale(x: number): PVector {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new InvalidArgumentError(`PVector.scale: 'x' must be a finite number, received ${describe(x)}`);
    return new PVector(this.layerCollection, tf.mul(this.data, x));
  }

  /** vᵀw. */
  dot(other: PVector): number {
    const o = this.check(other, 'dot');
    return preciseSumOf(() => tf.mul(this.data, o));
  }

  /** (Σ|v_k|^p)^{1/p}; p = Infinity gives max |v_k|. */
  norm(p = 2): number {
    if (typeof p !== 'number' || !(p >= 1)) throw new InvalidArgumentError(`PVector.norm: 'p' must be a number ≥ 1 (or Infinity), received ${describe(p)}`);
    const d = this.data;
    if (p === Infinity) return scalar(() => tf.max(tf.abs(d)));
    if (p === 2) return Math.sqrt(preciseSumOf(() => tf.square(d)));
    if (p === 1) return preciseSumOf(() => tf.abs(d));
    return preciseSumOf(() => tf.pow(tf.abs(d), p)) ** (1 / p);
  }

  /** A copy with its own tensor. */
  clone(): PVector {
    return new PVector(this.layerCollection, this.data.clone());
  }

  /** Releases the tensor; later use throws DisposedError, a second call does nothing. */
  dispose(): void {
    this.flat?.dispose();
    this.flat = null;
  }
}

/** Evaluates a scalar tensor expression and returns it as a number, leaving no tensor behind. */
export function scalar(f: () => tf.Tensor): number {
  const t = tf.tidy(f);
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}
