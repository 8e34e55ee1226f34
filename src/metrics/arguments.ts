/**
 * Validation shared by the metric entry points (FIM, and those that follow it): the model, the
 * loader, the layer collection and the progress callback, checked before any tensor is touched.
 */
import type { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { LayerCollection } from '../layers/layer-collection.js';
import type { Loader } from '../data/loader.js';
import type { Progress } from '../backend/pass.js';
import { checkModel, checkOptions, describe } from '../object/arguments.js';

export interface MetricArguments {
  model: tf.LayersModel;
  loader: Loader;
  layerCollection?: LayerCollection;
  onProgress?: (p: Progress) => void;
  /** Aborts the pass over the data (AbortedError); every tensor is released. */
  signal?: AbortSignal;
}

/**
 * Checks the common arguments of `where` and returns the layer collection to use. `allowed` lists
 * every option key of the entry point: any other key (a misspelling) is an InvalidArgumentError.
 */
export function checkMetricArguments(options: MetricArguments, where: string, allowed: readonly string[]): LayerCollection {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${where}: expected an options object { model, loader, ... }, received ${describe(options)}`);
  }
  checkOptions(options, allowed, where);
  const { model, loader } = options;
  checkModel(model, where);
  if (loader === undefined || loader === null) {
    throw new InvalidArgumentError(`${where}: 'loader' is required (a tf.data.Dataset, a batch, or an array/iterable of batches)`);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new InvalidArgumentError(`${where}: 'onProgress' must be a function`);
  }
  if (options.signal !== undefined && !(typeof options.signal === 'object' && options.signal !== null && 'aborted' in options.signal)) {
    throw new InvalidArgumentError(`${where}: 'signal' must be an AbortSignal`);
  }
  const lc = options.layerCollection ?? LayerCollection.fromModel(model);
  if (!(lc instanceof LayerCollection)) throw new InvalidArgumentError(`${where}: 'layerCollection' must be a LayerCollection, received ${describe(lc)}`);
  lc.layersOf(model);
  if (lc.numel() === 0) {
    throw new InvalidArgumentError(`${where}: the layer collection has no parameters (model '${model.name}' has no trainable supported layer)`);
  }
  return lc;
}
