/**
 * PFMapDense: the Jacobian stored whole, J[o, i, :] = ∇θ f_o(x_i), a float32 tensor [O, n, d].
 * Memory O·n·d floats: for small models, for a restricted layer collection, and as the
 * reference the matrix-free PFMapImplicit and the Gram matrix are checked against.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, ShapeMismatchError } from '../../errors.js';
import { checkAlive } from '../disposal.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import type { PassSpec } from '../../backend/pass.js';
import { accumulate } from '../../statistics/statistic.js';
import { outputJacobian } from '../../statistics/jacobian.js';
import { PVector } from '../pvector.js';
import { FVector, assertFVectorShape } from '../fvector.js';
import type { PFMapBase } from './pfmap.js';
import { checkFiniteTensor, checkFloatTensor, checkLayerCollection, describe } from '../arguments.js';
import { checkVector } from '../pspace/pmat.js';

export class PFMapDense implements PFMapBase {
  /** The name in messages: 'PFMapDense'. */
  static readonly representationName = 'PFMapDense';
  /** The parameters θ of J. */
  readonly layerCollection: LayerCollection;
  private j: tf.Tensor3D | null;

  /** Wraps J of shape [O, n, d] (taken over, not copied). */
  constructor(lc: LayerCollection, jacobian: tf.Tensor3D) {
    checkLayerCollection(lc, 'PFMapDense');
    checkFloatTensor(jacobian, 'PFMapDense', 'jacobian');
    if (jacobian.rank !== 3 || jacobian.shape[2] !== lc.numel()) {
      throw new ShapeMismatchError(
        `PFMapDense: expected a tensor of shape [outputs, examples, ${lc.numel()}], received ${jacobian instanceof tf.Tensor ? `[${jacobian.shape}]` : typeof jacobian}`,
      );
    }
    this.layerCollection = lc;
    this.j = jacobian;
  }

  /**
   * Computes J (statistics/jacobian.ts): for every batch and every output o, the per-example
   * gradients ∇θ f̃_o(x_i) [B, d] of the spec's square-root outputs (the raw outputs for
   * `Jacobian`), stacked to [O, B, d] per batch and concatenated over batches in loader order.
   * Costs one forward and O backward passes per batch.
   */
  static async compute(spec: PassSpec): Promise<PFMapDense> {
    const { value: j } = await accumulate(spec, outputJacobian(spec.layerCollection));
    try {
      return new PFMapDense(spec.layerCollection, j);
    } catch (e) {
      j.dispose();
      throw e;
    }
  }

  /** A map holding a copy of `t` (shape [O, n, d], float32). */
  static fromTensor(lc: LayerCollection, t: tf.Tensor): PFMapDense {
    checkLayerCollection(lc, 'PFMapDense.fromTensor');
    checkFloatTensor(t, 'PFMapDense.fromTensor');
    if (t.rank !== 3 || t.shape[2] !== lc.numel()) {
      throw new ShapeMismatchError(`PFMapDense.fromTensor: 't' must have shape [outputs, examples, ${lc.numel()}], received [${t.shape}]`);
    }
    checkFiniteTensor(t, 'PFMapDense.fromTensor');
    return new PFMapDense(lc, t.clone() as tf.Tensor3D);
  }

  /** J, shape [O, n, d], not copied (valid until dispose). */
  get data(): tf.Tensor3D {
    checkAlive(this.j !== null && !this.j.isDisposed, 'PFMapDense');
    return this.j;
  }

  /** Number O of outputs per example. */
  get numOutputs(): number {
    return this.data.shape[0];
  }

  /** Number n of examples. */
  get numExamples(): number {
    return this.data.shape[1];
  }

  /** A copy of J, shape [O, n, d]. */
  toTensor(): tf.Tensor3D {
    return this.data.clone();
  }

  /** J as a [O·n, d] matrix, row o·n + i = ∇θ f_o(x_i) (a reshape, to be disposed by the caller). */
  rows(): tf.Tensor2D {
    const [o, n, d] = this.data.shape;
    return this.data.reshape([o * n, d]);
  }

  /**
   * Copies of one layer's block of J, one tensor per parameter of the layer in its tfjs shape
   * prefixed by [O, n] (e.g. Dense: [O, n, in, out] then [O, n, out]).
   */
  layer(id: string): tf.Tensor[] {
    const e = this.layerCollection.get(id);
    const j = this.data;
    const [o, n] = j.shape;
    return tf.tidy(() => {
      let at = e.offset;
      return e.parameters.map((p) => {
        const t = tf.slice(j, [0, 0, at], [o, n, p.size]).reshape([o, n, ...p.shape]);
        at += p.size;
        return t;
      });
    });
  }

  /** J v: the first-order change of every output on every example, [O, n]. */
  jvp(v: PVector): FVector {
    checkVector(v, this.layerCollection, 'PFMapDense.jvp');
    const [o, n, d] = this.data.shape;
    return FVector.adopt(tf.tidy(() => tf.matMul(this.data.reshape([o * n, d]), v.data.reshape([d, 1])).reshape([o, n]) as tf.Tensor2D));
  }

  /** Jᵀ f = Σ_{o,i} f_oi ∇θ f_o(x_i) (a sum, no averaging). */
  vjp(f: FVector): PVector {
    const [o, n, d] = this.data.shape;
    assertFVectorShape(f, o, n, 'the FVector given to PFMapDense.vjp');
    return PVector.adopt(this.layerCollection, tf.tidy(() => tf.matMul(f.data.reshape([1, o * n]), this.data.reshape([o * n, d])).reshape([d]) as tf.Tensor1D));
  }

  /** J + J′ as a new map (same outputs, examples and layer collection). */
  add(other: PFMapDense): PFMapDense {
    return new PFMapDense(this.layerCollection, tf.add(this.data, this.other(other, 'add')));
  }

  /** J − J′ as a new map. */
  sub(other: PFMapDense): PFMapDense {
    return new PFMapDense(this.layerCollection, tf.sub(this.data, this.other(other, 'sub')));
  }

  /** x·J. */
  scale(x: number): PFMapDense {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new InvalidArgumentError(`PFMapDense.scale: 'x' must be a finite number, received ${describe(x)}`);
    return new PFMapDense(this.layerCollection, tf.mul(this.data, x));
  }

  dispose(): void {
    this.j?.dispose();
    this.j = null;
  }

  private other(o: PFMapDense, op: string): tf.Tensor3D {
    if (!(o instanceof PFMapDense)) throw new InvalidArgumentError(`PFMapDense.${op}: 'other' must be a PFMapDense, received ${describe(o)}`);
    this.layerCollection.assertSame(o.layerCollection, `the PFMapDense given to ${op}`);
    const a = this.data.shape;
    const b = o.data.shape;
    if (a[0] !== b[0] || a[1] !== b[1]) {
      throw new ShapeMismatchError(`PFMapDense.${op}: shapes differ, [${a}] vs [${b}] (outputs, examples, parameters)`);
    }
    return o.data;
  }
}
