/**
 * tf.layers.conv2d (channelsLast, any stride, dilation, 'same'/'valid' padding). The
 * per-example gradient is P_iᵀ G_i with P_i ∈ R^{S×K} the input patches (K = kh·kw·cin,
 * flattened in the kernel's own (kh, kw, cin) order) and G_i ∈ R^{S×cout}, S = H_out·W_out.
 *
 * Patches come from a convolution with an identity kernel, which applies exactly the layer's
 * strides, padding and dilation. Dilated kernels are expanded with zeros so that only
 * dilation-1 convolutions are differentiated (tfjs has no gradient for dilated conv2d).
 */
import { tf } from '../tf.js';
import { UnsupportedLayerError } from '../errors.js';
import { appendOnes } from './linear-features.js';
import { linearLayerKind, parameterSpecs } from './linear-kind.js';
import { configValue } from './tfjs-internals.js';

interface ConvGeometry {
  strides: [number, number];
  padding: 'same' | 'valid';
  dilation: [number, number];
}

function pair(v: number | number[] | undefined, fallback: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  return [v[0] ?? fallback, v[1] ?? v[0] ?? fallback];
}

function geometry(layer: tf.layers.Layer): ConvGeometry {
  const dataFormat = configValue<string | undefined>(layer, 'dataFormat');
  if (dataFormat !== undefined && dataFormat !== 'channelsLast') {
    throw new UnsupportedLayerError(
      `layer '${layer.name}' (Conv2D) uses dataFormat '${dataFormat}'; only 'channelsLast' is supported. ` +
        `Rebuild the layer with dataFormat: 'channelsLast' or exclude it with ignoreUnsupported.`,
    );
  }
  const padding = configValue<string>(layer, 'padding');
  if (padding !== 'same' && padding !== 'valid') {
    throw new UnsupportedLayerError(`layer '${layer.name}' (Conv2D) uses padding '${padding}'; 'same' and 'valid' are supported.`);
  }
  return {
    strides: pair(configValue<number | number[]>(layer, 'strides'), 1),
    padding,
    dilation: pair(configValue<number | number[]>(layer, 'dilationRate'), 1),
  };
}

/** Inserts (d − 1) zeros between kernel taps: a dilated kernel as a plain one. */
export function dilateKernel(kernel: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  if (dh === 1 && dw === 1) return kernel;
  return tf.tidy(() => {
    const [kh, kw, ci, co] = kernel.shape;
    const spread = tf.pad(kernel.reshape([kh, 1, kw, 1, ci, co]), [
      [0, 0],
      [0, dh - 1],
      [0, 0],
      [0, dw - 1],
      [0, 0],
      [0, 0],
    ]);
    const full = spread.reshape([kh * dh, kw * dw, ci, co]);
    return tf.slice(full, [0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, ci, co]) as tf.Tensor4D;
  });
}

function kernelOf(layer: tf.layers.Layer): tf.Tensor4D {
  return layer.trainableWeights[0]!.read() as tf.Tensor4D;
}

export const conv2dKind = linearLayerKind({
  name: 'conv2d',
  classNames: ['Conv2D'],
  parameters(layer) {
    geometry(layer);
    const n = layer.trainableWeights.length;
    if (n !== 1 && n !== 2) {
      throw new UnsupportedLayerError(`layer '${layer.name}' (Conv2D) has ${n} trainable weights; expected kernel and optional bias.`);
    }
    return parameterSpecs(layer, ['kernel', 'bias']);
  },
  preactivation(layer, x, given) {
    const g = geometry(layer);
    return tf.tidy(() => {
      const kernel = dilateKernel((given?.[0] as tf.Tensor4D | undefined) ?? kernelOf(layer), g.dilation);
      const s = tf.conv2d(x as tf.Tensor4D, kernel, g.strides, g.padding);
      const bias = given ? given[1] : layer.trainableWeights[1]?.read();
      return bias ? tf.add(s, bias) : s;
    });
  },
  features(layer, x) {
    const g = geometry(layer);
    const [kh, kw, ci] = kernelOf(layer).shape;
    const k = kh * kw * ci;
    const identity = dilateKernel(tf.eye(k).reshape([kh, kw, ci, k]) as tf.Tensor4D, g.dilation);
    const patches = tf.conv2d(x as tf.Tensor4D, identity, g.strides, g.padding);
    const feats = patches.reshape([x.shape[0]!, -1, k]) as tf.Tensor3D;
    return layer.trainableWeights.length === 2 ? appendOnes(feats) : feats;
  },
  gradients(_layer, grad) {
    return grad.reshape([grad.shape[0]!, -1, grad.shape[3]!]) as tf.Tensor3D;
  },
});
