/**
 * FIMMonteCarlo: the Fisher information matrix estimated with sampled labels (CONVENTIONS.md),
 * F̂ = (1/n) Σ_i (1/T) Σ_t ∇θ log p(y_t|x_i) ∇θ log p(y_t|x_i)ᵀ, y_t ~ p(y|x_i), in any
 * representation. One backward pass per trial instead of one per class: the cheap estimator for
 * models with many outputs. Unbiased for the matching `FIM` variant; reproducible for a seed.
 */
import type { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { Progress } from '../backend/pass.js';
import type { Loader } from '../data/loader.js';
import type { PMatBase, Representation, RepresentationResult } from '../object/pspace/pmat.js';
import { initLinalg } from '../linalg/index.js';
import { checkMetricArguments } from './arguments.js';
import { describe } from '../object/arguments.js';
import { representationNames } from '../object/pspace/registry.js';
import { MONTE_CARLO_VARIANTS, type MonteCarloVariant, monteCarloCotangents } from './monte-carlo-samples.js';
import { checkOutputActivation } from './output-activation.js';

/** Options of `FIMMonteCarlo`. */
export interface FIMMonteCarloOptions<M extends PMatBase> {
  /** A tf.Sequential or functional tf.LayersModel. Its weights are never modified. */
  model: tf.LayersModel;
  /** Batches of inputs (targets are not used: labels are sampled); see `Loader`. */
  loader: Loader;
  /** Any representation: PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatImplicit, ... */
  representation: Representation<M>;
  /** Default 'classif_logits'. */
  variant?: MonteCarloVariant;
  /** Sampled labels per example T (integer ≥ 1, default 1): T backward passes per batch. */
  trials?: number;
  /**
   * Integer seed of the label sampler (default: drawn once per call). Batch k uses the stream
   * (seed, k), so the same seed and data give the same matrix, on every backend.
   */
  seed?: number;
  /** Gaussian output variance of 'regression' (default 1): E[F̂] = JᵀJ/(n σ²). */
  sigma2?: number;
  /** Which parameters; default LayerCollection.fromModel(model). */
  layerCollection?: LayerCollection;
  /** Called after each batch. */
  onProgress?: (p: Progress) => void;
  /** Aborts the computation (AbortedError) at the next batch or output; every tensor is released. */
  signal?: AbortSignal;
}

/**
 * Estimates the Fisher information matrix of `model` on `loader` with `trials` sampled labels
 * per example (see monte-carlo-samples.ts for the sampled cotangent of each variant), as an
 * instance of the representation's class, typed as `FIM` types it (`PMatDiag` for
 * `representation: PMatDiag`, a union for a union of representations).
 *
 * @example
 * const F = await FIMMonteCarlo({ model, loader, representation: PMatDiag, trials: 1, seed: 0 });
 * F.trace();
 * F.dispose();
 */
export async function FIMMonteCarlo<R extends Representation<PMatBase>>(options: Omit<FIMMonteCarloOptions<PMatBase>, 'representation'> & { representation: R }): Promise<RepresentationResult<R>>;
export async function FIMMonteCarlo<M extends PMatBase>(options: FIMMonteCarloOptions<M>): Promise<M> {
  const layerCollection = checkMetricArguments(options, 'FIMMonteCarlo', ['model', 'loader', 'representation', 'variant', 'trials', 'seed', 'sigma2', 'layerCollection', 'onProgress', 'signal']);
  const { model, loader, representation } = options;
  if (!representation || typeof (representation as Partial<Representation<M>>).compute !== 'function') {
    throw new InvalidArgumentError(`FIMMonteCarlo: 'representation' must be a representation class such as ${representationNames().join(', ')} (or one made by PMatMixed.fromMapping, PMatKFAC.with, ...), received ${describe(representation)}`);
  }
  const variant = options.variant ?? 'classif_logits';
  if (!(MONTE_CARLO_VARIANTS as readonly string[]).includes(variant)) {
    throw new InvalidArgumentError(`FIMMonteCarlo: unknown variant ${JSON.stringify(variant)}; valid variants: ${MONTE_CARLO_VARIANTS.join(', ')}`);
  }
  checkOutputActivation(model, variant, 'FIMMonteCarlo');
  const trials = options.trials ?? 1;
  if (!(Number.isInteger(trials) && trials >= 1)) {
    throw new InvalidArgumentError(`FIMMonteCarlo: 'trials' must be an integer ≥ 1, received ${String(trials)}`);
  }
  if (options.seed !== undefined && !Number.isSafeInteger(options.seed)) {
    throw new InvalidArgumentError(`FIMMonteCarlo: 'seed' must be an integer, received ${String(options.seed)}`);
  }
  if (options.sigma2 !== undefined) {
    if (variant !== 'regression') throw new InvalidArgumentError(`FIMMonteCarlo: option 'sigma2' only applies to the 'regression' variant, not '${variant}'`);
    if (!(typeof options.sigma2 === 'number' && Number.isFinite(options.sigma2) && options.sigma2 > 0)) {
      throw new InvalidArgumentError(`FIMMonteCarlo: 'sigma2' must be a finite number > 0, received ${String(options.sigma2)}`);
    }
  }
  const classes = model.outputs[0]?.shape[model.outputs[0].shape.length - 1];
  const outputSize = model.outputs[0]?.shape.slice(1).reduce<number | null>((a, b) => (a === null || b === null ? null : a * b), 1);
  if (outputSize === 1 && (variant === 'classif_logits' || variant === 'classif_logsoftmax' || variant === 'classif_probs' || variant === 'segmentation_logits')) {
    throw new InvalidArgumentError(
      `FIMMonteCarlo: variant '${variant}' needs at least 2 classes but model '${model.name}' has 1 output (its Fisher is 0); for a single logit use 'classif_binary_logits'`,
    );
  }
  if (variant === 'segmentation_logits' && !(typeof classes === 'number' && classes >= 1)) {
    throw new InvalidArgumentError(`FIMMonteCarlo: 'segmentation_logits' needs a model output [batch, ..., classes] with a known last axis; the output shape is [${model.outputs[0]?.shape}]`);
  }
  // Drawn once, so that every pass of a matrix-free representation sees the same labels.
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  await initLinalg();
  return representation.compute({
    model,
    layerCollection,
    loader,
    outputs: monteCarloCotangents(variant, { trials, seed, sigma2: options.sigma2 ?? 1, classes: classes ?? 1 }),
    onProgress: options.onProgress,
    signal: options.signal,
  });
}
