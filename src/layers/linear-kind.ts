/**
 * Builds a LayerKind from the two things that distinguish the linear layers: how their
 * pre-activation is computed and how (input, output gradient) become features X̃ [B,S,K] and
 * gradients G [B,S,C] (see linear-features.ts).
 */
import type { tf } from '../tf.js';
import type { LayerKind, ParameterSpec } from './layer-kind.js';
import {
  type LinearFeatures,
  linearGradientDot,
  linearGradientGram,
  linearPerExampleGradients,
  linearSquaredGradientSum,
  linearWeightedGradientSum,
} from './linear-features.js';
import { tf as tfjs } from '../tf.js';
import { layerActivation } from './tfjs-internals.js';

export interface LinearKindSpec {
  name: string;
  classNames: readonly string[];
  parameters(layer: tf.layers.Layer): ParameterSpec[];
  preactivation(layer: tf.layers.Layer, x: tf.Tensor, weights?: readonly tf.Tensor[]): tf.Tensor;
  /** Features and gradients; the returned tensors are owned by the caller's tidy scope. */
  linearFeatures(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor): LinearFeatures;
}

export function linearLayerKind(spec: LinearKindSpec): LayerKind {
  const withFeatures = <T extends tf.Tensor>(
    layer: tf.layers.Layer,
    x: tf.Tensor,
    g: tf.Tensor,
    f: (lf: LinearFeatures) => T,
  ): T => tfjs.tidy(() => f(spec.linearFeatures(layer, x, g)));
  return {
    name: spec.name,
    classNames: spec.classNames,
    parameters: spec.parameters,
    preactivation: spec.preactivation,
    activate(layer, s) {
      const act = layerActivation(layer);
      return act ? act.apply(s) : s;
    },
    perExampleGradients: (layer, x, g) => withFeatures(layer, x, g, linearPerExampleGradients),
    squaredGradientSum: (layer, x, g) => withFeatures(layer, x, g, linearSquaredGradientSum),
    gradientDot: (layer, x, g, v) => withFeatures(layer, x, g, (lf) => linearGradientDot(lf, v)),
    weightedGradientSum: (layer, x, g, u) => withFeatures(layer, x, g, (lf) => linearWeightedGradientSum(lf, u)),
    gradientGram: (layer, xa, ga, xb, gb) =>
      tfjs.tidy(() => linearGradientGram(spec.linearFeatures(layer, xa, ga), spec.linearFeatures(layer, xb, gb))),
  };
}

/** Parameter specs from a layer's trainable weights, named by role. */
export function parameterSpecs(layer: tf.layers.Layer, roles: readonly string[]): ParameterSpec[] {
  return layer.trainableWeights.map((w, i) => ({
    role: roles[i] ?? `weight${i}`,
    shape: w.shape.map((d) => d as number),
    size: w.shape.reduce((a: number, d) => a * (d as number), 1),
  }));
}
