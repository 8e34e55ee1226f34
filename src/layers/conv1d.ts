/**
 * tf.layers.conv1d (channelsLast, any stride and dilation, 'same'/'valid' padding; tfjs itself
 * does not implement 'causal'). Kernel [k, cin, cout] then bias [cout].
 *
 * A 1-D convolution is a 2-D one over a height-1 image: x [B, L, cin] → [B, 1, L, cin], kernel
 * → [1, k, cin, cout] (which is also how tfjs computes conv1d). The per-example gradient is
 * P_iᵀ G_i with P_i ∈ R^{S×(k·cin)} the patches at the S = L_out output positions, flattened in
 * the kernel's (k, cin) order, with a 1 appended for the bias — so the kernel-then-bias layout of
 * CONVENTIONS.md is the row-major [k·cin + 1, cout] matrix and KFAC's A is over the patches and G
 * over the output channels, the weights being shared over the positions ('expand': Grosse &
 * Martens 2016, eq. 4; Eschenhagen et al. 2023, §3).
 */
import { tf } from '../tf.js';
import { appendOnes } from './linear-features.js';
import { linearLayerKind, parameterSpecs } from './linear-kind.js';
import { type ConvGeometry, checkWeightCount, convGeometry, dilateKernel, imagePatches } from './conv-geometry.js';

/** The layer's geometry on the height-1 image: stride and dilation act on the width only. */
function geometry(layer: tf.layers.Layer): ConvGeometry {
  const g = convGeometry(layer, 'Conv1D');
  return { padding: g.padding, strides: [1, g.strides[0]], dilation: [1, g.dilation[0]] };
}

function kernelOf(layer: tf.layers.Layer): tf.Tensor3D {
  return layer.trainableWeights[0]!.read() as tf.Tensor3D;
}

const asImage = (x: tf.Tensor): tf.Tensor4D => x.reshape([x.shape[0]!, 1, x.shape[1]!, x.shape[2]!]);

export const conv1dKind = linearLayerKind({
  name: 'conv1d',
  classNames: ['Conv1D'],
  parameters(layer) {
    geometry(layer);
    checkWeightCount(layer, 'Conv1D', 1, 2, 'kernel and optional bias');
    return parameterSpecs(layer, ['kernel', 'bias']);
  },
  preactivation(layer, x, given) {
    const g = geometry(layer);
    return tf.tidy(() => {
      const k = (given?.[0] as tf.Tensor3D | undefined) ?? kernelOf(layer);
      const kernel = dilateKernel(k.reshape([1, ...k.shape]) as tf.Tensor4D, g.dilation);
      const s = tf.conv2d(asImage(x), kernel, g.strides, g.padding);
      const s3 = s.reshape([s.shape[0], s.shape[2], s.shape[3]]);
      const bias = given ? given[1] : layer.trainableWeights[1]?.read();
      return bias ? tf.add(s3, bias) : s3;
    });
  },
  features(layer, x) {
    const feats = imagePatches(asImage(x), [1, kernelOf(layer).shape[0]], geometry(layer));
    return layer.trainableWeights.length === 2 ? appendOnes(feats) : feats;
  },
  gradients(_layer, grad) {
    return grad as tf.Tensor3D;
  },
});
