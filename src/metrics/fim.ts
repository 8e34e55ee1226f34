/**
 * FIM: the Fisher information matrix of a model's predictive distribution (CONVENTIONS.md),
 * F = (1/n) Σ_i J_iᵀ H_i J_i with H_i the Fisher of the output distribution of the variant,
 * computed in closed form (no label sampling) in the requested representation.
 */
import type { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { checkMetricArguments } from './arguments.js';
import { describe } from '../object/arguments.js';
import { representationNames } from '../object/pspace/registry.js';
import type { Loader } from '../data/loader.js';
import type { Progress } from '../backend/pass.js';
import type { AnyPMat, PMatBase, Representation, RepresentationResult } from '../object/pspace/pmat.js';
import { initLinalg } from '../linalg/index.js';
import { computeInWorkers, planWorkers } from '../parallel/parallel-fim.js';
import { resolveWorkerSetup } from '../parallel/custom-layers.js';
import { type LossFunction, type LossName, type Variant, checkVariant, variantCotangents } from './variants.js';
import { checkOutputActivation } from './output-activation.js';

/** Options of `FIM`. */
export interface FIMOptions<M extends PMatBase> {
  /** A tf.Sequential or functional tf.LayersModel. Its weights are never modified. */
  model: tf.LayersModel;
  /** Batches of inputs (and targets for 'empirical'); see `Loader`. Re-iterable for PMatImplicit. */
  loader: Loader;
  /** The representation: one of the registry's (`representationNames()`: PMatDense, PMatDiag, PMatKFAC, ...) or one made by PMatMixed.fromMapping. */
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
  /**
   * Threads for the pass over the data (Node only; tfjs-wasm is single-threaded). A number k ≥ 2
   * splits an array of batches into k contiguous shares: this thread computes the first, k − 1
   * pooled worker threads (each with its own tfjs and a copy of the model) the others, and the
   * partial matrices are merged exactly (example-weighted). The pool is started by the first
   * call that needs it and kept for later calls (idle threads never keep the process alive;
   * `terminateWorkers()` releases them). 'auto' (default) uses one thread per core when the
   * request is eligible and has at least 1,024 examples with the pool already started, or 8,192
   * when it must start threads — decided from the request alone, never from the machine's
   * momentary load; 1 never uses threads. A model with a custom layer class needs
   * `workerSetup` for threads ('auto' then stays on this thread; a number is refused up front).
   * See docs/performance.md, "Worker threads".
   */
  workers?: number | 'auto';
  /**
   * Worker threads rebuild the model with their own tfjs, which knows only tfjs's classes: the
   * path (relative to the current directory) or file: URL of an ES module that registers the
   * model's custom classes (`tf.serialization.registerClass`), imported by each thread before
   * it rebuilds the model. Node only; unused with `workers: 1`.
   *
   * @example
   * // my-layers.js: import * as tf from '@tensorflow/tfjs'; tf.serialization.registerClass(MyLayer);
   * await FIM({ model, loader, representation: PMatKFAC, workers: 2, workerSetup: './my-layers.js' });
   */
  workerSetup?: string | URL;
}

const FIM_OPTIONS = ['model', 'loader', 'representation', 'variant', 'layerCollection', 'sigma2', 'loss', 'onProgress', 'signal', 'workers', 'workerSetup'] as const;

/**
 * Computes the Fisher information matrix of `model` on `loader`, as an instance of the
 * representation's class (`PMatDiag` for `representation: PMatDiag`; one of several classes for
 * a union of representations; {@link AnyPMat} for a `Representation<AnyPMat>`).
 *
 * @example
 * const F = await FIM({ model, loader: [{ xs, ys }], representation: PMatDiag });
 * F.trace();
 * F.dispose();
 */
export async function FIM<R extends Representation<PMatBase>>(options: Omit<FIMOptions<PMatBase>, 'representation'> & { representation: R }): Promise<RepresentationResult<R>>;
export async function FIM<M extends PMatBase>(options: FIMOptions<M>): Promise<M> {
  const layerCollection = checkMetricArguments(options, 'FIM', FIM_OPTIONS);
  const { model, loader, representation } = options;
  if (!representation || typeof (representation as Partial<Representation<M>>).compute !== 'function') {
    throw new InvalidArgumentError(`FIM: 'representation' must be a representation class such as ${representationNames().join(', ')} (or one made by PMatMixed.fromMapping, PMatKFAC.with, ...), received ${describe(representation)}`);
  }
  const variant = checkVariant(options.variant ?? 'classif_logits', { sigma2: options.sigma2, loss: options.loss });
  checkOutputActivation(model, variant, 'FIM');
  const workers = options.workers ?? 'auto';
  if (workers !== 'auto' && !(Number.isInteger(workers) && workers >= 1)) {
    throw new InvalidArgumentError(`FIM: 'workers' must be 'auto' or an integer ≥ 1, received ${String(workers)}`);
  }
  const workerSetup = await resolveWorkerSetup(options.workerSetup, 'FIM');
  // Float64 factorisations use the Eigen WebAssembly module when it loads (TypeScript otherwise).
  await initLinalg();
  const spec = {
    model,
    layerCollection,
    loader,
    outputs: variantCotangents(variant, { sigma2: options.sigma2, loss: options.loss }),
    onProgress: options.onProgress,
    signal: options.signal,
  };
  if (workers !== 1) {
    const request = { spec, representation: representation as Representation<PMatBase>, variant, sigma2: options.sigma2, loss: options.loss, workers, workerSetup };
    const plan = await planWorkers(request);
    if ('threads' in plan) return (await computeInWorkers(request, plan.threads)) as M;
    if (workers !== 'auto') throw new InvalidArgumentError(`FIM: cannot use ${workers} worker threads: ${plan.reason}`);
  }
  return representation.compute(spec);
}
