/**
 * A vector in function space: one value per (model output o, example i), stored as a float32
 * tensor of shape [O, n]. O is the number of model outputs per example (the output flattened),
 * n the number of examples in loader order. It is what a Jacobian maps parameter vectors to
 * (J v), what a Gram matrix / empirical NTK multiplies, and what J's transpose takes back to
 * parameter space (Jᵀ f). Entry [o, i] pairs with row (o, i) of a PFMap and of an FMat, whose
 * flattening (o·n + i) is the same row-major order.
 */
import { tf } from '../tf.js';
import { DisposedError, InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import { checkAlive } from './disposal.js';
import { preciseSumOf } from './reductions.js';
import { ensureKernelFixes } from '../backend/substrate.js';
import { checkFiniteTensor, describe } from './arguments.js';

/** A vector in function space: one value per output and example, shape [O, n]. */
export class FVector {
  private values: tf.Tensor2D | null;

  private constructor(values: tf.Tensor2D) {
    ensureKernelFixes();
    this.values = values;
  }

  /** Wraps a [O, n] float32 tensor the caller gives up (internal use: no copy, no check). */
  static adopt(values: tf.Tensor2D): FVector {
    return new FVector(values);
  }

  /**
   * A vector holding a copy of `t`, a float32 tensor of shape [O, n].
   * @example const f = FVector.fromTensor(tf.ones([3, 10])); // 3 outputs, 10 examples
   */
  static fromTensor(t: tf.Tensor): FVector {
    if (!(t instanceof tf.Tensor)) throw new InvalidArgumentError(`FVector.fromTensor: 't' must be a tf.Tensor, received ${describe(t)}`);
    if (t.isDisposed) throw new DisposedError(`FVector.fromTensor: tensor 't' is disposed`);
    if (t.rank !== 2) throw new ShapeMismatchError(`FVector.fromTensor: 't' must have shape [outputs, examples], received [${t.shape}]`);
    if (t.dtype !== 'float32') throw new InvalidArgumentError(`FVector.fromTensor: 't' must be float32, received ${t.dtype}`);
    checkFiniteTensor(t, 'FVector.fromTensor');
    return new FVector(t.clone() as tf.Tensor2D);
  }

  /** Standard normal entries, shape [outputs, examples]; reproducible when `seed` is given. */
  static random(outputs: number, examples: number, seed?: number): FVector {
    checkSize(outputs, 'outputs', 'FVector.random');
    checkSize(examples, 'examples', 'FVector.random');
    if (seed !== undefined && !Number.isSafeInteger(seed)) throw new InvalidArgumentError(`FVector.random: 'seed' must be an integer, received ${describe(seed)}`);
    return new FVector(tf.randomNormal([outputs, examples], 0, 1, 'float32', seed) as tf.Tensor2D);
  }

  /** The zero vector of shape [outputs, examples]. */
  static zeros(outputs: number, examples: number): FVector {
    checkSize(outputs, 'outputs', 'FVector.zeros');
    checkSize(examples, 'examples', 'FVector.zeros');
    return new FVector(tf.zeros([outputs, examples]) as tf.Tensor2D);
  }

  /** The underlying [O, n] tensor, not copied (valid until dispose). */
  get data(): tf.Tensor2D {
    checkAlive(this.values !== null && !this.values.isDisposed, 'FVector');
    return this.values;
  }

  /** Whether `dispose()` was called (or the tensor was disposed elsewhere). */
  get isDisposed(): boolean {
    return !this.values || this.values.isDisposed;
  }

  /** Number O of outputs per example. */
  get numOutputs(): number {
    return this.data.shape[0];
  }

  /** Number n of examples. */
  get numExamples(): number {
    return this.data.shape[1];
  }

  /** A copy of the values, shape [O, n]. */
  toTensor(): tf.Tensor2D {
    return this.data.clone();
  }

  /** f + g. */
  add(other: FVector): FVector {
    const o = this.check(other, 'add');
    return new FVector(tf.add(this.data, o));
  }

  /** f − g. */
  sub(other: FVector): FVector {
    const o = this.check(other, 'sub');
    return new FVector(tf.sub(this.data, o));
  }

  /** x·f. */
  scale(x: number): FVector {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new InvalidArgumentError(`FVector.scale: 'x' must be a finite number, received ${describe(x)}`);
    return new FVector(tf.mul(this.data, x));
  }

  /** ⟨f, g⟩ = Σ_{o,i} f_oi g_oi, summed in float64 (reductions.ts). */
  dot(other: FVector): number {
    const o = this.check(other, 'dot');
    return preciseSumOf(() => tf.mul(this.data, o));
  }

  /** (Σ|f_oi|^p)^{1/p}; p = Infinity gives max |f_oi|. */
  norm(p = 2): number {
    if (typeof p !== 'number' || !(p >= 1)) throw new InvalidArgumentError(`FVector.norm: 'p' must be a number ≥ 1 (or Infinity), received ${describe(p)}`);
    const d = this.data;
    if (p === Infinity) {
      const m = tf.tidy(() => tf.max(tf.abs(d)));
      const v = m.dataSync()[0]!;
      m.dispose();
      return v;
    }
    if (p === 2) return Math.sqrt(preciseSumOf(() => tf.square(d)));
    if (p === 1) return preciseSumOf(() => tf.abs(d));
    return preciseSumOf(() => tf.pow(tf.abs(d), p)) ** (1 / p);
  }

  /** A copy with its own tensor. */
  clone(): FVector {
    return new FVector(this.data.clone());
  }

  /** Releases the tensor; later use throws DisposedError, a second call does nothing. */
  dispose(): void {
    this.values?.dispose();
    this.values = null;
  }

  private check(other: FVector, op: string): tf.Tensor2D {
    if (!(other instanceof FVector)) throw new InvalidArgumentError(`FVector.${op}: 'other' must be an FVector, received ${describe(other)}`);
    assertFVectorShape(other, this.numOutputs, this.numExamples, `the FVector given to FVector.${op}`);
    return other.data;
  }
}

/**
 * Throws unless `f` is an FVector of shape [outputs, examples]; `what` names it in the error
 * (e.g. "the FVector given to PFMapDense.vjp").
 */
export function assertFVectorShape(f: unknown, outputs: number, examples: number | undefined, what: string): FVector {
  if (!(f instanceof FVector)) throw new InvalidArgumentError(`${what} must be an FVector, received ${describe(f)}`);
  if (f.isDisposed) throw new DisposedError(`${what} has been disposed`);
  const [o, n] = f.data.shape;
  if (o !== outputs || (examples !== undefined && n !== examples)) {
    throw new ShapeMismatchError(`${what} has shape [${o}, ${n}] but [${outputs}, ${examples ?? 'n'}] (outputs, examples) is expected`);
  }
  return f;
}

function checkSize(v: number, name: string, where: string): void {
  if (!(Number.isInteger(v) && v >= 1)) throw new InvalidArgumentError(`${where}: '${name}' must be an integer ≥ 1, received ${describe(v)}`);
}
