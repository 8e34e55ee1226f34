/**
 * save / load for PVector and the stored representations, in the format of format.ts: exact
 * round trips, and a clear PersistenceError for truncated, corrupted, wrong-version or
 * mismatched-model data. `serialize`/`deserialize` work everywhere (bytes); `save`/`load` also
 * accept a file path in Node or any `{ write(bytes) }` / `{ read() }` handler (IndexedDB,
 * downloads, tf.io-style storage in the browser).
 */
import { tf } from '../tf.js';
import { nodeBuiltin } from '../platform/node-builtin.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { PVector } from '../object/pvector.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatLowRank } from '../object/pspace/low-rank.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { PMatQuasiDiag } from '../object/pspace/quasi-diag.js';
import { PMatEye } from '../object/pspace/eye.js';
import { EigenBlock } from '../object/pspace/kronecker/eigen-block.js';
import { type Header, type NamedArray, PersistenceError, decode, encode } from './format.js';
import { checkModel, describe } from '../object/arguments.js';

export { PersistenceError } from './format.js';

/** Everything `save` accepts. */
export type Saveable = PVector | PMatDense | PMatDiag | PMatBlockDiag | PMatLowRank | PMatKFAC | PMatEKFAC | PMatQuasiDiag | PMatEye;

/** Where bytes go / come from: a file path (Node) or a handler. */
export type SaveTarget = string | { write(bytes: Uint8Array): void | Promise<void> };
export type LoadSource = string | Uint8Array | { read(): Uint8Array | Promise<Uint8Array> };

const SAVEABLE = [PVector, PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag, PMatEye];

function savedLayers(lc: LayerCollection): Header['layers'] {
  return lc.layers.map((e) => ({ id: e.id, kind: e.kind.name, shapes: e.parameters.map((p) => [...p.shape]) }));
}

/** The object as bytes. */
export function serialize(obj: Saveable): Uint8Array {
  if (!SAVEABLE.some((c) => obj instanceof c)) {
    throw new PersistenceError(`save: ${describe(obj)} cannot be saved (supported: PVector, PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag, PMatEye)`);
  }
  const lc = obj.layerCollection;
  const arrays: NamedArray[] = [];
  const meta: Header['meta'] = {};
  let kind: string;
  if (obj instanceof PVector) {
    kind = 'PVector';
    arrays.push({ name: 'flat', data: new Float32Array(obj.data.dataSync()) });
  } else if (obj instanceof PMatDense) {
    kind = 'PMatDense';
    arrays.push({ name: 'values', data: obj.values() });
  } else if (obj instanceof PMatDiag) {
    kind = 'PMatDiag';
    arrays.push({ name: 'diag', data: obj.values() });
  } else if (obj instanceof PMatBlockDiag) {
    kind = 'PMatBlockDiag';
    lc.layers.forEach((e, i) => arrays.push({ name: `block${i}`, data: obj.block(e.id) }));
  } else if (obj instanceof PMatLowRank) {
    kind = 'PMatLowRank';
    meta.rows = obj.rows;
    arrays.push({ name: 'factor', data: new Float32Array(obj.factor.dataSync()) });
  } else if (obj instanceof PMatKFAC) {
    kind = 'PMatKFAC';
    meta.kfacType = obj.kfacType;
    lc.layers.forEach((e, i) => {
      const f = obj.layerFactors(e.id);
      arrays.push({ name: `a${i}`, data: f.a }, { name: `g${i}`, data: f.g });
      if (f.bias) arrays.push({ name: `b${i}`, data: f.bias });
    });
  } else if (obj instanceof PMatEKFAC) {
    kind = 'PMatEKFAC';
    meta.diagonalSource = obj.diagonalSource;
    // Per layer i: its Kronecker block (uA, uG, d) and, for a separate bias block, uB and dB.
    const index = new Map(lc.layers.map((e, i) => [e.id, i]));
    obj.eigenBlocks().forEach((b) => {
      const i = index.get(b.id)!;
      if (b.part === 'bias') arrays.push({ name: `uB${i}`, data: b.uA }, { name: `dB${i}`, data: b.diagonal });
      else arrays.push({ name: `uA${i}`, data: b.uA }, { name: `uG${i}`, data: b.uG }, { name: `d${i}`, data: b.diagonal });
    });
  } else if (obj instanceof PMatQuasiDiag) {
    kind = 'PMatQuasiDiag';
    lc.layers.forEach((e, i) => {
      const b = obj.layerBlock(e.id);
      arrays.push({ name: `diag${i}`, data: b.diag });
      if (b.cross) arrays.push({ name: `cross${i}`, data: b.cross });
    });
  } else if (obj instanceof PMatEye) {
    kind = 'PMatEye';
    meta.scaling = obj.scaling;
  } else {
    throw new PersistenceError(`save: ${(obj as object)?.constructor?.name ?? typeof obj} cannot be saved (supported: PVector, PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag, PMatEye)`);
  }
  return encode({ kind, layers: savedLayers(lc), meta }, arrays);
}

/** Rebuilds an object saved with `serialize`, on the matching layers of `model`. */
export function deserialize(bytes: Uint8Array, model: tf.LayersModel): Saveable {
  const { header, arrays } = decode(bytes);
  checkModel(model, 'load');
  const lc = matchingCollection(header, model);
  const get = (name: string): Float32Array | Float64Array => {
    const a = arrays.get(name);
    if (!a) throw new PersistenceError(`load: the file is corrupted (array '${name}' of a ${header.kind} is missing)`);
    return a;
  };
  const f64 = (name: string) => new Float64Array(get(name));
  const sqrtInt = (n: number, what: string) => {
    const k = Math.round(Math.sqrt(n));
    if (k * k !== n) throw new PersistenceError(`load: the file is corrupted (${what} is not square)`);
    return k;
  };
  try {
    switch (header.kind) {
      case 'PVector':
        return PVector.adopt(lc, tf.tensor1d(new Float32Array(get('flat'))));
      case 'PMatDense':
        return new PMatDense(lc, f64('values'));
      case 'PMatDiag':
        return new PMatDiag(lc, f64('diag'));
      case 'PMatBlockDiag':
        return PMatBlockDiag.fromBlocks(lc, lc.layers.map((_, i) => f64(`block${i}`)));
      case 'PMatLowRank': {
        const rows = Number(header.meta.rows);
        return new PMatLowRank(lc, tf.tensor2d(new Float32Array(get('factor')), [rows, lc.numel()]));
      }
      case 'PMatKFAC':
        return new PMatKFAC(
          lc,
          lc.layers.map((_, i) => {
            const a = f64(`a${i}`);
            const g = f64(`g${i}`);
            const factors = { k: sqrtInt(a.length, 'A'), c: sqrtInt(g.length, 'G'), a, g };
            return arrays.has(`b${i}`) ? { ...factors, bias: f64(`b${i}`) } : factors;
          }),
          header.meta.kfacType === 'reduce' ? 'reduce' : 'expand',
        );
      case 'PMatEKFAC': {
        const blocks = lc.layers.flatMap((_, i) => {
          const uA = f64(`uA${i}`);
          const uG = f64(`uG${i}`);
          const layer = [new EigenBlock(sqrtInt(uA.length, 'U_A'), sqrtInt(uG.length, 'U_G'), uA, uG, f64(`d${i}`))];
          if (!arrays.has(`uB${i}`)) return layer;
          const uB = f64(`uB${i}`);
          return [...layer, new EigenBlock(sqrtInt(uB.length, 'U_B'), 1, uB, Float64Array.of(1), f64(`dB${i}`))];
        });
        // A loaded EKFAC has no data definition: updateDiag needs a freshly computed one.
        return new PMatEKFAC(lc, blocks, header.meta.diagonalSource === 'updated' ? 'updated' : 'derived', null);
      }
      case 'PMatQuasiDiag':
        return PMatQuasiDiag.fromBlocks(lc, lc.layers.map((_, i) => ({ diag: f64(`diag${i}`), cross: arrays.has(`cross${i}`) ? f64(`cross${i}`) : null })));
      case 'PMatEye':
        return new PMatEye(lc, Number(header.meta.scaling));
      default:
        throw new PersistenceError(`load: unknown object kind '${header.kind}'`);
    }
  } catch (e) {
    if (e instanceof PersistenceError) throw e;
    throw new PersistenceError(`load: the file is corrupted (${(e as Error).message})`);
  }
}

/** The model's layers named in the header, with the same kinds and parameter shapes. */
function matchingCollection(header: Header, model: tf.LayersModel): LayerCollection {
  let lc: LayerCollection;
  try {
    lc = LayerCollection.fromLayers(model, header.layers.map((l) => l.id));
  } catch (e) {
    throw new PersistenceError(`load: the saved ${header.kind} does not belong to this model: ${(e as Error).message}`);
  }
  lc.layers.forEach((e, i) => {
    const saved = header.layers[i]!;
    const shapes = e.parameters.map((p) => p.shape.join('x')).join(',');
    if (saved.kind !== e.kind.name || saved.shapes.map((s) => s.join('x')).join(',') !== shapes) {
      throw new PersistenceError(
        `load: layer '${e.id}' of the model (${e.kind.name} [${shapes}]) does not match the saved one (${saved.kind} [${saved.shapes.map((s) => s.join('x')).join(',')}])`,
      );
    }
  });
  return lc;
}

/** Saves `obj` to a file path (Node) or a `{ write(bytes) }` handler. */
export async function save(obj: Saveable, target: SaveTarget): Promise<void> {
  if (!(typeof target === 'string' || (typeof target === 'object' && target !== null && typeof target.write === 'function'))) {
    throw new PersistenceError(`save: 'target' must be a file path or an object with write(bytes), received ${describe(target)}`);
  }
  const bytes = serialize(obj);
  if (typeof target === 'string') {
    const fs = await nodeBuiltin('fs/promises', 'save to a file path');
    await fs.writeFile(target, bytes);
  } else if (target && typeof target.write === 'function') {
    await target.write(bytes);
  } else {
    throw new PersistenceError(`save: 'target' must be a file path or an object with write(bytes), received ${describe(target)}`);
  }
}

/** Loads an object saved with `save` from a file path (Node), bytes or a `{ read() }` handler. */
export async function load(source: LoadSource, model: tf.LayersModel): Promise<Saveable> {
  checkModel(model, 'load');
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    const fs = await nodeBuiltin('fs/promises', 'load from a file path');
    try {
      bytes = new Uint8Array(await fs.readFile(source));
    } catch (e) {
      throw new PersistenceError(`load: cannot read '${source}': ${(e as Error).message}`);
    }
  } else if (source instanceof Uint8Array) {
    bytes = source;
  } else if (source && typeof source.read === 'function') {
    bytes = await source.read();
  } else {
    throw new PersistenceError(`load: 'source' must be a file path, bytes or an object with read(), received ${describe(source)}`);
  }
  return deserialize(bytes, model);
}
