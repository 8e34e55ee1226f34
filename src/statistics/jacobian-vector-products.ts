/**
 * Products with the Jacobian J[o, i, :] = ∇θf̃_o(xᵢ) that never form it, each a statistic of one
 * pass over the data (PFMapImplicit's operations):
 *   (J v)_{o,i} = Σ_l ⟨∇θ_l f̃_o(xᵢ), v_l⟩   (the layers' `gradientDot`), kept per output and example;
 *   Jᵀ f        = Σ_o Σᵢ f_oi ∇θ f̃_o(xᵢ)    (the layers' `weightedGradientSum`), summed (not averaged).
 * tfjs has no forward-mode autodiff, so J v is assembled from the same (x, g) as the Fisher
 * statistics; no per-example gradient is formed where a layer has an identity.
 */
import { tf } from '../tf.js';
import { ShapeMismatchError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { directionalDerivatives, weightedGradientSum } from './contractions.js';
import { HostSum } from './host-sum.js';
import { outputRows } from './output-rows.js';
import type { Statistic } from './statistic.js';

/**
 * J v as a [O, n] tensor owned by the caller, for v [d] on the device (read during the pass,
 * not owned).
 *
 * @example
 * const { value: jv } = await accumulate(spec, jacobianVectorProducts(lc, v.data)); // [O, n]
 */
export function jacobianVectorProducts(lc: LayerCollection, v: tf.Tensor1D): Statistic<tf.Tensor2D> {
  return outputRows((g) => directionalDerivatives(lc, g, v)) as Statistic<tf.Tensor2D>;
}

/**
 * Jᵀ f as float64 [d], for f [O, n] on the device in loader order (read during the pass, not
 * owned); `what` names f in the errors. Throws ShapeMismatchError as soon as the pass shows
 * that f has another number of outputs, or fewer examples than the loader yields; the caller
 * checks, with the pass's n, that it has no more.
 *
 * @example
 * const { value, examples } = await accumulate(spec, jacobianTransposeProduct(lc, f.data, 'f')); // [d]
 */
export function jacobianTransposeProduct(lc: LayerCollection, f: tf.Tensor2D, what: string): Statistic<Float64Array> {
  const [outputs, examples] = f.shape;
  const sum = new HostSum(lc.numel());
  let offset = 0;
  let batchSize = 0;
  return {
    onOutputs: (g) => {
      batchSize = g.batchSize;
      if (g.firstOutput === 0 && g.numOutputs !== outputs) {
        throw new ShapeMismatchError(`${what} has shape [${outputs}, ${examples}] but [${g.numOutputs}, n] (outputs, examples) is expected`);
      }
      if (offset + g.batchSize > examples) throw new ShapeMismatchError(`${what} has ${examples} examples but the loader yields more`);
      // f[o, offset + i] for the stacked outputs, output-major: [count·B].
      const u = tf.slice(f, [g.firstOutput, offset], [g.count, g.batchSize]).reshape([g.count * g.batchSize]) as tf.Tensor1D;
      sum.add(weightedGradientSum(lc, g, u));
    },
    onBatchEnd: () => {
      sum.flush();
      offset += batchSize;
    },
    result: () => sum.total,
    dispose: () => sum.dispose(),
  };
}
