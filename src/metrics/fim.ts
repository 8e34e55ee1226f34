/**
 * FIM: the Fisher information matrix of a model's predictive distribution (CONVENTIONS.md),
 * F = (1/n) Σ_i J_iᵀ H_i J_i with H_i the Fisher of the output distribution of the variant,
 * computed in closed form (no label sampling) in the requested representation.
 */
import type { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { checkMetricArguments } from './arguments.js';
import type { Loader } from '../data/loader.js';
import type { Progress } from '../backend/engine.js';
import type { PMatBase, Representation } from '../object/pspace/pmat.js';
import { initLinalg } from '../linalg/index.js';
import { type LossFunction, type LossName, type Variant, checkVariant, variantCotangents } from './variants.js';

export interface FIMOptions<M extends PMatBase> {
  /** A tf.Sequential or functional tf.LayersModel. Its weights are never modified. */
  model: tf.LayersModel;
  /** Batches of inputs (and targets for 'empirical'); see `Loader`. Re-iterable for PMatImplicit. */
  loader: Loader;
  /** The representation class: PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatImplicit. */
  representation: Representation<M>;
  /** Default 'classif_logits'. */
  variant?: Variant;
  /** Which parameters; default LayerCollection.fromModel(model). */
  layerCollection?: LayerCollection;
  /** Gaussian output variance of the 'regression' variant (default 1). */
  sigma2?: number;
  /** Per-example loss of the 'empirical' variant. */
  loss?: LossFunction | LossName;
  /** Called after each batch with the examples done (and the total when the loader is an array). */
  onProgress?: (p: Progress) => void;
  /** Aborts the computation (AbortedError) at the next batch or output; every tensor is released. */
  signal?: AbortSignal;
}

/**
 * Computes the Fisher information matrix of `model` on `loader`.
 *
 * @example
 * const F = await FIM({ model, loader: [{ xs, ys }], representation: PMatDiag });
 * F.trace();
 * F.dispose();
 */
export async function FIM<M extends PMatBase>(options: FIMOptions<M>): Promise<M> {
  const layerCollection = checkMetricArguments(options, 'FIM');
  const { model, loader, representation } = options;
  if (!representation || typeof (representation as Partial<Representation<M>>).compute !== 'function') {
    throw new InvalidArgumentError(`FIM: 'representation' must be a representation class such as PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank or PMatImplicit`);
  }
  const variant = checkVariant(options.variant ?? 'classif_logits', { sigma2: options.sigma2, loss: options.loss });
  // Float64 factorisations use the Eigen WebAssembly module when it loads (TypeScript otherwise).
  await initLinalg();
  return representation.compute({
    model,
    layerCollection,
    loader,
    outputs: variantCotangents(variant, { sigma2: options.sigma2, loss: options.loss }),
    onProgress: options.onProgress,
    signal: options.signal,
  });
}
