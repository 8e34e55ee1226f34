/**
 * PMatHessianImplicit: the Hessian H = ∇²θ (1/n) Σ_i ℓ_i without storing it. It keeps the
 * definition (model, layer collection, data, loss) and makes one pass over the data per
 * product, each batch contributing a Hessian-vector product (statistics/hessian-vector-mean.ts):
 *   H v  = (1/n) Σ_batches ∇θ⟨∇θ L_batch, v⟩,   vᵀHv = ⟨v, H v⟩,   (H + λI)⁻¹ v by conjugate gradient.
 * Every method returns a Promise. H need not be positive definite: CG stops with
 * NotPositiveDefiniteError on a direction of non-positive curvature (use a larger regul).
 */
import { tf } from '../../tf.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';
import { hessianVectorMean } from '../../statistics/hessian-vector-mean.js';
import type { PMatBase } from './pmat.js';
import { type CGOptions, type CGResult, conjugateGradient } from '../../linalg/conjugate-gradient.js';
import { PFMapDense } from '../map/dense.js';
import { checkPFMap } from '../map/pmat-algebra.js';
import type { HessianSpec } from '../../metrics/hessian-vector-product.js';
import { checkAlive, checkVector } from './pmat.js';

export class PMatHessianImplicit implements PMatBase {
  /** The name in saved files and messages: 'PMatHessianImplicit'. */
  static readonly representationName = 'PMatHessianImplicit';
  readonly layerCollection: LayerCollection;
  private readonly spec: HessianSpec;
  private disposed = false;

  /** Stores the definition; no pass over the data happens until a method is called. */
  constructor(spec: HessianSpec) {
    this.spec = spec;
    this.layerCollection = spec.layerCollection;
  }

  /** H v: one pass over the data (batch products added in float64). */
  async mv(v: PVector): Promise<PVector> {
    checkAlive(!this.disposed, 'PMatHessianImplicit');
    checkVector(v, this.layerCollection, 'PMatHessianImplicit.mv');
    return PVector.adopt(this.layerCollection, tf.tensor1d(Float32Array.from(await hessianVectorMean(this.spec, v.data))));
  }

  /** vᵀ H v (one pass). */
  async vTMv(v: PVector): Promise<number> {
    checkAlive(!this.disposed, 'PMatHessianImplicit');
    const hv = await this.mv(v);
    try {
      return hv.dot(v);
    } finally {
      hv.dispose();
    }
  }

  /** (H + regul·I)⁻¹ v by conjugate gradient (one pass over the data per iteration). */
  async solve(v: PVector, options: CGOptions = {}): Promise<PVector> {
    return (await this.solveWithInfo(v, options)).x;
  }

  /** As `solve`, also reporting iterations, final residual and convergence. */
  async solveWithInfo(v: PVector, options: CGOptions = {}): Promise<CGResult> {
    checkAlive(!this.disposed, 'PMatHessianImplicit');
    checkVector(v, this.layerCollection, 'PMatHessianImplicit.solve');
    return conjugateGradient((p) => this.mv(p), v, options);
  }

  /**
   * Rows H J_{oi}ᵀ for every row of a PFMapDense (H symmetric), as a PFMapDense: O·n
   * Hessian-vector products, one pass over the data each.
   */
  async mmap(pfmap: PFMapDense): Promise<PFMapDense> {
    checkAlive(!this.disposed, 'PMatHessianImplicit');
    checkPFMap(pfmap, this.layerCollection, 'PMatHessianImplicit.mmap');
    const [o, n, d] = pfmap.data.shape;
    const rows: tf.Tensor1D[] = [];
    try {
      for (let r = 0; r < o * n; r++) {
        const row = PVector.adopt(this.layerCollection, tf.tidy(() => tf.slice(pfmap.data.reshape([o * n, d]), [r, 0], [1, d]).reshape([d]) as tf.Tensor1D));
        try {
          const hr = await this.mv(row);
          rows.push(hr.toFlat());
          hr.dispose();
        } finally {
          row.dispose();
        }
      }
      return new PFMapDense(this.layerCollection, tf.tidy(() => tf.stack(rows).reshape([o, n, d]) as tf.Tensor3D));
    } finally {
      tf.dispose(rows);
    }
  }

  /** Holds no tensors; afterwards every method throws DisposedError. */
  dispose(): void {
    this.disposed = true;
  }
}
