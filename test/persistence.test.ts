/**
 * save / load round-trip every stored representation and PVector exactly (bitwise on the float64
 * data; the loaded object answers mv identically), to a file and through a handler; truncated,
 * corrupted, wrong-version and mismatched-model data get a PersistenceError.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../src/tf.js';
import {
  FIM,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEye,
  PMatKFAC,
  PMatLowRank,
  PMatQuasiDiag,
  PVector,
  PersistenceError,
  deserialize,
  load,
  save,
  serialize,
  type PMat,
  type Representation,
} from '../src/index.js';
import { useTestBackend } from './support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from './support/models.js';

before(async () => {
  await useTestBackend();
});

const values = (t: tf.Tensor) => {
  const a = Array.from(t.dataSync());
  t.dispose();
  return a;
};

test('every stored representation and PVector round-trips exactly through bytes, a file and a handler', async () => {
  const model = cnn();
  const batches = randomBatches(model, 6, 3);
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-'));
  const reps: Array<Representation<PMat>> = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag];
  const v = PVector.random(PVector.fromModel(model).layerCollection, 3);
  const objects: PMat[] = [];
  for (const rep of reps) objects.push(await FIM({ model, loader: batches, representation: rep }));
  const ekfac = objects[5] as PMatEKFAC;
  await ekfac.updateDiag(batches);
  objects.push(new PMatEye(v.layerCollection, 0.25));
  for (const M of objects) {
    const file = join(dir, `${M.constructor.name}.nng`);
    await save(M as never, file);
    let stored: Uint8Array | undefined;
    await save(M as never, { write: (b) => void (stored = b) });
    const fromFile = (await load(file, model)) as PMat;
    const fromHandler = (await load({ read: () => stored! }, model)) as PMat;
    assert.deepEqual(serialize(fromFile as never), serialize(M as never), `${M.constructor.name}: bytes differ after a file round trip`);
    assert.equal(fromFile.constructor, M.constructor);
    assert.deepEqual(values(fromHandler.mv(v).toFlat()), values(M.mv(v).toFlat()), `${M.constructor.name}: mv differs`);
    [fromFile, fromHandler].forEach((o) => o.dispose());
  }
  const w = deserialize(serialize(v), model) as PVector;
  assert.deepEqual(values(w.toFlat()), values(v.toFlat()));
  [...objects, v, w].forEach((o) => o.dispose());
  disposeBatches(batches);
  model.dispose();
});

test('truncated, corrupted, wrong-version and mismatched-model files get a PersistenceError', async () => {
  const model = mlp();
  const other = cnn();
  const batches = randomBatches(model, 4, 4);
  const F = await FIM({ model, loader: batches, representation: PMatKFAC });
  const bytes = serialize(F);
  const n0 = tf.memory().numTensors;
  assert.throws(() => deserialize(bytes.slice(0, bytes.length - 9), model), (e: Error) => e instanceof PersistenceError && /truncated/.test(e.message));
  assert.throws(() => deserialize(bytes.slice(0, 30), model), (e: Error) => e instanceof PersistenceError && /truncated/.test(e.message));
  const noMagic = bytes.slice();
  noMagic[0] = 0;
  assert.throws(() => deserialize(noMagic, model), /signature/);
  const flipped = bytes.slice();
  flipped[bytes.length - 3]! ^= 0x10;
  assert.throws(() => deserialize(flipped, model), (e: Error) => e instanceof PersistenceError && /checksum/.test(e.message));
  const future = bytes.slice();
  future.set(new TextEncoder().encode('NNGEOM09'), 0);
  assert.throws(() => deserialize(future, model), (e: Error) => e instanceof PersistenceError && /version 9/.test(e.message));
  assert.throws(() => deserialize(bytes, other), (e: Error) => e instanceof PersistenceError && /does not belong to this model|does not match/.test(e.message));
  await assert.rejects(() => load('/nonexistent/file.nng', model), /cannot read/);
  assert.throws(() => serialize({} as never), /cannot be saved/);
  assert.equal(tf.memory().numTensors, n0, 'failed loads leave no tensor');
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-'));
  writeFileSync(join(dir, 'x.nng'), bytes);
  assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'x.nng'))), bytes);
  F.dispose();
  disposeBatches(batches);
  model.dispose();
  other.dispose();
});

test('merging the results of two passes over disjoint data equals one pass over all of it (1e-5), also after save/load', async () => {
  const { mergePartial } = await import('../src/index.js');
  const model = cnn();
  const batches = randomBatches(model, 10, 4); // 4 + 4 + 2 examples
  const reps: Array<Representation<PMat>> = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatQuasiDiag];
  for (const rep of reps) {
    const whole = await FIM({ model, loader: batches, representation: rep });
    const first = await FIM({ model, loader: batches.slice(0, 1), representation: rep });
    const restLive = await FIM({ model, loader: batches.slice(1), representation: rep });
    const rest = deserialize(serialize(restLive as never), model) as PMat;
    const merged = mergePartial([{ matrix: first as never, examples: 4 }, { matrix: rest as never, examples: 6 }]) as PMat;
    const a = values(merged.toTensor());
    const b = values(whole.toTensor());
    const err = Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0) / b.reduce((s, x) => s + x * x, 0));
    assert.ok(err < 1e-5, `${rep.representationName}: relative error ${err}`);
    [whole, first, restLive, rest, merged].forEach((m) => m.dispose());
  }
  assert.throws(() => mergePartial([]), /non-empty/);
  disposeBatches(batches);
  model.dispose();
});
