/**
 * The contractions of one batch's (x, g) over a whole layer collection that several statistics
 * share: the squared gradients summed over examples and outputs, the per-example Jacobian rows
 * (one layer or all), their Gram matrix, the directional derivatives ⟨∇θf̃_o(xᵢ), v⟩ and the
 * weighted sums Σ u ∇θf̃ (the last two without per-example gradients). Each calls the layer kinds' rules with the k
 * stacked outputs of the batch (k = 1 the plain case).
 */
import { tf } from '../tf.js';
import { symmetricRankUpdate } from '../backend/kernels/simd/index.js';
import type { LayerCollection, LayerEntry } from '../layers/layer-collection.js';
import type { OutputGradients } from '../backend/pass.js';
import { tileRows } from '../backend/stacking.js';

/** Σ_o Σ_i (∇θ f̃_o(x_i))² over the stacked outputs on the whole collection, [d]. */
export function squaredGradientSum(lc: LayerCollection, g: OutputGradients): tf.Tensor1D {
  return tf.tidy(() =>
    tf.concat(
      lc.layers.map((e) => {
        const x = g.inputs.get(e.id)!;
        const grads = g.grads.get(e.id)!;
        return e.kind.squaredGradientSum(e.layer, x, grads, g.count);
      }),
    ),
  ) as tf.Tensor1D;
}

/**
 * Row (o − firstOutput)·B + i = ∇θ f̃_o(x_i) restricted to one layer, shape [count·B, numel]:
 * stacked outputs are one output of a count-times larger batch (the inputs repeated).
 */
export function layerJacobian(e: LayerEntry, g: OutputGradients): tf.Tensor2D {
  return tf.tidy(() => e.kind.perExampleGradients(e.layer, tileRows(g.inputs.get(e.id)!, g.count), g.grads.get(e.id)!));
}

/** Row (o − firstOutput)·B + i = ∇θ f̃_o(x_i) on the whole collection, shape [count·B, d]. */
export function batchJacobian(lc: LayerCollection, g: OutputGradients): tf.Tensor2D {
  return tf.tidy(() => tf.concat(lc.layers.map((e) => layerJacobian(e, g)), 1) as tf.Tensor2D);
}

/**
 * Per-example ⟨∇θf̃_o(xᵢ), v⟩ for the stacked outputs of one batch, [count·B] (output-major),
 * summed over the layers' `gradientDot` (Dense: Σ_s ((x̃_is V_l) ∘ g_ois)).
 */
export function directionalDerivatives(lc: LayerCollection, g: OutputGradients, v: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() =>
    lc.layers.map((e) => e.kind.gradientDot(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, tf.slice(v, [e.offset], [e.numel]), g.count)).reduce((a, b) => tf.add(a, b)),
  );
}

/**
 * Σ_o Σᵢ u_oi ∇θ f̃_o(xᵢ) over the whole collection for the stacked outputs (u [count·B],
 * output-major), [d]: the layers' `weightedGradientSum` (Dense: X̃ᵀ (G_o ∘ u_o)).
 */
export function weightedGradientSum(lc: LayerCollection, g: OutputGradients, u: tf.Tensor1D): tf.Tensor1D {
  return tf.concat(lc.layers.map((e) => e.kind.weightedGradientSum(e.layer, g.inputs.get(e.id)!, g.grads.get(e.id)!, u, g.count))) as tf.Tensor1D;
}

/** AᵀA, exactly symmetric: the SIMD rank-k update on wasm (half the products), tf.matMul elsewhere. */
export function gram(a: tf.Tensor2D): tf.Tensor2D {
  return symmetricRankUpdate(a);
}
