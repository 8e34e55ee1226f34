/**
 * tf.layers.layerNormalization: per example, over the normalised axes A (default the last),
 *
 *   x̂ = (x − mean_A(x)) / √(var_A(x) + ε),   s = γ ∘ x̂ + β   (Ba, Kiros & Hinton 2016, eq. 4),
 *
 * with γ, β of the shape of x on A. x̂ depends on the example only, not on γ and β, so per
 * example ∂f̃/∂γ = Σ_{other axes} g ∘ x̂ and ∂f̃/∂β = Σ_{other axes} g (scale-shift.ts) — summed
 * over the positions of a sequence, for instance.
 */
import { tf } from '../tf.js';
import { scaleShiftKind } from './scale-shift.js';
import { configValue } from './tfjs-internals.js';

/** The normalised axes, non-negative, in the layer's own order (as tfjs reshapes γ, β). */
function axesOf(layer: tf.layers.Layer, rank: number): number[] {
  const axis = configValue<number | number[]>(layer, 'axis') ?? -1;
  return (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a));
}

export const layerNormalizationKind = scaleShiftKind({
  name: 'layer_normalization',
  className: 'LayerNormalization',
  broadcastShape(layer, xShape) {
    const axes = axesOf(layer, xShape.length);
    return xShape.map((d, k) => (axes.includes(k) ? d : 1));
  },
  normalise(layer, x) {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, axesOf(layer, x.rank), true);
      const epsilon = configValue<number>(layer, 'epsilon') ?? 1e-3;
      return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
    });
  },
});
