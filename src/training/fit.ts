/**
 * `fit(model, dataset, { optimizer, epochs, callbacks })`: the training loop of
 * `model.fitDataset` around `NaturalGradientOptimizer.step`, which `model.fit` cannot call
 * (tfjs-layers calls `optimizer.minimize(closure)` synchronously and never hands the batch to
 * the optimizer; see natural-gradient-optimizer.ts). Same callback hooks and log keys as
 * fitDataset (onTrainBegin, onEpochBegin, onBatchBegin {batch, size}, onBatchEnd {batch, size,
 * loss}, onEpochEnd {loss}, onTrainEnd), `model.stopTraining = true` stops after the current
 * batch (for a tf.Sequential, once compiled, as tfjs requires), and the returned history has the same shape ({ epoch, history: { loss } }).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { type BatchLike, iterateBatches, releaseBatch } from '../data/loader.js';
import { checkModel, checkOptions, describe } from '../object/arguments.js';
import type { NaturalGradientOptimizer } from './natural-gradient-optimizer.js';

/** fitDataset-style logs. */
export type FitLogs = Record<string, number>;

/** The callback hooks of tf.CustomCallbackArgs that `fit` calls. */
export interface FitCallbacks {
  /** Before the first epoch. */
  onTrainBegin?: (logs?: FitLogs) => void | Promise<void>;
  /** After the last epoch (or a stop). */
  onTrainEnd?: (logs?: FitLogs) => void | Promise<void>;
  /** Before each epoch (0-based). */
  onEpochBegin?: (epoch: number, logs?: FitLogs) => void | Promise<void>;
  /** After each epoch, with { loss } (example-weighted mean batch loss). */
  onEpochEnd?: (epoch: number, logs?: FitLogs) => void | Promise<void>;
  /** Before each step, with { batch, size }. */
  onBatchBegin?: (batch: number, logs?: FitLogs) => void | Promise<void>;
  /** After each step, with { batch, size, loss }. */
  onBatchEnd?: (batch: number, logs?: FitLogs) => void | Promise<void>;
}

/** Options of `fit`. */
/** Options of `fit`. */
export interface FitOptions {
  /** The optimizer whose `step` trains `model` (built on the same model). */
  optimizer: Pick<NaturalGradientOptimizer, 'step' | 'model'>;
  /** Passes over the dataset (integer ≥ 1). Default 1. */
  epochs?: number;
  /** Batches per epoch (integer ≥ 1); default: the whole dataset. */
  batchesPerEpoch?: number;
  /** tf.CustomCallbackArgs-style hooks (one object or several), called as model.fitDataset calls them. */
  callbacks?: FitCallbacks | FitCallbacks[];
  /** 0: silent; 1 (default): one line per epoch, as tfjs-node's fitDataset prints it. */
  verbose?: 0 | 1;
  /** Where verbose lines go. Default console.log. */
  log?: (line: string) => void;
}

/** What `fit` returns: the per-epoch mean loss, as a tf.History holds it. */
export interface FitHistory {
  /** The epochs run (0-based). */
  epoch: number[];
  /** Per epoch: the example-weighted mean batch loss. */
  history: {
    /** One value per epoch. */
    loss: number[];
  };
}

/**
 * Trains `model` for `epochs` passes over `dataset` (a tf.data.Dataset of {xs, ys}, or an array
 * of batches) with `optimizer.step`, calling the callbacks as model.fitDataset does.
 *
 * @example
 * const opt = new NaturalGradientOptimizer({ model, learningRate: 0.05 });
 * const history = await fit(model, tf.data.zip({ xs, ys }).batch(64), { optimizer: opt, epochs: 5 });
 */
export async function fit(model: tf.LayersModel, dataset: tf.data.Dataset<tf.TensorContainer> | readonly BatchLike[], options: FitOptions): Promise<FitHistory> {
  checkModel(model, 'fit');
  const o = checkOptions(options, ['optimizer', 'epochs', 'batchesPerEpoch', 'callbacks', 'verbose', 'log'], 'fit') as unknown as FitOptions;
  if (typeof o.optimizer?.step !== 'function') throw new InvalidArgumentError(`fit: 'optimizer' must be a NaturalGradientOptimizer, received ${describe(o.optimizer)}`);
  if (o.optimizer.model !== model) throw new InvalidArgumentError(`fit: the optimizer trains model '${o.optimizer.model?.name}', not '${model.name}'; build it with { model }`);
  const epochs = o.epochs ?? 1;
  if (!(Number.isInteger(epochs) && epochs >= 1)) throw new InvalidArgumentError(`fit: 'epochs' must be an integer ≥ 1, received ${describe(epochs)}`);
  if (o.batchesPerEpoch !== undefined && !(Number.isInteger(o.batchesPerEpoch) && o.batchesPerEpoch >= 1)) {
    throw new InvalidArgumentError(`fit: 'batchesPerEpoch' must be an integer ≥ 1, received ${describe(o.batchesPerEpoch)}`);
  }
  if (!(dataset instanceof tf.data.Dataset || Array.isArray(dataset))) {
    throw new InvalidArgumentError(`fit: 'dataset' must be a tf.data.Dataset of {xs, ys} or an array of batches (re-iterable, one pass per epoch), received ${describe(dataset)}`);
  }
  const callbacks = o.callbacks === undefined ? [] : Array.isArray(o.callbacks) ? o.callbacks : [o.callbacks];
  const verbose = o.verbose ?? 1;
  const log = o.log ?? console.log;
  const call = async <K extends keyof FitCallbacks>(hook: K, ...args: Parameters<NonNullable<FitCallbacks[K]>>) => {
    for (const c of callbacks) await (c[hook] as ((...a: unknown[]) => unknown) | undefined)?.(...args);
  };
  const history: FitHistory = { epoch: [], history: { loss: [] } };
  // A tf.Sequential refuses stopTraining before compile(); fit needs no compile, so both are guarded.
  const stopRequested = () => {
    try {
      return model.stopTraining;
    } catch {
      return false;
    }
  };
  try {
    model.stopTraining = false;
  } catch {
    // not compiled: nothing can have requested a stop
  }
  await call('onTrainBegin', {});
  for (let epoch = 0; epoch < epochs && !stopRequested(); epoch++) {
    await call('onEpochBegin', epoch, {});
    if (verbose) log(`Epoch ${epoch + 1} / ${epochs}`);
    const t0 = performance.now();
    let sum = 0;
    let examples = 0;
    let batchIndex = 0;
    for await (const batch of iterateBatches(dataset as tf.data.Dataset<never>)) {
      try {
        await call('onBatchBegin', batchIndex, { batch: batchIndex, size: batch.size });
        const loss = await o.optimizer.step({ xs: batch.xs.length === 1 ? batch.xs[0]! : batch.xs, ...(batch.ys ? { ys: batch.ys } : {}) });
        sum += loss * batch.size;
        examples += batch.size;
        await call('onBatchEnd', batchIndex, { batch: batchIndex, size: batch.size, loss });
      } finally {
        releaseBatch(batch);
      }
      batchIndex++;
      if (stopRequested() || batchIndex === o.batchesPerEpoch) break;
    }
    const loss = sum / examples;
    history.epoch.push(epoch);
    history.history.loss.push(loss);
    if (verbose) {
      const ms = performance.now() - t0;
      log(`${ms.toFixed(0)}ms ${((1000 * ms) / batchIndex).toFixed(0)}us/step - loss=${loss.toPrecision(4)}`);
    }
    await call('onEpochEnd', epoch, { loss });
  }
  await call('onTrainEnd', {});
  return history;
}
