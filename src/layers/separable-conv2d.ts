/**
 * tf.layers.separableConv2d (channelsLast): a depthwise convolution D [kh, kw, ci, dm] (with the
 * layer's strides, padding and dilation) followed by a pointwise 1×1 convolution
 * W [1, 1, ci·dm, co] and the bias b [co] (Chollet 2017, Xception, §3):
 *
 *   h = depthwise(x; D),   s = h W + b.
 *
 * Two parameter blocks in one layer: the probe sits on s only. Since s is linear in h, the
 * gradient at h is exact without autodiff, g_h = g Wᵀ, and per example
 *
 *   ∂f̃/∂D = depthwise gradient of (x, g_h)  (depthwise.ts),
 *   ∂f̃/∂W = Σ_p h_pᵀ g_p,   ∂f̃/∂b = Σ_p g_p,
 *
 * in the layout depthwise kernel, pointwise kernel, bias (tfjs order). s is bilinear in (D, W):
 * J·v = ⟨g, depthwise(x; v_D) W + h v_W + v_b⟩. No Kronecker factors (two coupled blocks).
 */
import { tf } from '../tf.js';
import { parameterSpecs } from './linear-kind.js';
import { type ConvGeometry, checkWeightCount, convGeometry, dilateKernel } from './conv-geometry.js';
import { depthwiseByPatches, depthwiseKernelGradients } from './depthwise.js';
import { concatRows, perExampleLayerKind, splitParameters } from './per-example-kind.js';

const ROLES = ['depthwise_kernel', 'pointwise_kernel', 'bias'];

function geometry(layer: tf.layers.Layer): ConvGeometry {
  return convGeometry(layer, 'SeparableConv2D');
}

/**
 * h = depthwise(x; D), the input of the pointwise convolution, [B, Ho, Wo, ci·dm]; through
 * patches when it is to be differentiated twice (`twice`: tfjs's depthwise backprops have no
 * gradients).
 */
function depthwiseOutput(layer: tf.layers.Layer, x: tf.Tensor, depthwiseKernel: tf.Tensor, twice = false): tf.Tensor4D {
  const g = geometry(layer);
  if (twice) return depthwiseByPatches(x as tf.Tensor4D, depthwiseKernel as tf.Tensor4D, g);
  // A dilated kernel written out as a plain one: tfjs has no gradient for dilated depthwise convs.
  return tf.tidy(() => tf.depthwiseConv2d(x as tf.Tensor4D, dilateKernel(depthwiseKernel as tf.Tensor4D, g.dilation), g.strides, g.padding));
}

/** h W (+ b): the pointwise convolution as a product over the last axis. */
function pointwise(h: tf.Tensor4D, pointwiseKernel: tf.Tensor, bias: tf.Tensor | undefined): tf.Tensor {
  return tf.tidy(() => {
    const [b, ho, wo, k] = h.shape;
    const w = pointwiseKernel.reshape([k, -1]);
    const s = tf.matMul(h.reshape([-1, k]), w).reshape([b, ho, wo, w.shape[1]!]);
    return bias ? tf.add(s, bias) : s;
  });
}

export const separableConv2dKind = perExampleLayerKind({
  name: 'separable_conv2d',
  classNames: ['SeparableConv2D'],
  parameters(layer) {
    geometry(layer);
    checkWeightCount(layer, 'SeparableConv2D', 2, 3, 'depthwise kernel, pointwise kernel and optional bias');
    return parameterSpecs(layer, ROLES);
  },
  preactivation(layer, x, given) {
    const [d, w, b] = given ?? layer.trainableWeights.map((v) => v.read());
    return tf.tidy(() => pointwise(depthwiseOutput(layer, x, d!, given !== undefined), w!, b));
  },
  perExampleGradients(layer, x, g) {
    return tf.tidy(() => {
      const [d, w] = layer.trainableWeights.map((v) => v.read());
      const h = depthwiseOutput(layer, x, d!);
      const [bs, ho, wo, k] = h.shape;
      const co = g.shape[3]!;
      const gh = tf.matMul(g.reshape([-1, co]), w!.reshape([k, co]), false, true).reshape([bs, ho, wo, k]);
      const parts: tf.Tensor[] = [
        depthwiseKernelGradients(x as tf.Tensor4D, gh, d!.shape, geometry(layer), true),
        tf.matMul(h.reshape([bs, ho * wo, k]), g.reshape([bs, ho * wo, co]), true, false),
      ];
      if (layer.trainableWeights.length === 3) parts.push(tf.sum(g, [1, 2]));
      return concatRows(parts);
    });
  },
  gradientDot(layer, x, g, v) {
    return tf.tidy(() => {
      const [d, w] = layer.trainableWeights.map((t) => t.read());
      const [vd, vw, vb] = splitParameters(v, parameterSpecs(layer, ROLES));
      const jv = tf.add(pointwise(depthwiseOutput(layer, x, vd!), w!, vb), pointwise(depthwiseOutput(layer, x, d!), vw!, undefined));
      return tf.sum(tf.mul(g, jv).reshape([g.shape[0]!, -1]), 1) as tf.Tensor1D;
    });
  },
});
