/**
 * The stacked form of contractions written for one output: per-example contractions treat rows
 * independently, so k output-major stacked outputs (g [k·B, ...]) are one output of a k-times
 * larger batch whose inputs are x repeated k times (row o·B + i holds example i). The kind
 * builders apply this once for kinds without a native stacked rule; consumers always call the
 * stacked form (k = 1 the plain case, where nothing is copied).
 */
import { tf } from '../tf.js';
import { tileRows } from '../backend/stacking.js';
import type { KroneckerSupport, LayerKind } from './layer-kind.js';

/** A contraction of one output: x and g with the same batch size. */
type Single<A extends unknown[], R> = (layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor, ...rest: A) => R;

/** Contractions of one output: what a kind without a native stacked rule writes. */
export interface SingleOutputContractions {
  /** Σ_i (∇θ f̃(x_i))², [numel]. */
  squaredGradientSum: Single<[], tf.Tensor1D>;
  /** ⟨∇θ f̃(x_i), v⟩, [B]. */
  gradientDot: Single<[v: tf.Tensor1D], tf.Tensor1D>;
  /** Σ_i u_i ∇θ f̃(x_i), [numel]. */
  weightedGradientSum: Single<[u: tf.Tensor1D], tf.Tensor1D>;
}

/** Kronecker contractions of one output (x and the projected inputs with g's batch size). */
export interface SingleOutputKroneckerContractions {
  eigenbasisSquaredSum(layer: tf.layers.Layer, projectedInputs: tf.Tensor3D, g: tf.Tensor, uOutput: tf.Tensor2D): tf.Tensor2D;
  weightBiasCross: Single<[], tf.Tensor2D>;
}

/** The stacked forms of one-output contractions, by repeating the inputs k times. */
export function tiledContractions(single: SingleOutputContractions): Pick<LayerKind, 'squaredGradientSum' | 'gradientDot' | 'weightedGradientSum'> {
  return {
    squaredGradientSum: (layer, x, g, k) => tf.tidy(() => single.squaredGradientSum(layer, tileRows(x, k), g)),
    gradientDot: (layer, x, g, v, k) => tf.tidy(() => single.gradientDot(layer, tileRows(x, k), g, v)),
    weightedGradientSum: (layer, x, g, u, k) => tf.tidy(() => single.weightedGradientSum(layer, tileRows(x, k), g, u)),
  };
}

/** The stacked forms of one-output Kronecker contractions, by repeating the (projected) inputs k times. */
export function tiledKroneckerContractions(
  single: SingleOutputKroneckerContractions,
): Pick<KroneckerSupport, 'eigenbasisSquaredSum' | 'weightBiasCross'> {
  return {
    eigenbasisSquaredSum: (layer, xr, g, uOutput, k) => tf.tidy(() => single.eigenbasisSquaredSum(layer, tileRows(xr, k) as tf.Tensor3D, g, uOutput)),
    weightBiasCross: (layer, x, g, k) => tf.tidy(() => single.weightBiasCross(layer, tileRows(x, k), g)),
  };
}
