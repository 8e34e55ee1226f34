/**
 * FMatDense: the empirical tangent kernel stored whole, as the (O·n)×(O·n) symmetric matrix
 * K[(o,i),(o',j)] = ⟨∇θ f_o(x_i), ∇θ f_o'(x_j)⟩, held exactly in float64 on the host (traces,
 * norms, eigendecompositions, Cholesky solves) and as a float32 device tensor (products with
 * FVectors), like a PMatDense block. Memory 12·(O·n)² bytes.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, ShapeMismatchError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { eighSym } from '../../linalg/index.js';
import { FVector, assertFVectorShape } from '../fvector.js';
import { SymmetricBlock } from '../pspace/symmetric-block.js';
import { type SolveOptions, checkRegul, checkScalar } from '../pspace/pmat.js';
import { centerKernel } from './kernel-blocks.js';
import { accumulate } from '../../statistics/statistic.js';
import { tangentKernel } from '../../statistics/tangent-kernel.js';
import { checkFiniteValues, checkFloatTensor, checkLayerCollection, checkOptions, describe } from '../arguments.js';
import type { FMatBase, GramSpec } from './fmat.js';

/** Top eigenpairs of an FMat. */
export interface FMatEigen {
  /** Eigenvalues in descending order (length k). */
  values: Float64Array;
  /** Eigenvectors, [k, O, n]: vectors[t] pairs with values[t] (unit norm, float32). */
  vectors: tf.Tensor3D;
}

export class FMatDense implements FMatBase {
  /** The name in messages: 'FMatDense'. */
  static readonly representationName = 'FMatDense';
  /** The parameters θ of the Jacobians. */
  readonly layerCollection: LayerCollection;
  readonly numOutputs: number;
  readonly numExamples: number;
  private readonly block: SymmetricBlock;

  /** Wraps a row-major float64 (O·n)² matrix (taken over, not copied). */
  constructor(lc: LayerCollection, outputs: number, examples: number, values: Float64Array | SymmetricBlock) {
    checkLayerCollection(lc, 'FMatDense');
    for (const [name, v] of [['outputs', outputs], ['examples', examples]] as const) {
      if (!(Number.isInteger(v) && v >= 1)) throw new InvalidArgumentError(`FMatDense: '${name}' must be an integer ≥ 1, received ${describe(v)}`);
    }
    if (!(values instanceof Float64Array || values instanceof SymmetricBlock)) {
      throw new InvalidArgumentError(`FMatDense: 'values' must be a Float64Array of (O·n)² entries, received ${describe(values)}`);
    }
    if (values instanceof Float64Array) checkFiniteValues(values, 'FMatDense', 'values');
    const size = outputs * examples;
    const got = values instanceof SymmetricBlock ? values.n * values.n : values.length;
    if (got !== size * size) throw new ShapeMismatchError(`FMatDense: expected ${size * size} values (O = ${outputs}, n = ${examples}), received ${got}`);
    this.layerCollection = lc;
    this.numOutputs = outputs;
    this.numExamples = examples;
    this.block = values instanceof SymmetricBlock ? values : new SymmetricBlock(values, size);
  }

  /** Computes K from per-layer kernels (statistics/tangent-kernel.ts), optionally centered (kernel-blocks.ts). */
  static async compute(spec: GramSpec): Promise<FMatDense> {
    const { value: values, outputs, examples } = await accumulate(spec, tangentKernel(spec.layerCollection));
    if (spec.centering) centerKernel(values, outputs, examples);
    return new FMatDense(spec.layerCollection, outputs, examples, values);
  }

  /** A matrix from a [O, n, O, n] tensor (copied). */
  static fromTensor(lc: LayerCollection, t: tf.Tensor): FMatDense {
    checkLayerCollection(lc, 'FMatDense.fromTensor');
    checkFloatTensor(t, 'FMatDense.fromTensor');
    const [o, n, o2, n2] = t.shape;
    if (t.rank !== 4 || o !== o2 || n !== n2) throw new ShapeMismatchError(`FMatDense.fromTensor: expected shape [O, n, O, n], received [${t.shape}]`);
    return new FMatDense(lc, o!, n!, new Float64Array(t.dataSync()));
  }

  /** The exact float64 entries, row-major (O·n)², not copied. */
  values(): Float64Array {
    return this.block.values;
  }

  /** A copy as a float32 tensor [O, n, O, n]. */
  toTensor(): tf.Tensor4D {
    const [o, n] = [this.numOutputs, this.numExamples];
    return tf.tidy(() => this.block.tensor().reshape([o, n, o, n]).clone() as tf.Tensor4D);
  }

  /** Σ_{o,i} K[o,i,o,i] = Σ ‖∇θ f_o(x_i)‖². */
  trace(): number {
    return this.block.trace();
  }

  /** ‖K‖_F ('fro', default) or the largest eigenvalue modulus (2). */
  norm(ord: 'fro' | 2 = 'fro'): number {
    if (ord !== 'fro' && ord !== 2) throw new InvalidArgumentError(`FMatDense.norm: 'ord' must be 'fro' or 2, received ${JSON.stringify(ord)}`);
    if (ord === 'fro') return Math.sqrt(this.block.frobeniusSquared());
    if (ord === 2) return this.block.extremeSingularValues().max;
    throw new InvalidArgumentError(`FMatDense.norm: 'ord' must be 'fro' or 2, received ${JSON.stringify(ord)}`);
  }

  /** K f, [O, n]. */
  mv(f: FVector): FVector {
    const [o, n] = [this.numOutputs, this.numExamples];
    assertFVectorShape(f, o, n, 'the FVector given to FMatDense.mv');
    return FVector.adopt(tf.tidy(() => this.block.mv(f.data.reshape([o * n])).reshape([o, n]) as tf.Tensor2D));
  }

  /** fᵀ K f. */
  vTMv(f: FVector): number {
    const kf = this.mv(f);
    try {
      return kf.dot(f);
    } finally {
      kf.dispose();
    }
  }

  /**
   * The k largest eigenpairs (all when k is omitted), from a float64 symmetric
   * eigendecomposition of the (O·n)² matrix (O((O·n)³) time).
   */
  eigendecomposition(options: { k?: number } = {}): FMatEigen {
    const size = this.numOutputs * this.numExamples;
    const k = (checkOptions(options, ['k'], 'FMatDense.eigendecomposition').k ?? size) as number;
    if (!(Number.isInteger(k) && k >= 1 && k <= size)) {
      throw new InvalidArgumentError(`FMatDense.eigendecomposition: 'k' must be an integer in [1, ${size}], received ${describe(k)}`);
    }
    const { values, vectors } = eighSym(this.values(), size);
    const top = new Float64Array(k);
    const vecs = new Float32Array(k * size);
    for (let t = 0; t < k; t++) {
      const j = size - 1 - t;
      top[t] = values[j]!;
      for (let r = 0; r < size; r++) vecs[t * size + r] = vectors[r * size + j]!;
    }
    return { values: top, vectors: tf.tensor3d(vecs, [k, this.numOutputs, this.numExamples]) };
  }

  /** (K + regul·I)⁻¹ f through a float64 Cholesky factorisation (cached per regul). */
  solve(f: FVector, options?: SolveOptions): FVector {
    const regul = checkRegul(options, 'FMatDense.solve');
    const [o, n] = [this.numOutputs, this.numExamples];
    assertFVectorShape(f, o, n, 'the FVector given to FMatDense.solve');
    const x = this.block.solve(new Float64Array(f.data.dataSync()), 1, regul);
    return FVector.adopt(tf.tensor2d(new Float32Array(x), [o, n]));
  }

  /** K + K′ as a new matrix (same shape and layer collection). */
  add(other: FMatDense): FMatDense {
    return this.derived(this.block.combine(1, this.other(other, 'add'), 1));
  }

  /** K − K′ as a new matrix. */
  sub(other: FMatDense): FMatDense {
    return this.derived(this.block.combine(1, this.other(other, 'sub'), -1));
  }

  /** x·K as a new matrix. */
  scale(x: number): FMatDense {
    return this.derived(this.block.combine(checkScalar(x, 'FMatDense.scale'), null, 0));
  }

  dispose(): void {
    this.block.dispose('FMatDense');
  }

  private derived(b: SymmetricBlock): FMatDense {
    return new FMatDense(this.layerCollection, this.numOutputs, this.numExamples, b);
  }

  private other(o: FMatDense, op: string): SymmetricBlock {
    if (!(o instanceof FMatDense)) throw new InvalidArgumentError(`FMatDense.${op}: 'other' must be an FMatDense, received ${describe(o)}`);
    this.layerCollection.assertSame(o.layerCollection, `the matrix given to FMatDense.${op}`);
    if (o.numOutputs !== this.numOutputs || o.numExamples !== this.numExamples) {
      throw new ShapeMismatchError(`FMatDense.${op}: shapes differ, [${o.numOutputs}, ${o.numExamples}] vs [${this.numOutputs}, ${this.numExamples}] (outputs, examples)`);
    }
    return o.block;
  }
}
