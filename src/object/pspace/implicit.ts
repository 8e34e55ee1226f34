/**
 * PMatImplicit: a matrix-free representation. It stores only the definition of M (model,
 * layer collection, data, variant) and recomputes from the data on every call, holding nothing
 * d-sized but the vectors it is given and returns:
 *   M v   = (1/n) Σ_i Σ_o ∇θf̃_o(x_i) ⟨∇θf̃_o(x_i), v⟩,
 *   vᵀMv  = (1/n) Σ_i Σ_o ⟨∇θf̃_o(x_i), v⟩²,
 *   tr(M) = (1/n) Σ_i Σ_o ‖∇θf̃_o(x_i)‖².
 * Each method is one pass over the data, so every method returns a Promise. The passes are the
 * statistics of statistics/jacobian-products.ts; this class is the algebra around them (argument
 * checks, conjugate gradient, finiteness, wrapping the results).
 */
import { tf } from '../../tf.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';
import { accumulate } from '../../statistics/statistic.js';
import { float32Values } from '../../backend/tensor-values.js';
import { gramQuadraticForm, gramRowsProduct, gramRowsQuadraticForms, gramTrace, gramVectorProduct } from '../../statistics/jacobian-products.js';
import type { FisherSpec, PMatBase } from './pmat.js';
import { type CGOptions, type CGResult, conjugateGradient } from '../../linalg/conjugate-gradient.js';
import { PFMapDense } from '../map/dense.js';
import { type MapTMmapOptions, checkPFMap, checkReduction, reduce } from '../map/pmat-algebra.js';
import { checkAlive, checkVector } from './pmat.js';
import { assertFiniteStatistic, overflowError } from '../../statistics/finiteness.js';

/**
 * A matrix-free result, refused when the statistics overflowed (see statistics/finiteness.ts): a value
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

  /** tr F = (1/n) Σ_i Σ_o ‖∂f̃_o(x_i)/∂θ‖², one pass over the data. */
  async trace(): Promise<number> {
    checkAlive(!this.disposed, 'PMatImplicit');
    const { value } = await accumulate(this.spec, gramTrace(this.layerCollection));
    return finiteResult(value, 'PMatImplicit.trace');
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
    const { value } = await accumulate(this.spec, gramVectorProduct(this.layerCollection, v.data));
    if (value instanceof tf.Tensor) {
      // Left on the device by the pass: checked in place, then handed over as it is.
      try {
        assertFiniteStatistic(float32Values(value), 'PMatImplicit.mv', 'the product M v');
      } catch (e) {
        value.dispose();
        throw e;
      }
      return PVector.adopt(this.layerCollection, value);
    }
    const out = new Float32Array(value);
    assertFiniteStatistic(out, 'PMatImplicit.mv', 'the product M v');
    return PVector.adopt(this.layerCollection, tf.tensor1d(out));
  }

  /** vᵀ F v = (1/n) Σ_i ‖J_i v‖², one pass over the data. */
  async vTMv(v: PVector): Promise<number> {
    checkAlive(!this.disposed, 'PMatImplicit');
    checkVector(v, this.layerCollection, 'PMatImplicit.vTMv');
    const { value } = await accumulate(this.spec, gramQuadraticForm(this.layerCollection, v.data));
    return finiteResult(value, 'PMatImplicit.vTMv');
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
    const { value } = await accumulate(this.spec, gramRowsProduct(this.layerCollection, pfmap.data));
    const values = Float32Array.from(value);
    assertFiniteStatistic(values, 'PMatImplicit.mmap', 'the product M Jᵀ');
    return new PFMapDense(this.layerCollection, tf.tensor3d(values, [o, n, d]));
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
    const [o, n] = pfmap.data.shape;
    const { value } = await accumulate(this.spec, gramRowsQuadraticForms(this.layerCollection, pfmap.data));
    const host = Float32Array.from(value);
    assertFiniteStatistic(host, 'PMatImplicit.mapTMmap', 'J M Jᵀ');
    const values = tf.tensor1d(host);
    try {
      return reduce(values, o, n, reduction);
    } finally {
      values.dispose();
    }
  }
}
