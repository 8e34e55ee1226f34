/**
 * tf.layers.depthwiseConv2d (channelsLast, any stride, 'same'/'valid'): depthwise kernel
 * K [kh, kw, ci, dm] then bias [ci·dm]. Per example ∂f̃/∂K[:, :, c, :] = P_cᵀ G_c over the output
 * positions (depthwise.ts) and ∂f̃/∂b = Σ_p g_p. tfjs-layers ignores the layer's dilationRate
 * (its call passes none), and so does this kind. With given weights (Hessians) the convolution
 * is formed from patches, which tfjs can differentiate twice.
 *
 * The layer is linear in (K, b), so J·v needs no per-example gradients:
 * ⟨∂f̃/∂θ, v⟩ = ⟨g, depthwiseConv2d(x, v_K) + v_b⟩. No Kronecker factors: each channel has its own
 * kh·kw×dm block (a grouped convolution), which A ⊗ G over the whole kernel does not describe.
 */
import { tf } from '../tf.js';
import { parameterSpecs } from './linear-kind.js';
import { type ConvGeometry, checkWeightCount, convGeometry } from './conv-geometry.js';
import { depthwiseByPatches, depthwiseKernelGradients } from './depthwise.js';
import { concatRows, perExampleLayerKind, splitParameters } from './per-example-kind.js';

function geometry(layer: tf.layers.Layer): ConvGeometry {
  return { ...convGeometry(layer, 'DepthwiseConv2D'), dilation: [1, 1] };
}

/** s = depthwiseConv2d(x; K) + b; through patches when differentiated twice (`twice`). */
function depthwise(layer: tf.layers.Layer, x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined, twice = false): tf.Tensor {
  const g = geometry(layer);
  return tf.tidy(() => {
    const s = twice
      ? depthwiseByPatches(x as tf.Tensor4D, kernel as tf.Tensor4D, g)
      : tf.depthwiseConv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, g.strides, g.padding);
    return bias ? tf.add(s, bias) : s;
  });
}

function rowsOf(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor, perExample: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const shape = layer.trainableWeights[0]!.shape as number[];
    const kernel = depthwiseKernelGradients(x as tf.Tensor4D, g, shape, geometry(layer), perExample);
    if (layer.trainableWeights.length === 1) return kernel;
    const bias = perExample ? tf.sum(g, [1, 2]) : tf.sum(g, [0, 1, 2]).reshape([1, -1]);
    return concatRows([kernel, bias]);
  });
}

export const depthwiseConv2dKind = perExampleLayerKind({
  name: 'depthwise_conv2d',
  classNames: ['DepthwiseConv2D'],
  parameters(layer) {
    geometry(layer);
    checkWeightCount(layer, 'DepthwiseConv2D', 1, 2, 'depthwise kernel and optional bias');
    return parameterSpecs(layer, ['depthwise_kernel', 'bias']);
  },
  preactivation(layer, x, given) {
    const [kernel, bias] = given ?? layer.trainableWeights.map((w) => w.read());
    return depthwise(layer, x, kernel!, bias, given !== undefined);
  },
  perExampleGradients: (layer, x, g) => rowsOf(layer, x, g, true),
  gradientDot(layer, x, g, v) {
    return tf.tidy(() => {
      const [vk, vb] = splitParameters(v, parameterSpecs(layer, ['k', 'b']));
      const jv = depthwise(layer, x, vk!, vb);
      return tf.sum(tf.mul(g, jv).reshape([g.shape[0]!, -1]), 1) as tf.Tensor1D;
    });
  },
  weightedGradientSum(layer, x, g, u) {
    return tf.tidy(() => rowsOf(layer, x, tf.mul(g, u.reshape([-1, 1, 1, 1])), false).reshape([-1]) as tf.Tensor1D);
  },
});
