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
  linearEigenbasisSquaredSum,
  linearGradientGram,
  linearInputFactor,
  linearOutputFactor,
  linearProjectInputs,
  linearWeightBiasCross,
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
  /** Features X̃ [B, S, K] (with the bias's 1 appended); owned by the caller's tidy scope. */
  features(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor3D;
  /** Pre-activation gradients as [B, S, C]; owned by the caller's tidy scope. */
  gradients(layer: tf.layers.Layer, g: tf.Tensor): tf.Tensor3D;
  /** Optional hand-written input cotangent (LayerKind.inputCotangent). */
  inputCotangent?(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor): tf.Tensor;
}

export function linearLayerKind(spec: LinearKindSpec): LayerKind {
  const withFeatures = <T extends tf.Tensor>(
    layer: tf.layers.Layer,
    x: tf.Tensor,
    g: tf.Tensor,
    f: (lf: LinearFeatures) => T,
  ): T => tfjs.tidy(() => f(linearFeatures(layer, x, g)));
  const linearFeatures = (layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor): LinearFeatures => ({
    features: spec.features(layer, x),
    gradients: spec.gradients(layer, g),
  });
  const hasBias = (layer: tf.layers.Layer) => layer.trainableWeights.length === 2;
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
    // Native stacked rules: X̃ is formed once and shared by the k stacked outputs.
    squaredGradientSum: (layer, x, g, k) => withFeatures(layer, x, g, (lf) => linearSquaredGradientSum(lf, k)),
    ...(spec.inputCotangent ? { inputCotangent: spec.inputCotangent } : {}),
    gradientDot: (layer, x, g, v, k) => withFeatures(layer, x, g, (lf) => linearGradientDot(lf, v, k)),
    weightedGradientSum: (layer, x, g, u, k) => withFeatures(layer, x, g, (lf) => linearWeightedGradientSum(lf, u, k)),
    gradientGram: (layer, xa, ga, xb, gb) =>
      tfjs.tidy(() => linearGradientGram(linearFeatures(layer, xa, ga), linearFeatures(layer, xb, gb))),
    kronecker: {
      factorSizes(layer) {
        const p = spec.parameters(layer);
        const kernel = p[0]!;
        const c = kernel.shape[kernel.shape.length - 1]!;
        return [kernel.size / c + (hasBias(layer) ? 1 : 0), c];
      },
      inputFactor: (layer, x, type) => tfjs.tidy(() => linearInputFactor(spec.features(layer, x), type)),
      inputRows: (layer, x, type) =>
        tfjs.tidy(() => {
          const f = spec.features(layer, x);
          const [b, s, k] = f.shape;
          return (type === 'expand' ? f.reshape([b * s, k]) : tfjs.mean(f, 1)) as tf.Tensor2D;
        }),
      outputFactor: (layer, g, type) => tfjs.tidy(() => linearOutputFactor(spec.gradients(layer, g), type)),
      outputRows: (layer, g, type) =>
        tfjs.tidy(() => {
          const d = spec.gradients(layer, g);
          const [b, s, c] = d.shape;
          if (type === 'reduce') return tfjs.sum(d, 1) as tf.Tensor2D;
          const rows = d.reshape([b * s, c]) as tf.Tensor2D;
          return s === 1 ? rows : (tfjs.mul(rows, 1 / Math.sqrt(s)) as tf.Tensor2D);
        }),
      projectInputs: (layer, x, uA) => tfjs.tidy(() => linearProjectInputs(spec.features(layer, x), uA)),
      eigenbasisSquaredSum: (layer, xr, g, uG, k) => tfjs.tidy(() => linearEigenbasisSquaredSum(xr, spec.gradients(layer, g), uG, k)),
      weightBiasCross: (layer, x, g, k) => withFeatures(layer, x, g, (lf) => linearWeightBiasCross(lf, k)),
      hasBias,
    },
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
