/**
 * Models saved to disk and loaded back give the same Fisher as the original (rel. 1e-6): through
 * saveModel/loadModel (a directory, or name.json + name.weights.bin), the file:// scheme, sharded
 * weights, in-memory artifacts (tf.io.fromMemory style) and the files of a browser save; bad
 * paths and files give InvalidArgumentError naming the file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { FIM, InvalidArgumentError, PMatDense } from '../../src/index.js';
import { loadModel, saveModel } from '../../src/io/load-model.js';
import { nodeFileSystem, registerFileSystemScheme } from '../../src/io/node-file-system.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';
import * as M from '../support/layer-models.js';

const TOL = 1e-6;
let dir: string;

before(async () => {
  await useTestBackend();
  dir = await mkdtemp(join(tmpdir(), 'nngeometry-io-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** max relative Frobenius difference of the two models' dense Fisher matrices on the same data. */
async function fisherDifference(a: tf.LayersModel, b: tf.LayersModel): Promise<number> {
  const batches = M.layerBatches(a, 4, 4);
  const Fa = await FIM({ model: a, loader: batches, representation: PMatDense });
  const Fb = await FIM({ model: b, loader: batches, representation: PMatDense });
  const err = relativeError(Fb.values(), Fa.values());
  [Fa, Fb].forEach((F) => F.dispose());
  M.disposeLayerBatches(batches);
  return err;
}

for (const [name, make] of [
  ['residual CNN with BatchNormalization', M.residualCnn],
  ['transformer block (custom layer, Dot, Embedding)', M.transformerBlock],
  ['LSTM classifier', M.lstmClassifier],
] as const) {
  test(`saveModel then loadModel gives the same Fisher (1e-6): ${name}`, async () => {
    const model = make();
    const path = join(dir, name.split(' ')[0]!);
    await saveModel(model, path);
    const loaded = await loadModel(path);
    assert.deepEqual(loaded.trainableWeights.map((w) => w.shape), model.trainableWeights.map((w) => w.shape));
    const err = await fisherDifference(model, loaded);
    assert.ok(err <= TOL, `relative error ${err}`);
    [model, loaded].forEach((m) => m.dispose());
  });
}

test('a .json path writes name.json + name.weights.bin; file:// URLs work through tf.loadLayersModel', async () => {
  const model = M.lstmClassifier();
  await saveModel(model, join(dir, 'lstm.json'));
  assert.ok((await readFile(join(dir, 'lstm.weights.bin'))).byteLength > 0);
  const fromJson = await loadModel(`file://${join(dir, 'lstm.json')}`);
  registerFileSystemScheme();
  registerFileSystemScheme(); // idempotent
  await model.save(`file://${join(dir, 'via-scheme')}`);
  const fromScheme = await tf.loadLayersModel(`file://${join(dir, 'via-scheme', 'model.json')}`);
  for (const m of [fromJson, fromScheme]) assert.ok((await fisherDifference(model, m)) <= TOL);
  [model, fromJson, fromScheme].forEach((m) => m.dispose());
});

test('weights sharded over several files (as the converter writes them) are concatenated in manifest order', async () => {
  const model = M.residualCnn();
  const path = join(dir, 'sharded');
  await saveModel(model, path);
  const json = JSON.parse(await readFile(join(path, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const bytes = await readFile(join(path, 'weights.bin'));
  const cut = 4 * Math.floor(bytes.byteLength / 8);
  await writeFile(join(path, 'group1-shard1of2.bin'), bytes.subarray(0, cut));
  await writeFile(join(path, 'group1-shard2of2.bin'), bytes.subarray(cut));
  json.weightsManifest[0]!.paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
  await writeFile(join(path, 'model.json'), JSON.stringify(json));
  const loaded = await loadModel(join(path, 'model.json'));
  assert.ok((await fisherDifference(model, loaded)) <= TOL);
  [model, loaded].forEach((m) => m.dispose());
});

test('browser formats: in-memory artifacts (tf.io.fromMemory style) and the JSON + weights files of a downloads:// save', async () => {
  const model = M.transformerBlock();
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const fromMemory = await loadModel(artifacts!);
  // what a browser download produces: name.json naming ./name.weights.bin, and that file
  await saveModel(model, join(dir, 'browser', 'name.json'));
  const text = await readFile(join(dir, 'browser', 'name.json'), 'utf8');
  const bin = await readFile(join(dir, 'browser', 'name.weights.bin'));
  const fromFiles = await loadModel({ modelJSON: text, weights: { 'name.weights.bin': new Uint8Array(bin) } });
  const fromBytes = await loadModel({ modelJSON: JSON.parse(text) as tf.io.ModelJSON, weights: [new Uint8Array(bin)] });
  for (const m of [fromMemory, fromFiles, fromBytes]) assert.ok((await fisherDifference(model, m)) <= TOL);
  await assert.rejects(() => loadModel({ modelJSON: text, weights: { 'other.bin': new Uint8Array(bin) } }), (e: Error) => e instanceof InvalidArgumentError && /name\.weights\.bin/.test(e.message));
  [model, fromMemory, fromFiles, fromBytes].forEach((m) => m.dispose());
});

test('missing, truncated or malformed files give InvalidArgumentError naming the file', async () => {
  await assert.rejects(() => loadModel(join(dir, 'nothing-here')), (e: Error) => e instanceof InvalidArgumentError && /nothing-here/.test(e.message));
  const model = M.lstmClassifier();
  const path = join(dir, 'broken');
  await saveModel(model, path);
  const bytes = await readFile(join(path, 'weights.bin'));
  await writeFile(join(path, 'weights.bin'), bytes.subarray(0, bytes.byteLength - 4));
  await assert.rejects(() => loadModel(path), (e: Error) => e instanceof InvalidArgumentError && /bytes/.test(e.message));
  await rm(join(path, 'weights.bin'));
  await assert.rejects(() => loadModel(path), (e: Error) => e instanceof InvalidArgumentError && /weights\.bin/.test(e.message));
  await writeFile(join(path, 'model.json'), '{ not json');
  await assert.rejects(() => loadModel(path), (e: Error) => e instanceof InvalidArgumentError && /not valid JSON/.test(e.message));
  await assert.rejects(() => loadModel(42 as never), InvalidArgumentError);
  assert.throws(() => nodeFileSystem(''), InvalidArgumentError);
  model.dispose();
});
