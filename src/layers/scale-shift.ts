/**
 * Shared algebra of the normalisation layers: s = γ ∘ x̂ + β, where the normalised input x̂
 * does not depend on the parameters (BatchNormalization in inference mode uses its moving
 * statistics; LayerNormalization the statistics of the example itself), and γ, β are broadcast
 * over the "position" axes P. The probe sits on s, so g = ∂f̃/∂s and per example i
 * (KFAC-JAX's "scale and shift" block; Ioffe & Szegedy 2015, §3, for the gradients):
 *
 *   ∂f̃/∂γ = Σ_{p ∈ P} g_{ip} ∘ x̂_{ip},    ∂f̃/∂β = Σ_{p ∈ P} g_{ip},
 *
 * in the layout gamma then beta (the order tfjs creates them), each flattened row-major. With
 * `scale: false` (no γ) or `center: false` (no β) the missing block is left out. J·v needs no
 * per-example gradients: ⟨∂f̃/∂θ, v⟩ = Σ_p g_p ∘ (x̂_p ∘ v_γ + v_β).
 */
import { tf } from '../tf.js';
import { UnsupportedLayerError } from '../errors.js';
import type { LayerKind } from './layer-kind.js';
import { parameterSpecs } from './linear-kind.js';
import { concatRows, perExampleLayerKind, splitParameters } from './per-example-kind.js';
import { configValue } from './tfjs-internals.js';

export interface ScaleShiftSpec {
  name: string;
  className: string;
  /** x̂, same shape as x; independent of γ and β. */
  normalise(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor;
  /** The shape γ and β are reshaped to for broadcasting against x: 1 on the batch and position axes. */
  broadcastShape(layer: tf.layers.Layer, xShape: readonly number[]): number[];
  /**
   * Optional, for normalisations affine in x (x̂ = a ∘ x + b, a constant): a in the broadcast
   * shape, so that the backward pass's input cotangent is g ∘ γ ∘ a, by hand.
   */
  inputScale?(layer: tf.layers.Layer, xShape: readonly number[]): tf.Tensor;
}

/** Which of γ (scale) and β (center) the layer has as trainable weights, in tfjs order. */
function roles(layer: tf.layers.Layer, className: string): Array<'gamma' | 'beta'> {
  const out: Array<'gamma' | 'beta'> = [];
  if (configValue<boolean>(layer, 'scale') !== false) out.push('gamma');
  if (configValue<boolean>(layer, 'center') !== false) out.push('beta');
  if (layer.trainableWeights.length !== out.length) {
    throw new UnsupportedLayerError(
      `layer '${layer.name}' (${className}) has ${layer.trainableWeights.length} trainable weights; expected ${out.join(' and ')}`,
    );
  }
  return out;
}

/** Sums over every axis where the broadcast shape is 1 except the batch axis, [B, ...param]. */
function sumPositions(t: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const axes = shape.map((d, k) => (k > 0 && d === 1 && t.shape[k] !== 1 ? k : -1)).filter((k) => k >= 0);
  return axes.length ? tf.sum(t, axes, true) : t;
}

export function scaleShiftKind(spec: ScaleShiftSpec): LayerKind {
  const weightsOf = (layer: tf.layers.Layer, given?: readonly tf.Tensor[]) => {
    const r = roles(layer, spec.className);
    const ts = given ?? layer.trainableWeights.map((w) => w.read());
    return { gamma: r.includes('gamma') ? ts[0] : undefined, beta: r.includes('beta') ? ts[r.length - 1] : undefined };
  };
  const kind = perExampleLayerKind({
    name: spec.name,
    classNames: [spec.className],
    parameters(layer) {
      return parameterSpecs(layer, roles(layer, spec.className));
    },
    preactivation(layer, x, given) {
      return tf.tidy(() => {
        const { gamma, beta } = weightsOf(layer, given);
        const shape = spec.broadcastShape(layer, x.shape);
        let s = spec.normalise(layer, x);
        if (gamma) s = tf.mul(s, gamma.reshape(shape));
        if (beta) s = tf.add(s, beta.reshape(shape));
        return s;
      });
    },
    activate: (_layer, s) => s,
    perExampleGradients(layer, x, g) {
      return tf.tidy(() => {
        const r = roles(layer, spec.className);
        const shape = spec.broadcastShape(layer, x.shape);
        const parts = r.map((role) => sumPositions(role === 'gamma' ? tf.mul(g, spec.normalise(layer, x)) : g, shape));
        return concatRows(parts);
      });
    },
    gradientDot(layer, x, g, v) {
      return tf.tidy(() => {
        const shape = spec.broadcastShape(layer, x.shape);
        const r = roles(layer, spec.className);
        const vs = splitParameters(v, parameterSpecs(layer, r));
        let jv: tf.Tensor = tf.zerosLike(g);
        r.forEach((role, k) => {
          const vk = vs[k]!.reshape(shape);
          jv = tf.add(jv, role === 'gamma' ? tf.mul(spec.normalise(layer, x), vk) : tf.broadcastTo(vk, g.shape));
        });
        return tf.sum(tf.mul(g, jv).reshape([g.shape[0]!, -1]), 1) as tf.Tensor1D;
      });
    },
  });
  const inputScale = spec.inputScale;
  if (!inputScale) return kind;
  return {
    ...kind,
    inputCotangent(layer, x, g) {
      return tf.tidy(() => {
        const { gamma } = weightsOf(layer);
        const a = inputScale(layer, x.shape);
        return tf.mul(g, gamma ? tf.mul(a, gamma.reshape(a.shape)) : a);
      });
    },
  };
}
