/**
 * Damaged and crafted files. For a saved file of each saveable representation: every truncation
 * point and 300 seeded bit flips give a PersistenceError (or, were a flip harmless, the identical
 * matrix — never a different number), with no tensor left behind. Crafted headers with a valid
 * checksum (what a buggy writer or an attacker produces) are refused field by field: types,
 * ranges, alignment, overlapping or aliasing arrays (an 8 MB file claiming gigabytes allocates
 * nothing), sizes that do not fit the layers, non-finite values named by array.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEye,
  PMatKFAC,
  PMatLowRank,
  PMatMixed,
  PMatQuasiDiag,
  PVector,
  PersistenceError,
  deserialize,
  serialize,
  type PMat,
  type Representation,
  type Saveable,
} from '../../src/index.js';
import { crc32c } from '../../src/persistence/crc32c.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { craft, headerOf, payloadOf, resign, seeded } from '../support/persistence.js';

before(async () => {
  await useTestBackend();
});

/** A saved object of every saveable kind on the MLP 5 → 7 → 4 (d = 74). */
async function savedObjects(model: tf.LayersModel): Promise<Array<{ name: string; bytes: Uint8Array }>> {
  const batches = randomBatches(model, 3, 4);
  const out: Array<{ name: string; bytes: Uint8Array }> = [];
  try {
    for (const rep of [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag] as Array<Representation<PMat>>) {
      const M = (await FIM({ model, loader: batches, representation: rep, workers: 1 })) as PMat;
      if (M instanceof PMatEKFAC) await M.updateDiag(batches);
      out.push({ name: rep.representationName, bytes: serialize(M) });
      M.dispose();
    }
    const first = PVector.fromModel(model).layerCollection.ids()[0]!;
    const mixed = (await FIM({ model, loader: batches, workers: 1, representation: PMatMixed.fromMapping({ default: PMatBlockDiag, byLayerId: { [first]: PMatEKFAC } }) })) as PMat;
    out.push({ name: 'PMatMixed', bytes: serialize(mixed) });
    mixed.dispose();
    const v = PVector.fromModel(model);
    out.push({ name: 'PVector', bytes: serialize(v) });
    const eye = new PMatEye(v.layerCollection, 0.25);
    out.push({ name: 'PMatEye', bytes: serialize(eye) });
    v.dispose();
  } finally {
    disposeBatches(batches);
  }
  return out;
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Loads `bytes`: a PersistenceError (returns its message), or the identical object (returns null); anything else fails. */
function loadsIdenticallyOrRefuses(bytes: Uint8Array, original: Uint8Array, model: tf.LayersModel, what: string): string | null {
  let obj: Saveable;
  try {
    obj = deserialize(bytes, model);
  } catch (e) {
    assert.ok(e instanceof PersistenceError, `${what}: ${(e as Error).name}: ${(e as Error).message}`);
    return (e as Error).message;
  }
  const again = serialize(obj);
  obj.dispose();
  assert.ok(equalBytes(again, original), `${what}: loaded a different object`);
  return null;
}

test('CRC-32C: the check value of "123456789" and chaining', () => {
  const b = new TextEncoder().encode('123456789');
  assert.equal(crc32c(b), 0xe3069283);
  assert.equal(crc32c(b.subarray(3), crc32c(b.subarray(0, 3))), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // Past the 8-byte unrolled loop: 32 bytes of 0xff (RFC 3720 B.4 test vector).
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
});

test('every truncation point and 300 seeded bit flips of a file of each representation: a PersistenceError, never a different number, no leak', async () => {
  const model = mlp();
  const files = await savedObjects(model);
  assert.deepEqual(files.map((f) => f.name).sort(), ['PMatBlockDiag', 'PMatDense', 'PMatDiag', 'PMatEKFAC', 'PMatEye', 'PMatKFAC', 'PMatLowRank', 'PMatMixed', 'PMatQuasiDiag', 'PVector']);
  const n0 = tf.memory().numTensors;
  const random = seeded(13);
  let identical = 0;
  for (const { name, bytes } of files) {
    // The intact file loads.
    assert.equal(loadsIdenticallyOrRefuses(bytes, bytes, model, `${name} intact`), null);
    for (let cut = 0; cut < bytes.length; cut++) {
      const message = loadsIdenticallyOrRefuses(bytes.subarray(0, cut), bytes, model, `${name} cut at ${cut}`);
      assert.ok(message !== null && /truncated|signature/.test(message), `${name} cut at ${cut}: ${message}`);
    }
    for (let k = 0; k < 300; k++) {
      const flipped = bytes.slice();
      const at = Math.floor(random() * bytes.length);
      flipped[at]! ^= 1 << Math.floor(random() * 8);
      if (loadsIdenticallyOrRefuses(flipped, bytes, model, `${name} flip at byte ${at}`) === null) identical++;
    }
  }
  // The checksum covers every byte (padding included), so not one flip goes unnoticed.
  assert.equal(identical, 0);
  assert.equal(tf.memory().numTensors, n0, 'failed loads leave no tensor');
  model.dispose();
});

test('flips in the header of a re-signed file (valid checksum): a PersistenceError or the identical matrix', async () => {
  const model = mlp();
  const files = (await savedObjects(model)).filter((f) => f.name !== 'PMatEye'); // PMatEye's only content is a number in its header
  const n0 = tf.memory().numTensors;
  const random = seeded(29);
  for (const { name, bytes } of files) {
    const start = Math.ceil((24 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true)) / 8) * 8;
    for (let k = 0; k < 200; k++) {
      const flipped = bytes.slice();
      const at = 24 + Math.floor(random() * (start - 24)); // header and its padding
      flipped[at]! ^= 1 << Math.floor(random() * 8);
      loadsIdenticallyOrRefuses(resign(flipped), bytes, model, `${name} re-signed flip at byte ${at}`);
    }
  }
  assert.equal(tf.memory().numTensors, n0);
  model.dispose();
});

test('crafted headers with a valid checksum are refused field by field, naming the culprit', async () => {
  const model = mlp();
  const lc = PVector.fromModel(model).layerCollection;
  const d = lc.numel();
  const diag = new PMatDiag(lc, Float64Array.from({ length: d }, (_, i) => i + 1));
  const base = serialize(diag);
  const header = headerOf(base);
  const payload = payloadOf(base);
  const kfacBytes = await (async () => {
    const batches = randomBatches(model, 2, 4);
    const K = await FIM({ model, loader: batches, representation: PMatKFAC, workers: 1 });
    const E = await FIM({ model, loader: batches, representation: PMatEKFAC, workers: 1 });
    const out = { kfac: serialize(K), ekfac: serialize(E) };
    [K, E].forEach((m) => m.dispose());
    disposeBatches(batches);
    return out;
  })();
  const n0 = tf.memory().numTensors;
  const withHeader = (change: (h: Record<string, any>) => void, bytes = base) => {
    const h = structuredClone(headerOf(bytes)) as Record<string, any>;
    change(h);
    return craft(h, payloadOf(bytes));
  };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['dtype int32', withHeader((h) => (h.arrays[0].dtype = 'int32')), /dtype "int32"/],
    ['offset not aligned', withHeader((h) => (h.arrays[0].offset = 4)), /multiple of 8/],
    ['negative length', withHeader((h) => (h.arrays[0].length = -1)), /integer ≥ 0/],
    ['fractional length', withHeader((h) => (h.arrays[0].length = 2.5)), /integer ≥ 0/],
    ['length past the file', withHeader((h) => (h.arrays[0].length = d + 1)), /truncated/],
    ['length short of the file', withHeader((h) => (h.arrays[0].length = d - 1)), /after the last array/],
    ['unknown field', withHeader((h) => (h.extra = 1)), /unknown field 'extra'/],
    ['unknown kind', withHeader((h) => (h.kind = 'PMatFoo')), /unknown object kind 'PMatFoo'/],
    ['version inside the file', withHeader((h) => (h.version = 3)), /version 3/],
    ['format', withHeader((h) => (h.format = 'other')), /format is "other"/],
    ['array listed twice', withHeader((h) => h.arrays.push({ ...h.arrays[0] })), /listed twice/],
    ['array not in the state', withHeader((h) => (h.state.arrays = [])), /belongs to no part/],
    ['state names a missing array', withHeader((h) => h.state.arrays.push('other')), /does not hold/],
    ['layer listed twice', withHeader((h) => h.layers.push(h.layers[0])), /listed twice/],
    ['layer shape', withHeader((h) => (h.layers[0].shapes[0] = [7, 5])), /does not match this model's layers/],
    ['layer missing from the model', withHeader((h) => (h.layers[0].id = 'nope')), /does not belong to this model/],
    ['meta value not a scalar', withHeader((h) => (h.state.meta.x = [1])), /not a string, finite number/],
    ['meta field the object does not hold', withHeader((h) => (h.state.meta.x = 1)), /meta field 'x', which a PMatDiag does not hold/],
    ['parts in a PMatDiag', withHeader((h) => (h.state.parts = [{ kind: 'PMatEye', layerIds: [h.layers[0].id], state: { meta: { scaling: 1 }, arrays: [] } }])), /1 parts, which a PMatDiag does not hold/],
    ['array the object does not hold', craft({ ...header, state: { meta: {}, arrays: ['diag', 'extra'] }, arrays: [...(header.arrays as object[]), { name: 'extra', dtype: 'float64', length: 1, offset: Math.ceil((d * 8) / 8) * 8 }] }, Uint8Array.from([...payload, ...new Uint8Array(8)])), /array 'extra', which a PMatDiag does not hold/],
    ['header not an object', craft([1, 2], payload), /not an object/],
    ['kfacType bogus', withHeader((h) => (h.state.meta.kfacType = 'bogus'), kfacBytes.kfac), /'kfacType' must be one of 'expand', 'reduce', found "bogus"/],
    ['diagonalSource bogus', withHeader((h) => (h.state.meta.diagonalSource = 'bogus'), kfacBytes.ekfac), /'diagonalSource' must be one of/],
    ['definition bogus', withHeader((h) => (h.state.meta['definition.variant'] = 'classif_bogus'), kfacBytes.ekfac), /recorded definition/],
    ['KFAC factor of the wrong size', withHeader((h) => {
      // a0 and g0 swapped in size: the same bytes, a different split.
      const [a, g] = [h.arrays[0], h.arrays[1]];
      [a.name, g.name] = [g.name, a.name];
    }, kfacBytes.kfac), /array 'a0' has \d+ values, expected/],
  ];
  for (const [what, bytes, pattern] of cases) {
    assert.throws(() => deserialize(bytes, model), (e: Error) => e instanceof PersistenceError && pattern.test(e.message), what);
  }
  // The header length field past the file's end (checksum valid).
  const longHeader = base.slice();
  new DataView(longHeader.buffer).setUint32(8, base.length, true);
  assert.throws(() => deserialize(resign(longHeader), model), (e: Error) => e instanceof PersistenceError && /header of/.test(e.message));
  // Non-zero padding after the header.
  const padded = base.slice();
  const headerEnd = 24 + new DataView(base.buffer).getUint32(8, true);
  if (headerEnd % 8 !== 0) {
    padded[headerEnd] = 1;
    assert.throws(() => deserialize(resign(padded), model), (e: Error) => e instanceof PersistenceError && /padding after the header/.test(e.message));
  }
  // Non-finite values, named by array.
  for (const bad of [NaN, Infinity, -Infinity]) {
    const p = payload.slice();
    new DataView(p.buffer).setFloat64(8 * 3, bad, true);
    assert.throws(() => deserialize(craft(header, p), model), (e: Error) => e instanceof PersistenceError && new RegExp(`array 'diag' holds ${bad} at index 3`).test(e.message));
  }
  assert.equal(tf.memory().numTensors, n0, 'no tensor left by any refusal');
  diag.dispose();
  model.dispose();
});

test('an 8 MB file whose header makes 300 arrays alias the same bytes is refused without allocating', () => {
  const model = mlp();
  const payload = new Uint8Array(8 * 1024 * 1024);
  const arrays = Array.from({ length: 300 }, (_, i) => ({ name: `x${i}`, dtype: 'float64', length: payload.length / 8, offset: 0 }));
  const bytes = craft({ format: 'nngeometry', version: 2, kind: 'PMatDiag', layers: [], state: { meta: {}, arrays: arrays.map((a) => a.name) }, arrays }, payload);
  const before = process.memoryUsage().arrayBuffers;
  assert.throws(() => deserialize(bytes, model), (e: Error) => e instanceof PersistenceError && /array 'x1' starts at payload byte 0, expected 8388608/.test(e.message));
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 64 * 1024 * 1024, `a refused load allocated ${(grown / 2 ** 20).toFixed(0)} MB`);
  // Sizes that cannot fit the file are refused before the payload is read, too.
  const huge = craft({ format: 'nngeometry', version: 2, kind: 'PMatDiag', layers: [], state: { meta: {}, arrays: ['x'] }, arrays: [{ name: 'x', dtype: 'float64', length: 2 ** 40, offset: 0 }] }, payload);
  assert.throws(() => deserialize(huge, model), (e: Error) => e instanceof PersistenceError && /truncated/.test(e.message));
  model.dispose();
});
