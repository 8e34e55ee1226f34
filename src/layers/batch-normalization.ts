/**
 * tf.layers.batchNormalization in inference mode — the mode the executor runs every layer in,
 * so the Fisher is that of the deployed network: with the moving statistics μ, σ² (not
 * trainable) and ε,
 *
 *   x̂ = (x − μ) / √(σ² + ε),   s = γ ∘ x̂ + β   (Ioffe & Szegedy 2015, Alg. 2, inference step),
 *
 * and per example ∂f̃/∂γ = Σ_{positions} g ∘ x̂, ∂f̃/∂β = Σ_{positions} g, summed over every axis
 * but the normalised one (scale-shift.ts). In training mode BatchNormalization couples the
 * examples of a batch through the batch statistics, so per-example gradients — and hence every
 * matrix of this library — are not defined there; the library never runs it in that mode.
 */
import { tf } from '../tf.js';
import { scaleShiftKind } from './scale-shift.js';
import { configValue, layerField } from './tfjs-internals.js';

/** The normalised axis as a non-negative index for an input of rank `rank`. */
function axisOf(layer: tf.layers.Layer, rank: number): number {
  const axis = configValue<number>(layer, 'axis') ?? -1;
  return axis < 0 ? axis + rank : axis;
}

/** The moving mean and variance, which tfjs keeps as the layer's non-trainable weights. */
function movingStatistics(layer: tf.layers.Layer): { mean: tf.Tensor; variance: tf.Tensor } {
  const read = (field: string) => layerField<{ read(): tf.Tensor }>(layer, field).read();
  return { mean: read('movingMean'), variance: read('movingVariance') };
}

/** x̂ = (x − μ) / √(σ² + ε) from the moving statistics, broadcast along the layer's axis. */
function normalise(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const shape = x.shape.map((d, k) => (k === axisOf(layer, x.rank) ? d : 1));
    const { mean, variance } = movingStatistics(layer);
    const epsilon = configValue<number>(layer, 'epsilon') ?? 1e-3;
    return tf.mul(tf.sub(x, mean.reshape(shape)), tf.rsqrt(tf.add(variance.reshape(shape), epsilon)));
  });
}

/**
 * The layer's inference-mode output from its own fields, whatever is trainable: γ ∘ x̂ + β with
 * γ = 1 or β = 0 when the layer has no scale or center. Used by the executor for layers that are
 * not collected: tfjs's own batchNorm cannot be differentiated (even with respect to x) when
 * the scale or the offset is missing.
 */
export function batchNormInference(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const shape = x.shape.map((d, k) => (k === axisOf(layer, x.rank) ? d : 1));
    const gamma = layerField<{ read(): tf.Tensor } | null | undefined>(layer, 'gamma');
    const beta = layerField<{ read(): tf.Tensor } | null | undefined>(layer, 'beta');
    let s = normalise(layer, x);
    if (gamma) s = tf.mul(s, gamma.read().reshape(shape));
    if (beta) s = tf.add(s, beta.read().reshape(shape));
    return s;
  });
}

export const batchNormalizationKind = scaleShiftKind({
  name: 'batch_normalization',
  className: 'BatchNormalization',
  broadcastShape(layer, xShape) {
    const axis = axisOf(layer, xShape.length);
    return xShape.map((d, k) => (k === axis ? d : 1));
  },
  normalise,
  inputScale(layer, xShape) {
    // x̂ = (x − μ) / √(σ² + ε): affine in x with slope 1/√(σ² + ε) per channel.
    return tf.tidy(() => {
      const shape = xShape.map((d, k) => (k === axisOf(layer, xShape.length) ? d : 1));
      const epsilon = configValue<number>(layer, 'epsilon') ?? 1e-3;
      return tf.rsqrt(tf.add(movingStatistics(layer).variance.reshape(shape), epsilon));
    });
  },
});
