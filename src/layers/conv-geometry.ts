/**
 * Shared geometry of the convolution kinds (Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D,
 * SeparableConv2D): configuration checks, dilated kernels written out as plain ones, and image
 * patches.
 *
 * Patches are the features of the per-example gradients: for a convolution with kernel
 * W [kh, kw, ci, co], s_p = Σ_{a,b,c} x[p·stride + (a,b)·dilation, c] W[a,b,c,:], so
 * ∂⟨g, s⟩/∂W = Σ_p P_pᵀ g_p with P_p the patch at output position p flattened in (a, b, c)
 * order — the row-major order of the kernel. A convolution with an identity kernel
 * [kh, kw, ci, kh·kw·ci] extracts exactly these patches with the layer's own strides,
 * padding and dilation (substrate.md §1.5: fastest for small kh·kw·ci on wasm).
 */
import { tf } from '../tf.js';
import { UnsupportedLayerError } from '../errors.js';
import { configValue, layerField } from './tfjs-internals.js';
import { imagePatchesSimd } from '../backend/kernels/simd/index.js';

export interface ConvGeometry {
  strides: [number, number];
  padding: 'same' | 'valid';
  dilation: [number, number];
}

/** A number or a 1- or 2-element array as a pair. */
export function pair(v: number | number[] | undefined, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  return [v[0] ?? fallback, v[1] ?? v[0] ?? fallback];
}

/**
 * The geometry of a 2-D convolution layer, refusing what the kinds do not implement
 * (channelsFirst data, padding other than 'same'/'valid') with the way out.
 */
export function convGeometry(layer: tf.layers.Layer, className: string): ConvGeometry {
  // Conv1D's getConfig deletes dataFormat: read the field itself.
  const dataFormat = layerField<string | undefined>(layer, 'dataFormat') ?? configValue<string | undefined>(layer, 'dataFormat');
  if (dataFormat !== undefined && dataFormat !== 'channelsLast') {
    throw new UnsupportedLayerError(
      `layer '${layer.name}' (${className}) uses dataFormat '${dataFormat}'; only 'channelsLast' is supported by its ` +
        `layer kind. Rebuild the layer with dataFormat: 'channelsLast', or let the generic (autodiff) kind handle it.`,
    );
  }
  const padding = configValue<string>(layer, 'padding');
  if (padding !== 'same' && padding !== 'valid') {
    throw new UnsupportedLayerError(`layer '${layer.name}' (${className}) uses padding '${padding}'; 'same' and 'valid' are supported.`);
  }
  return {
    strides: pair(configValue<number | number[]>(layer, 'strides'), 1),
    padding,
    dilation: pair(configValue<number | number[] | undefined>(layer, 'dilationRate'), 1),
  };
}

/** Checks that a layer has between `min` and `max` trainable weights (all or none trainable). */
export function checkWeightCount(layer: tf.layers.Layer, className: string, min: number, max: number, expected: string): void {
  const n = layer.trainableWeights.length;
  if (n < min || n > max) {
    throw new UnsupportedLayerError(
      `layer '${layer.name}' (${className}) has ${n} trainable weights; expected ${expected}. Make all of its weights trainable or none.`,
    );
  }
}

/**
 * Inserts (d − 1) zeros between kernel taps: a dilated kernel as a plain one, so that only
 * dilation-1 convolutions are differentiated (tfjs has no gradient for dilated conv2d).
 */
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

/**
 * Patches of x [B, H, W, ci] for a [kh, kw] kernel under `geometry`, as [B, H_out·W_out, kh·kw·ci]
 * in the kernel's (a, b, c) order. On wasm by the SIMD im2col (a copy, not on the gradient tape);
 * with `differentiable`, or elsewhere, by a convolution with an identity kernel.
 */
export function imagePatches(x: tf.Tensor4D, [kh, kw]: [number, number], geometry: ConvGeometry, differentiable = false): tf.Tensor3D {
  // The SIMD im2col is a copy outside tfjs's tape: only where nothing differentiates the patches.
  const bySimd = differentiable ? null : imagePatchesSimd(x, [kh, kw], geometry.strides, geometry.dilation, geometry.padding);
  if (bySimd) {
    const patches = bySimd.reshape([x.shape[0], -1, bySimd.shape[1]]) as tf.Tensor3D;
    bySimd.dispose();
    return patches;
  }
  return tf.tidy(() => {
    const ci = x.shape[3];
    const k = kh * kw * ci;
    const identity = dilateKernel(tf.eye(k).reshape([kh, kw, ci, k]) as tf.Tensor4D, geometry.dilation);
    const patches = tf.conv2d(x, identity, geometry.strides, geometry.padding);
    return patches.reshape([x.shape[0], -1, k]) as tf.Tensor3D;
  });
}
