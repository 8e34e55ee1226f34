/**
 * PFMapImplicit: the Jacobian without storing it. It keeps only the definition (model, layer
 * collection, data) and makes one pass over the data per product, holding nothing O·n·d-sized.
 *
 * tfjs has no forward-mode autodiff, so J v is not a JVP of the model: it is assembled from the
 * same per-layer quantities as the Fisher representations. For every batch and every output o
 * the engine back-propagates f_o once and hands each collected layer its input x and the
 * gradient g_o at its pre-activation; then
 *   (J v)_{o,i} = Σ_l ⟨∇θ_l f_o(x_i), v_l⟩            (LayerKind.gradientDot, e.g. Dense:
 *                                                      Σ_s ((x̃_is V_l) ∘ g_ois)),
 *   Jᵀ f        = Σ_o Σ_i f_oi ∇θ f_o(x_i)            (LayerKind.weightedGradientSum:
 *                                                      per layer X̃ᵀ (G_o ∘ f_o)).
 * Cost of either product: one forward and O backward passes per batch (as a FIM pass), plus a
 * contraction per layer; no per-example gradient is formed where the layer has an identity.
 * The passes are the statistics of statistics/jacobian-vector-products.ts; this class keeps the
 * checks and the wrapping into FVector / PVector.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, ShapeMismatchError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import type { PassSpec } from '../../backend/pass.js';
import { accumulate } from '../../statistics/statistic.js';
import { jacobianTransposeProduct, jacobianVectorProducts } from '../../statistics/jacobian-vector-products.js';
import { PVector } from '../pvector.js';
import { FVector } from '../fvector.js';
import type { PFMapBase } from './pfmap.js';
import { describe } from '../arguments.js';
import { checkAlive, checkVector } from '../pspace/pmat.js';

export class PFMapImplicit implements PFMapBase {
  /** The name in messages: 'PFMapImplicit'. */
  static readonly representationName = 'PFMapImplicit';
  /** The parameters θ of J. */
  readonly layerCollection: LayerCollection;
  private readonly spec: PassSpec;
  private disposed = false;

  private constructor(spec: PassSpec) {
    this.spec = spec;
    this.layerCollection = spec.layerCollection;
  }

  /** Stores the definition; no pass over the data happens until a product is asked for. */
  static async compute(spec: PassSpec): Promise<PFMapImplicit> {
    return new PFMapImplicit(spec);
  }

  /** J v, [O, n]: one pass over the data. */
  async jvp(v: PVector): Promise<FVector> {
    checkAlive(!this.disposed, 'PFMapImplicit');
    checkVector(v, this.layerCollection, 'PFMapImplicit.jvp');
    const { value } = await accumulate(this.spec, jacobianVectorProducts(this.layerCollection, v.data));
    return FVector.adopt(value);
  }

  /** Jᵀ f = Σ_{o,i} f_oi ∇θ f_o(x_i), for f of shape [O, n] in loader order: one pass. */
  async vjp(f: FVector): Promise<PVector> {
    checkAlive(!this.disposed, 'PFMapImplicit');
    if (!(f instanceof FVector)) throw new InvalidArgumentError(`PFMapImplicit.vjp: 'f' must be an FVector, received ${describe(f)}`);
    const [outputs, examples] = f.data.shape;
    const seen = await accumulate(this.spec, jacobianTransposeProduct(this.layerCollection, f.data, 'the FVector given to PFMapImplicit.vjp'));
    if (seen.examples !== examples || seen.outputs !== outputs) {
      throw new ShapeMismatchError(
        `the FVector given to PFMapImplicit.vjp has shape [${outputs}, ${examples}] but the loader yields [${seen.outputs}, ${seen.examples}] (outputs, examples)`,
      );
    }
    return PVector.adopt(this.layerCollection, tf.tensor1d(new Float32Array(seen.value)));
  }

  /** Holds no tensors; afterwards every method throws DisposedError. */
  dispose(): void {
    this.disposed = true;
  }
}
