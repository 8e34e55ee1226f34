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
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, ShapeMismatchError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { type OutputGradients, type PassSpec, passOverData } from '../../backend/pass.js';
import { HostSum } from '../../statistics/host-sum.js';
import { PVector } from '../pvector.js';
import { FVector, assertFVectorShape } from '../fvector.js';
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
    const perOutput: tf.Tensor2D[] = [];
    const perBatch: tf.Tensor2D[] = [];
    try {
      await passOverData(this.spec, {
        onOutputs: (g) => void perOutput.push(tf.keep(this.directional(g, v.data).reshape([g.count, g.batchSize]) as tf.Tensor2D)),
        onBatchEnd: () => {
          perBatch.push(perOutput.length === 1 ? perOutput.pop()! : (tf.concat(perOutput, 0) as tf.Tensor2D));
          tf.dispose(perOutput.splice(0));
        },
      });
      return FVector.adopt(perBatch.length === 1 ? perBatch.pop()! : (tf.concat(perBatch, 1) as tf.Tensor2D));
    } finally {
      tf.dispose(perOutput);
      tf.dispose(perBatch);
    }
  }

  /** Jᵀ f = Σ_{o,i} f_oi ∇θ f_o(x_i), for f of shape [O, n] in loader order: one pass. */
  async vjp(f: FVector): Promise<PVector> {
    checkAlive(!this.disposed, 'PFMapImplicit');
    if (!(f instanceof FVector)) throw new InvalidArgumentError(`PFMapImplicit.vjp: 'f' must be an FVector, received ${describe(f)}`);
    const [outputs, examples] = f.data.shape;
    const lc = this.layerCollection;
    const sum = new HostSum(lc.numel());
    let offset = 0;
    let batchSize = 0;
    try {
      const seen = await passOverData(this.spec, {
        onOutputs: (g) => {
          batchSize = g.batchSize;
          if (g.firstOutput === 0) assertFVectorShape(f, g.numOutputs, undefined, 'the FVector given to PFMapImplicit.vjp');
          if (offset + g.batchSize > examples) {
            throw new ShapeMismatchError(`the FVector given to PFMapImplicit.vjp has ${examples} examples but the loader yields more`);
          }
          // f[o, offset + i] for the stacked outputs, output-major: [count·B].
          const u = tf.slice(f.data, [g.firstOutput, offset], [g.count, g.batchSize]).reshape([g.count * g.batchSize]) as tf.Tensor1D;
          sum.add(tf.concat(lc.layers.map((e) => e.kind.weightedGradientSum(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, u, g.count))));
        },
        onBatchEnd: () => {
          sum.flush();
          offset += batchSize;
        },
      });
      if (seen.examples !== examples || seen.outputs !== outputs) {
        throw new ShapeMismatchError(
          `the FVector given to PFMapImplicit.vjp has shape [${outputs}, ${examples}] but the loader yields [${seen.outputs}, ${seen.examples}] (outputs, examples)`,
        );
      }
      return PVector.adopt(lc, tf.tensor1d(new Float32Array(sum.total)));
    } finally {
      sum.dispose();
    }
  }

  /** Per-example ⟨∇θ f_o(x_i), v⟩ for the stacked outputs of one batch, [count·B] (output-major). */
  private directional(g: OutputGradients, v: tf.Tensor1D): tf.Tensor1D {
    return tf.tidy(() =>
      this.layerCollection.layers
        .map((e) => e.kind.gradientDot(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, tf.slice(v, [e.offset], [e.numel]), g.count))
        .reduce((a, b) => tf.add(a, b)),
    );
  }

  /** Holds no tensors; afterwards every method throws DisposedError. */
  dispose(): void {
    this.disposed = true;
  }
}
