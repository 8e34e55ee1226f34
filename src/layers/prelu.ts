/**
 * tf.layers.prelu: s = max(x, 0) + α ∘ min(x, 0) (He et al. 2015, "Delving deep into
 * rectifiers", eq. 1), α of the input's shape without the batch axis, with size 1 on the
 * `sharedAxes`. The layer is linear in α, so the probe sits on its output s (the activation is
 * the identity) and per example
 *
 *   ∂f̃/∂α = Σ_{shared axes} g ∘ min(x, 0)   (He et al. 2015, eq. 2),
 *
 * in α's row-major layout; J·v = Σ g ∘ min(x, 0) ∘ v_α.
 */
import { tf } from '../tf.js';
import { parameterSpecs } from './linear-kind.js';
import { checkWeightCount } from './conv-geometry.js';
import { concatRows, perExampleLayerKind } from './per-example-kind.js';

function alphaOf(layer: tf.layers.Layer, given?: readonly tf.Tensor[]): tf.Tensor {
  return given?.[0] ?? layer.trainableWeights[0]!.read();
}

/** Σ over the shared axes (where α has size 1 and x does not), keeping them: [B, ...α shape]. */
function sumShared(t: tf.Tensor, alphaShape: readonly number[]): tf.Tensor {
  const axes = alphaShape.map((d, k) => (d === 1 && t.shape[k + 1] !== 1 ? k + 1 : -1)).filter((k) => k > 0);
  return axes.length ? tf.sum(t, axes, true) : t;
}

export const preluKind = perExampleLayerKind({
  name: 'prelu',
  classNames: ['PReLU'],
  parameters(layer) {
    checkWeightCount(layer, 'PReLU', 1, 1, 'alpha');
    return parameterSpecs(layer, ['alpha']);
  },
  preactivation(layer, x, given) {
    return tf.prelu(x, alphaOf(layer, given));
  },
  activate: (_layer, s) => s,
  perExampleGradients(layer, x, g) {
    return tf.tidy(() => concatRows([sumShared(tf.mul(g, tf.minimum(x, 0)), alphaOf(layer).shape)]));
  },
  gradientDot(layer, x, g, v) {
    return tf.tidy(() => {
      const alpha = alphaOf(layer);
      const jv = tf.mul(tf.minimum(x, 0), v.reshape(alpha.shape));
      return tf.sum(tf.mul(g, jv).reshape([g.shape[0]!, -1]), 1) as tf.Tensor1D;
    });
  },
});
