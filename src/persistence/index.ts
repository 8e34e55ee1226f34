/**
 * save / load for PVector and the stored representations (every registry entry with `persist`),
 * in the format of format.ts: exact round trips, a CRC-32C checksum over the whole file, strict
 * validation of every header field, layers matched by id, kind and shape against the model,
 * finite values, and a PersistenceError naming what is wrong for anything else, with no tensor
 * left behind. `serialize`/`deserialize` work everywhere (bytes); `save`/`load` also accept a file
 * path in Node (written atomically: temporary file, fsync, rename) or any `{ write(bytes) }` /
 * `{ read() }` handler (IndexedDB, downloads, tf.io-style storage in the browser).
 */
import type { tf } from '../tf.js';
import { LayerCollection } from '../layers/layer-collection.js';
import type { PVector } from '../object/pvector.js';
import type { PMat } from '../object/pspace/pmat.js';
import type { RepresentationState, RestoreContext } from '../object/pspace/state.js';
import { entryNamed, entryOf, saveableNames } from '../object/pspace/registry.js';
import { type SavedLayer, PersistenceError, decode, encode } from './format.js';
import { specFromMeta } from './definition.js';
import { checkModel, describe } from '../object/arguments.js';
import { writeSavedFile } from './write-path.js';
import { nodeBuiltin } from '../platform/node-builtin.js';

export { PersistenceError } from './format.js';

/** Everything `save` accepts: PVector and every stored representation of the registry (`saveableNames()`). */
export type Saveable = PVector | PMat;

/** Where bytes go / come from: a file path (Node) or a handler. */
export type SaveTarget =
  | string
  | {
      /** Stores the file's bytes (may be asynchronous). */
      write(bytes: Uint8Array): void | Promise<void>;
    };
/** Where `load` reads bytes from: a file path (Node), the bytes themselves, or a handler. */
export type LoadSource =
  | string
  | Uint8Array
  | {
      /** Returns the file's bytes (may be asynchronous). */
      read(): Uint8Array | Promise<Uint8Array>;
    };

/** Options of `load`. */
export interface LoadOptions {
  /** Largest file `load` reads from a path, in bytes (checked before reading). Default 2³¹ − 1. */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 2 ** 31 - 1;

function savedLayers(lc: LayerCollection): SavedLayer[] {
  return lc.layers.map((e) => ({ id: e.id, kind: e.kind.name, shapes: e.parameters.map((p) => [...p.shape]) }));
}

/**
 * The object as bytes (format version 2, checksummed).
 * @example const bytes = serialize(F); const G = deserialize(bytes, model);
 */
export function serialize(obj: Saveable): Uint8Array {
  const entry = entryOf(obj);
  if (!entry?.persist) throw new PersistenceError(`save: ${describe(obj)} cannot be saved (supported: ${saveableNames().join(', ')})`);
  // A disposed object throws its DisposedError here.
  const state: RepresentationState = entry.persist.toState(obj);
  return encode(entry.name, savedLayers(obj.layerCollection), state);
}

/**
 * Rebuilds an object saved with `serialize` on the layers of `model` with the saved ids, kinds
 * and parameter shapes, in the saved order. Throws PersistenceError (and allocates no tensor)
 * for anything else.
 * @example const F = deserialize(bytes, model) as PMatKFAC;
 */
export function deserialize(bytes: Uint8Array, model: tf.LayersModel): Saveable {
  const decoded = decode(bytes);
  checkModel(model, 'load');
  const upgraded = decoded.version === 1 ? upgradeV1(decoded.kind, decoded.state) : decoded.state;
  const lc = matchingCollection(decoded.kind, decoded.layers, model);
  const context: RestoreContext = {
    model,
    restore: (kind, sub, state) => restore(kind, sub, state, context),
    spec: (sub, meta) => specFromMeta(model, sub, meta),
  };
  try {
    // Every fromState checks sizes before it allocates and releases what it built on failure.
    return restore(decoded.kind, lc, upgraded, context);
  } catch (e) {
    if (e instanceof PersistenceError) throw e;
    throw new PersistenceError(`load: the file is corrupted (${(e as Error).message})`);
  }
}

function restore(kind: string, lc: LayerCollection, state: RepresentationState, context: RestoreContext): Saveable {
  const entry = entryNamed(kind);
  if (!entry?.persist) throw new PersistenceError(`load: unknown object kind '${kind}' (this version of nngeometry loads ${saveableNames().join(', ')})`);
  const obj = entry.persist.fromState(lc, state, context);
  // Nothing in the file goes unread: its arrays, meta keys and parts are those the object saves.
  const extra = unusedFields(state, entry.persist.toState(obj));
  if (extra) {
    obj.dispose();
    throw new PersistenceError(`load: the file is corrupted (${extra}, which a ${kind} does not hold)`);
  }
  return obj;
}

/** The first field of `saved` that `expected` (the loaded object's own state) lacks, or null. */
function unusedFields(saved: RepresentationState, expected: RepresentationState, where = ''): string | null {
  const array = Object.keys(saved.arrays).find((k) => !(k in expected.arrays));
  if (array !== undefined) return `${where}array '${array}'`;
  const meta = Object.keys(saved.meta).find((k) => !(k in expected.meta));
  if (meta !== undefined) return `${where}meta field '${meta}'`;
  const [a, b] = [saved.parts ?? [], expected.parts ?? []];
  if (a.length !== b.length) return `${where}${a.length} parts`;
  for (const [j, p] of a.entries()) {
    const inner = unusedFields(p.state, b[j]!.state, `${where}part ${j}: `);
    if (inner) return inner;
  }
  return null;
}

/** Version 1 states lack what version 2 records: EKFAC's kfacType (always 'expand' then). */
function upgradeV1(kind: string, state: RepresentationState): RepresentationState {
  if (kind === 'PMatEKFAC' && state.meta.kfacType === undefined) return { ...state, meta: { ...state.meta, kfacType: 'expand' } };
  return state;
}

/**
 * The model's layers named in the file, checked by id, kind, parameter shapes and order; a
 * PersistenceError lists every difference.
 */
function matchingCollection(kind: string, saved: readonly SavedLayer[], model: tf.LayersModel): LayerCollection {
  if (saved.length === 0) throw new PersistenceError(`load: the file is corrupted (the ${kind} lists no layers)`);
  let lc: LayerCollection;
  try {
    lc = LayerCollection.fromLayers(model, saved.map((l) => l.id));
  } catch (e) {
    throw new PersistenceError(`load: the saved ${kind} does not belong to this model: ${(e as Error).message}; it was saved on layers ${saved.map((l) => `'${l.id}'`).join(', ')}`);
  }
  const fmt = (shapes: readonly (readonly number[])[]) => shapes.map((s) => `[${s.join(',')}]`).join(' ');
  const differences: string[] = [];
  for (const s of saved) {
    const e = lc.get(s.id);
    const shapes = e.parameters.map((p) => [...p.shape]);
    if (s.kind !== e.kind.name || fmt(s.shapes) !== fmt(shapes)) {
      differences.push(`layer '${s.id}' is ${e.kind.name} ${fmt(shapes)} in the model, ${s.kind} ${fmt(s.shapes)} in the file`);
    }
  }
  const order = lc.ids();
  if (order.some((id, i) => id !== saved[i]!.id)) {
    differences.push(`the layers are in the order ${order.map((id) => `'${id}'`).join(', ')} in the model, ${saved.map((l) => `'${l.id}'`).join(', ')} in the file`);
  }
  if (differences.length) {
    throw new PersistenceError(`load: the saved ${kind} does not match this model's layers: ${differences.join('; ')}. Load it onto the model it was saved from (same layer names, shapes and order).`);
  }
  return lc;
}

/**
 * Saves `obj` to a file path (Node; written atomically: a temporary file in the same folder,
 * fsync, rename, so a crash leaves the previous file whole) or a `{ write(bytes) }` handler.
 * @example await save(F, 'fisher.nng');
 */
export async function save(obj: Saveable, target: SaveTarget): Promise<void> {
  if (!(typeof target === 'string' || (typeof target === 'object' && target !== null && typeof target.write === 'function'))) {
    throw new PersistenceError(`save: 'target' must be a file path or an object with write(bytes), received ${describe(target)}`);
  }
  const bytes = serialize(obj);
  if (typeof target !== 'string') {
    await target.write(bytes);
    return;
  }
  await writeSavedFile(target, bytes);
}

/** Reads a regular file of at most `maxBytes` bytes, refusing anything else before reading. */
async function readBounded(path: string, maxBytes: number): Promise<Uint8Array> {
  const fs = await nodeBuiltin('fs/promises', 'load from a file path');
  let handle: Awaited<ReturnType<typeof fs.open>> | undefined;
  try {
    handle = await fs.open(path, 'r');
    const stat = await handle.stat();
    if (!stat.isFile()) throw new PersistenceError(`load: '${path}' is not a regular file`);
    if (stat.size > maxBytes) throw new PersistenceError(`load: '${path}' has ${stat.size} bytes, more than maxBytes = ${maxBytes}; pass { maxBytes } to load larger files`);
    const out = new Uint8Array(stat.size);
    let at = 0;
    while (at < out.length) {
      const { bytesRead } = await handle.read(out, at, out.length - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return at === out.length ? out : out.subarray(0, at);
  } catch (e) {
    if (e instanceof PersistenceError) throw e;
    throw new PersistenceError(`load: cannot read '${path}': ${(e as Error).message}`);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Loads an object saved with `save` from a file path (Node), bytes or a `{ read() }` handler,
 * onto `model` (see `deserialize`).
 * @example const F = (await load('fisher.nng', model)) as PMatKFAC;
 */
export async function load(source: LoadSource, model: tf.LayersModel, options: LoadOptions = {}): Promise<Saveable> {
  checkModel(model, 'load');
  if (typeof options !== 'object' || options === null || Object.keys(options).some((k) => k !== 'maxBytes')) {
    throw new PersistenceError(`load: 'options' must be { maxBytes? }, received ${describe(options)}`);
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0)) throw new PersistenceError(`load: 'maxBytes' must be a positive integer, received ${String(maxBytes)}`);
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    bytes = await readBounded(source, maxBytes);
  } else if (source instanceof Uint8Array) {
    bytes = source;
  } else if (source && typeof source.read === 'function') {
    bytes = await source.read();
  } else {
    throw new PersistenceError(`load: 'source' must be a file path, bytes or an object with read(), received ${describe(source)}`);
  }
  return deserialize(bytes, model);
}
