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

/** A short description of a received value for error messages: 'null', 'a string "x"', 'an object', 'PVector', ... */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? name : 'a plain object';
}

/** Levenshtein distance (small strings only). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

/** The valid name closest to `name`, when it is close enough to be a likely misspelling. */
export function closestName(name: string, valid: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const v of valid) {
    const d = distance(name, v);
    if (d < bestD) [best, bestD] = [v, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/**
 * Checks that `options` is undefined or an object whose keys are all in `allowed` (keys set to
 * undefined are ignored); returns it as a record ({} for undefined).
 */
export function checkOptions(options: unknown, allowed: readonly string[], where: string, name = 'options'): Record<string, unknown> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${where}: '${name}' must be an object { ${allowed.join(', ')} }, received ${describe(options)}`);
  }
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (allowed.includes(key) || record[key] === undefined) continue;
    const near = closestName(key, allowed);
    throw new InvalidArgumentError(
      `${where}: unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}; valid options: ${allowed.join(', ')}`,
    );
  }
  return record;
}

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
