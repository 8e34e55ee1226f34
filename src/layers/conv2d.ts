/**
 * tf.layers.conv2d (channelsLast, any stride, dilation, 'same'/'valid' padding). The
 * per-example gradient is P_iᵀ G_i with P_i ∈ R^{S×K} the input patches (K = kh·kw·cin,
 * flattened in the kernel's own (kh, kw, cin) order) and G_i ∈ R^{S×cout}, S = H_out·W_out
 * (Grosse & Martens 2016, "A Kronecker-factored approximate Fisher matrix for convolution
 * layers", eq. 4: the weight gradient is a sum over spatial positions of patch ⊗ gradient).
 *
 * Patches come from a convolution with an identity kernel, which applies exactly the layer's
 * strides, padding and dilation (conv-geometry.ts). Dilated kernels are expanded with zeros so
 * that only dilation-1 convolutions are differentiated (tfjs has no gradient for dilated conv2d).
 */
import { tf } from '../tf.js';
import { appendOnes } from './linear-features.js';
import { linearLayerKind, parameterSpecs } from './linear-kind.js';
import { checkWeightCount, convGeometry, dilateKernel, imagePatches } from './conv-geometry.js';

export { dilateKernel } from './conv-geometry.js';

function kernelOf(layer: tf.layers.Layer): tf.Tensor4D {
  return layer.trainableWeights[0]!.read() as tf.Tensor4D;
}

export const conv2dKind = linearLayerKind({
  name: 'conv2d',
  classNames: ['Conv2D'],
  parameters(layer) {
    convGeometry(layer, 'Conv2D');
    checkWeightCount(layer, 'Conv2D', 1, 2, 'kernel and optional bias');
    return parameterSpecs(layer, ['kernel', 'bias']);
  },
  preactivation(layer, x, given) {
    const g = convGeometry(layer, 'Conv2D');
    return tf.tidy(() => {
      const kernel = dilateKernel((given?.[0] as tf.Tensor4D | undefined) ?? kernelOf(layer), g.dilation);
      const s = tf.conv2d(x as tf.Tensor4D, kernel, g.strides, g.padding);
      const bias = given ? given[1] : layer.trainableWeights[1]?.read();
      return bias ? tf.add(s, bias) : s;
    });
  },
  features(layer, x) {
    const [kh, kw] = kernelOf(layer).shape;
    const feats = imagePatches(x as tf.Tensor4D, [kh, kw], convGeometry(layer, 'Conv2D'));
    return layer.trainableWeights.length === 2 ? appendOnes(feats) : feats;
  },
  inputCotangent(layer, x, g) {
    const geometry = convGeometry(layer, 'Conv2D');
    return tf.tidy(() => {
      const kernel = dilateKernel(kernelOf(layer), geometry.dilation);
      const shape = [g.shape[0]!, ...x.shape.slice(1)] as [number, number, number, number];
      return tf.conv2dTranspose(g as tf.Tensor4D, kernel, shape, geometry.strides, geometry.padding);
    });
  },
  gradients(_layer, grad) {
    return grad.reshape([grad.shape[0]!, -1, grad.shape[3]!]) as tf.Tensor3D;
  },
});
