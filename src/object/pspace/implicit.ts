/**
 * PMatImplicit: a matrix-free representation. It stores only the definition of M (model,
 * layer collection, data, variant) and recomputes from the data on every call, holding nothing
 * d-sized but the vectors it is given and returns:
 *   M v   = (1/n) Σ_i Σ_o ∇θf̃_o(x_i) ⟨∇θf̃_o(x_i), v⟩,
 *   vᵀMv  = (1/n) Σ_i Σ_o ⟨∇θf̃_o(x_i), v⟩²,
 *   tr(M) = (1/n) Σ_i Σ_o ‖∇θf̃_o(x_i)‖².
 * Each method is one pass over the data, so every method returns a Promise.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { type OutputGradients, passOverData } from '../../backend/engine.js';
import { PVector } from '../pvector.js';
import { HostSum } from './accumulators.js';
import { rowSums, rowSumsLength } from '../reductions.js';
import type { FisherSpec, PMatBase } from './pmat.js';
import { type CGOptions, type CGResult, conjugateGradient } from './conjugate-gradient.js';

export class PMatImplicit implements PMatBase {
  static readonly representationName = 'PMatImplicit';
  readonly layerCollection: LayerCollection;
  private readonly spec: FisherSpec;

  private constructor(spec: FisherSpec) {
    this.spec = spec;
    this.layerCollection = spec.layerCollection;
  }

  /** Stores the definition; no pass over the data happens until a method is called. */
  static async compute(spec: FisherSpec): Promise<PMatImplicit> {
    return new PMatImplicit(spec);
  }

  /** Per-example ⟨∇θf̃_o(x_i), v⟩ for one batch and output, shape [B]. */
  private directional(g: OutputGradients, v: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() =>
      this.layerCollection.layers
        .map((e) => e.kind.gradientDot(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, tf.slice(v, [e.offset], [e.numel])))
        .reduce((a, b) => tf.add(a, b)),
    );
  }

  async trace(): Promise<number> {
    const lc = this.layerCollection;
    // Partial sums over rows of 128 parameters, added in float64 (see reductions.ts).
    const sum = new HostSum(rowSumsLength(lc.numel()));
    try {
      const { examples } = await passOverData(this.spec, {
        onOutput: (g) =>
          sum.add(rowSums(tf.concat(lc.layers.map((e) => e.kind.squaredGradientSum(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!))))),
        onBatchEnd: () => sum.flush(),
      });
      return sum.total.reduce((a, b) => a + b, 0) / examples;
    } finally {
      sum.dispose();
    }
  }

  async mv(v: PVector): Promise<PVector> {
    this.layerCollection.assertSame(v.layerCollection, 'the vector given to PMatImplicit.mv');
    const sum = new HostSum(this.layerCollection.numel());
    try {
      const { examples } = await passOverData(this.spec, {
        onOutput: (g) => {
          const u = this.directional(g, v.data);
          sum.add(tf.concat(this.layerCollection.layers.map((e) => e.kind.weightedGradientSum(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, u))));
        },
        onBatchEnd: () => sum.flush(),
      });
      const out = sum.total.map((x) => x / examples);
      return PVector.adopt(this.layerCollection, tf.tensor1d(Float32Array.from(out)));
    } finally {
      sum.dispose();
    }
  }

  async vTMv(v: PVector): Promise<number> {
    this.layerCollection.assertSame(v.layerCollection, 'the vector given to PMatImplicit.vTMv');
    const sum = new HostSum(1);
    try {
      const { examples } = await passOverData(this.spec, {
        onOutput: (g) => sum.add(tf.sum(tf.square(this.directional(g, v.data)))),
        onBatchEnd: () => sum.flush(),
      });
      return sum.total[0]! / examples;
    } finally {
      sum.dispose();
    }
  }

  /** (M + regul·I)⁻¹ v by conjugate gradient (one pass over the data per iteration). */
  async solve(v: PVector, options: CGOptions = {}): Promise<PVector> {
    const r = await this.solveWithInfo(v, options);
    return r.x;
  }

  /** As `solve`, also reporting iterations, final residual and convergence. */
  async solveWithInfo(v: PVector, options: CGOptions = {}): Promise<CGResult> {
    if (!(v instanceof PVector)) throw new InvalidArgumentError('PMatImplicit.solve: v must be a PVector');
    this.layerCollection.assertSame(v.layerCollection, 'the vector given to PMatImplicit.solve');
    return conjugateGradient((p) => this.mv(p), v, options);
  }

  /** Holds no tensors; present for interface uniformity. */
  dispose(): void {}
}
