/**
 * Argument checks shared by the public entry points (objects and metrics), run before any
 * tensor is touched. Each names the argument, what was expected and what was received.
 *
 * Options objects: every public options object is checked for unknown keys, so that a misspelled
 * option (`{ reguL: 1e-3 }`, `{ varient: 'regression' }`) is an InvalidArgumentError naming the
 * key and the closest valid one instead of being silently ignored. Keys whose value is
 * `undefined` are ignored (they set nothing), and `null` or a non-object where an options
 * object is expected is refused.
 */
import { tf } from '../tf.js';
import { DisposedError, InvalidArgumentError, NonFiniteError } from '../errors.js';
import { LayerCollection } from '../layers/layer-collection.js';

export { describe, closestName, checkOptions } from '../validation.js';
import { describe } from '../validation.js';

/** Checks that `lc` is a LayerCollection. */
export function checkLayerCollection(lc: unknown, where: string, name = 'lc'): LayerCollection {
  if (!(lc instanceof LayerCollection)) {
    throw new InvalidArgumentError(`${where}: '${name}' must be a LayerCollection (LayerCollection.fromModel(model)), received ${describe(lc)}`);
  }
  return lc;
}

/** Checks that `model` is a tf.LayersModel whose weights have not been disposed. */
export function checkModel(model: unknown, where: string, name = 'model'): tf.LayersModel {
  if (!(model instanceof tf.LayersModel)) {
    throw new InvalidArgumentError(`${where}: '${name}' must be a tf.LayersModel or tf.Sequential, received ${describe(model)}`);
  }
  for (const w of model.weights) {
    try {
      w.read();
    } catch {
      throw new DisposedError(`${where}: '${name}' (model '${model.name}') has been disposed: its weight '${w.name}' is gone`);
    }
  }
  return model;
}

/** Checks that `t` is a live float32 tensor. */
export function checkFloatTensor(t: unknown, where: string, name = 't'): tf.Tensor {
  if (!(t instanceof tf.Tensor)) throw new InvalidArgumentError(`${where}: '${name}' must be a tf.Tensor, received ${describe(t)}`);
  if (t.isDisposed) throw new DisposedError(`${where}: tensor '${name}' has been disposed`);
  if (t.dtype !== 'float32') throw new InvalidArgumentError(`${where}: '${name}' must be float32, received ${t.dtype}`);
  return t;
}

/** Throws NonFiniteError if the float32 tensor `t` holds NaN or ±Infinity (Σ 0·t is NaN exactly then). */
export function checkFiniteTensor(t: tf.Tensor, where: string, name = 't'): void {
  const probe = tf.tidy(() => tf.sum(tf.mul(t, 0)));
  const ok = Number.isFinite(probe.dataSync()[0]!);
  probe.dispose();
  if (!ok) throw new NonFiniteError(`${where}: '${name}' contains NaN or Infinity`);
}

/** Throws NonFiniteError if a host array holds NaN or ±Infinity, naming the first bad index. */
export function checkFiniteValues(a: ArrayLike<number>, where: string, name: string): void {
  for (let k = 0; k < a.length; k++) {
    if (!Number.isFinite(a[k]!)) throw new NonFiniteError(`${where}: '${name}' holds ${a[k]} at index ${k}; values must be finite`);
  }
}
