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
import type { LayerCollection } from '../../layers/layer-collection.js';
import { type OutputGradients, passOverData } from '../../backend/pass.js';
import { forEachOutput } from '../../backend/stacking.js';
import { PVector } from '../pvector.js';
import { HostSum, squaredGradientSum } from './accumulators.js';
import { rowSums, rowSumsLength } from '../reductions.js';
import type { FisherSpec, PMatBase } from './pmat.js';
import { type CGOptions, type CGResult, conjugateGradient } from '../../linalg/conjugate-gradient.js';
import { batchJacobian } from './accumulators.js';
import { PFMapDense } from '../map/dense.js';
import { type MapTMmapOptions, checkPFMap, checkReduction, reduce } from '../map/pmat-algebra.js';
import { checkAlive, checkVector } from './pmat.js';
import { assertFiniteStatistic, overflowError } from './finiteness.js';

/**
 * A matrix-free result, refused when the statistics overflowed (see finiteness.ts): a value
 * beyond float32's range would be Infinity in every stored representation of the same matrix.
 */
function finiteResult(value: number, where: string): number {
  if (!Number.isFinite(value) || Math.abs(value) > 3.4028234663852886e38) throw overflowError(where, 'the result', Number.isFinite(value) ? Infinity : value);
  return value;
}

export class PMatImplicit implements PMatBase {
  /** The name in saved files and messages: 'PMatImplicit'. */
  static readonly representationName = 'PMatImplicit';
  readonly layerCollection: LayerCollection;
  private readonly spec: FisherSpec;
  private disposed = false;

  private constructor(spec: FisherSpec) {
    this.spec = spec;
    this.layerCollection = spec.layerCollection;
  }

  /** Stores the definition; no pass over the data happens until a method is called. */
  static async compute(spec: FisherSpec): Promise<PMatImplicit> {
    return new PMatImplicit(spec);
  }

  /** Per-example ⟨∇θf̃_o(x_i), v⟩ for the stacked outputs of one batch, [count·B] (output-major). */
  private directional(g: OutputGradients, v: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() =>
      this.layerCollection.layers
        .map((e) => e.kind.gradientDot(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, tf.slice(v, [e.offset], [e.numel]), g.count))
        .reduce((a, b) => tf.add(a, b)),
    );
  }

  /** Σ_o Σ_i u_oi ∇θ f̃_o(x_i) over the whole collection for the stacked outputs, [d]. */
  private weightedSum(g: OutputGradients, u: tf.Tensor1D): tf.Tensor1D {
    return tf.concat(
      this.layerCollection.layers.map((e) => e.kind.weightedGradientSum(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, u, g.count)),
    ) as tf.Tensor1D;
  }

  /** tr F = (1/n) Σ_i Σ_o ‖∂f̃_o(x_i)/∂θ‖², one pass over the data. */
  async trace(): Promise<number> {
    checkAlive(!this.disposed, 'PMatImplicit');
    const lc = this.layerCollection;
    // Partial sums over rows of 128 parameters, added in float64 (see reductions.ts).
    const sum = new HostSum(rowSumsLength(lc.numel()));
    try {
      const { examples } = await passOverData(this.spec, {
        onOutputs: (g) => sum.add(rowSums(squaredGradientSum(lc, g))),
        onBatchEnd: () => sum.flush(),
      });
      return finiteResult(sum.total.reduce((a, b) => a + b, 0) / examples, 'PMatImplicit.trace');
    } finally {
      sum.dispose();
    }
  }

  /**
   * F v = (1/n) Σ_i J_iᵀ(J_i v), one pass over the data (J v from the layer contractions, then Jᵀ u).
   *
   * @example
   * ```ts
   * const F = await FIM({ model, loader, representation: PMatImplicit });
   * const Fv = await F.mv(v);
   * ```
   */
  async mv(v: PVector): Promise<PVector> {
    checkAlive(!this.disposed, 'PMatImplicit');
    checkVector(v, this.layerCollection, 'PMatImplicit.mv');
    const sum = new HostSum(this.layerCollection.numel());
    try {
      const { examples } = await passOverData(this.spec, {
        onOutputs: (g) => sum.add(this.weightedSum(g, this.directional(g, v.data))),
        onBatchEnd: () => sum.flush(),
      });
      const out = new Float32Array(sum.total.map((x) => x / examples));
      assertFiniteStatistic(out, 'PMatImplicit.mv', 'the product M v');
      return PVector.adopt(this.layerCollection, tf.tensor1d(out));
    } finally {
      sum.dispose();
    }
  }

  /** vᵀ F v = (1/n) Σ_i ‖J_i v‖², one pass over the data. */
  async vTMv(v: PVector): Promise<number> {
    checkAlive(!this.disposed, 'PMatImplicit');
    checkVector(v, this.layerCollection, 'PMatImplicit.vTMv');
    const sum = new HostSum(1);
    try {
      const { examples } = await passOverData(this.spec, {
        onOutputs: (g) => sum.add(tf.sum(tf.square(this.directional(g, v.data)))),
        onBatchEnd: () => sum.flush(),
      });
      return finiteResult(sum.total[0]! / examples, 'PMatImplicit.vTMv');
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
    checkAlive(!this.disposed, 'PMatImplicit');
    checkVector(v, this.layerCollection, 'PMatImplicit.solve');
    return conjugateGradient((p) => this.mv(p), v, options);
  }

  /** Holds no tensors; afterwards every method throws DisposedError. */
  dispose(): void {
    this.disposed = true;
  }

  /**
   * Rows (M J_rᵀ)ᵀ of a PFMapDense J [O, n, d] in one pass over the data: per batch and square-root
   * output o, with G [B, d] the per-example gradients, U = G Jᵀ [B, O·n] and
   * M J_rᵀ = (1/n) Σ Gᵀ U[:, r]. Transient memory B·d + B·O·n; the result holds O·n·d.
   */
  async mmap(pfmap: PFMapDense): Promise<PFMapDense> {
    checkAlive(!this.disposed, 'PMatImplicit');
    checkPFMap(pfmap, this.layerCollection, 'PMatImplicit.mmap');
    const [o, n, d] = pfmap.data.shape;
    const sum = new HostSum(o * n * d);
    try {
      const { examples } = await passOverData(this.spec, {
        // One output at a time: the transient Jacobian stays B×d.
        onOutputs: (stacked) =>
          forEachOutput(stacked, (g) => {
            const grads = batchJacobian(this.layerCollection, g);
            const u = tf.matMul(grads, pfmap.data.reshape([o * n, d]), false, true);
            sum.add(tf.matMul(u, grads, true, false));
          }),
        onBatchEnd: () => sum.flush(),
      });
      const values = Float32Array.from(sum.total, (x) => x / examples);
      assertFiniteStatistic(values, 'PMatImplicit.mmap', 'the product M Jᵀ');
      return new PFMapDense(this.layerCollection, tf.tensor3d(values, [o, n, d]));
    } finally {
      sum.dispose();
    }
  }

  /**
   * J_r M J_rᵀ = (1/n) Σ_i Σ_o' ⟨∇θf̃_o'(x_i), J_r⟩² for every row r = (o, i) of J, in one pass:
   * [O, n] ('diag') or Σ_o, [n] ('sum', default).
   */
  async mapTMmap(pfmap: PFMapDense, options: MapTMmapOptions<'diag'>): Promise<tf.Tensor2D>;
  async mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions<'sum'>): Promise<tf.Tensor1D>;
  async mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions): Promise<tf.Tensor> {
    checkAlive(!this.disposed, 'PMatImplicit');
    const reduction = checkReduction(options, 'PMatImplicit.mapTMmap');
    checkPFMap(pfmap, this.layerCollection, 'PMatImplicit.mapTMmap');
    const [o, n, d] = pfmap.data.shape;
    const sum = new HostSum(o * n);
    try {
      const { examples } = await passOverData(this.spec, {
        onOutputs: (stacked) =>
          forEachOutput(stacked, (g) => sum.add(tf.sum(tf.square(tf.matMul(batchJacobian(this.layerCollection, g), pfmap.data.reshape([o * n, d]), false, true)), 0))),
        onBatchEnd: () => sum.flush(),
      });
      const host = Float32Array.from(sum.total, (x) => x / examples);
      assertFiniteStatistic(host, 'PMatImplicit.mapTMmap', 'J M Jᵀ');
      const values = tf.tensor1d(host);
      try {
        return reduce(values, o, n, reduction);
      } finally {
        values.dispose();
      }
    } finally {
      sum.dispose();
    }
  }
}
