/**
 * tf.layers.dense on inputs [B, ..., in] (any rank ≥ 2): s = x W + b with W [in, out] shared
 * over the middle axes, so the per-example gradient is Σ_s x̃_s g_sᵀ with x̃ = [x; 1].
 */
import { tf } from '../tf.js';
import { UnsupportedLayerError } from '../errors.js';
import { appendOnes } from './linear-features.js';
import { linearLayerKind, parameterSpecs } from './linear-kind.js';

function weights(layer: tf.layers.Layer, given?: readonly tf.Tensor[]): { kernel: tf.Tensor2D; bias?: tf.Tensor1D } {
  const [kernel, bias] = given ?? layer.trainableWeights.map((w) => w.read());
  return { kernel: kernel as tf.Tensor2D, bias: bias as tf.Tensor1D | undefined };
}

export const denseKind = linearLayerKind({
  name: 'dense',
  classNames: ['Dense'],
  parameters(layer) {
    const n = layer.trainableWeights.length;
    if (n !== 1 && n !== 2) {
      throw new UnsupportedLayerError(
        `layer '${layer.name}' (Dense) has ${n} trainable weights; expected kernel and optional bias. ` +
          `Make all of its weights trainable or none.`,
      );
    }
    return parameterSpecs(layer, ['kernel', 'bias']);
  },
  preactivation(layer, x, given) {
    return tf.tidy(() => {
      const { kernel, bias } = weights(layer, given);
      const inDim = kernel.shape[0];
      const lead = x.shape.slice(0, -1);
      const s = tf.matMul(x.reshape([-1, inDim]), kernel);
      const sb = bias ? tf.add(s, bias) : s;
      return sb.reshape([...lead, kernel.shape[1]]);
    });
  },
  features(layer, x) {
    const inDim = x.shape[x.shape.length - 1]!;
    const feats = x.reshape([x.shape[0]!, -1, inDim]) as tf.Tensor3D;
    return layer.trainableWeights.length === 2 ? appendOnes(feats) : feats;
  },
  inputCotangent(layer, x, g) {
    return tf.tidy(() => {
      const kernel = layer.trainableWeights[0]!.read() as tf.Tensor2D;
      const gx = tf.matMul(g.reshape([-1, kernel.shape[1]]), kernel, false, true);
      return gx.reshape([g.shape[0]!, ...x.shape.slice(1)]);
    });
  },
  gradients(_layer, g) {
    return g.reshape([g.shape[0]!, -1, g.shape[g.shape.length - 1]!]) as tf.Tensor3D;
  },
});
