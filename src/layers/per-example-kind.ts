/**
 * Builds a LayerKind for layers whose per-example gradients are cheap to form but have no
 * X̃ᵀG structure (normalisation layers, PReLU, depthwise convolutions, the generic autodiff
 * kind): every contraction is derived from the per-example gradients J [B, numel], unless the
 * kind supplies a cheaper one (e.g. J·v straight from the layer's linearity in θ).
 *
 *   squaredGradientSum = Σ_i J_i∘J_i,  gradientDot = J v,  weightedGradientSum = uᵀJ,
 *   gradientGram = J_a J_bᵀ.
 *
 * k stacked outputs are one output of a k-times larger batch (stacked-fallback.ts).
 */
import { tf } from '../tf.js';
import type { LayerKind, ParameterSpec } from './layer-kind.js';
import { layerActivation } from './tfjs-internals.js';
import { tiledContractions } from './stacked-fallback.js';

export interface PerExampleKindSpec {
  name: string;
  classNames: readonly string[];
  parameters(layer: tf.layers.Layer): ParameterSpec[];
  preactivation(layer: tf.layers.Layer, x: tf.Tensor, weights?: readonly tf.Tensor[]): tf.Tensor;
  /** act(s); defaults to the layer's fused activation if it has one, else the identity. */
  activate?(layer: tf.layers.Layer, s: tf.Tensor): tf.Tensor;
  /** Rows ∇θ f̃(x_i), [B, numel], in the parameter layout. */
  perExampleGradients(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor): tf.Tensor2D;
  /** Optional cheaper ⟨∇θ f̃(x_i), v⟩, [B]. */
  gradientDot?(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor, v: tf.Tensor1D): tf.Tensor1D;
  /** Optional cheaper Σ_i u_i ∇θ f̃(x_i), [numel]. */
  weightedGradientSum?(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor, u: tf.Tensor1D): tf.Tensor1D;
}

export function perExampleLayerKind(spec: PerExampleKindSpec): LayerKind {
  const rows = (layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor) => spec.perExampleGradients(layer, x, g);
  return {
    name: spec.name,
    classNames: spec.classNames,
    parameters: spec.parameters,
    preactivation: spec.preactivation,
    activate:
      spec.activate ??
      ((layer, s) => {
        const act = layerActivation(layer);
        return act ? act.apply(s) : s;
      }),
    perExampleGradients: rows,
    ...tiledContractions({
      squaredGradientSum: (layer, x, g) => tf.tidy(() => tf.sum(tf.square(rows(layer, x, g)), 0) as tf.Tensor1D),
      gradientDot:
        spec.gradientDot ?? ((layer, x, g, v) => tf.tidy(() => tf.matMul(rows(layer, x, g), v.reshape([-1, 1])).reshape([-1]) as tf.Tensor1D)),
      weightedGradientSum:
        spec.weightedGradientSum ??
        ((layer, x, g, u) => tf.tidy(() => tf.matMul(u.reshape([1, -1]), rows(layer, x, g)).reshape([-1]) as tf.Tensor1D)),
    }),
    gradientGram: (layer, xa, ga, xb, gb) => tf.tidy(() => tf.matMul(rows(layer, xa, ga), rows(layer, xb, gb), false, true) as tf.Tensor2D),
  };
}

/** Flattens each example's gradient tensors [B, ...shape] and concatenates them, [B, numel]. */
export function concatRows(parts: readonly tf.Tensor[]): tf.Tensor2D {
  return tf.tidy(() => {
    const flat = parts.map((p) => p.reshape([p.shape[0]!, -1]));
    return (flat.length === 1 ? flat[0]! : tf.concat(flat, 1)) as tf.Tensor2D;
  });
}

/** Splits a flat [numel] vector into tensors of the given parameter shapes. */
export function splitParameters(v: tf.Tensor1D, parameters: readonly ParameterSpec[]): tf.Tensor[] {
  let at = 0;
  return parameters.map((p) => {
    const part = tf.slice(v, [at], [p.size]).reshape([...p.shape]);
    at += p.size;
    return part;
  });
}
