/**
 * loadModel reads only inside the model's folder, only regular files, only the bytes the manifest
 * describes, and turns every tfjs failure into an InvalidArgumentError that leaves no tensor or
 * variable behind. Each test crafts the model.json an attacker (or an unlucky copy) would produce.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { InvalidArgumentError, loadModel, saveModel } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';

let root: string;
let model: tf.LayersModel;
/** The model.json saveModel wrote for `model`, and the size of its weights.bin. */
let json: tf.io.ModelJSON;
let weightBytes: number;

before(async () => {
  await useTestBackend();
  root = await mkdtemp(join(tmpdir(), 'nngeometry-confine-'));
  model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 3, inputShape: [4], kernelInitializer: tf.initializers.randomNormal({ seed: 1 }), biasInitializer: tf.initializers.randomNormal({ seed: 2 }) }),
      tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.randomNormal({ seed: 3 }), biasInitializer: tf.initializers.randomNormal({ seed: 4 }) }),
    ],
  });
  await saveModel(model, join(root, 'good'));
  json = JSON.parse(await readFile(join(root, 'good', 'model.json'), 'utf8')) as tf.io.ModelJSON;
  weightBytes = (await readFile(join(root, 'good', 'weights.bin'))).byteLength;
});

after(async () => {
  model.dispose();
  await rm(root, { recursive: true, force: true });
});

/** A folder `name` holding model.json (from `mutate` applied to the good one) and, unless told otherwise, the good weights.bin. */
async function craft(name: string, mutate: (j: tf.io.ModelJSON) => void, withWeights = true): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const j = structuredClone(json);
  mutate(j);
  await writeFile(join(dir, 'model.json'), JSON.stringify(j));
  if (withWeights) await writeFile(join(dir, 'weights.bin'), await readFile(join(root, 'good', 'weights.bin')));
  return dir;
}

/** Asserts that loading `dir` fails with an InvalidArgumentError matching `pattern`, leaving tensors and variables as they were. */
async function refused(dir: string, pattern: RegExp, options?: { allowMissingWeights?: boolean }): Promise<string> {
  const tensors = tf.memory().numTensors;
  const variables = Object.keys(tf.engine().registeredVariables).length;
  let message = '';
  await assert.rejects(
    () => loadModel(dir, options),
    (e: Error) => {
      assert.ok(e instanceof InvalidArgumentError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, pattern);
      message = e.message;
      return true;
    },
  );
  assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
  assert.equal(Object.keys(tf.engine().registeredVariables).length, variables, 'variables left behind');
  return message;
}

/** The weights of `m` as flat arrays, in order. */
const weightsOf = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));

test('a saved model loads with exactly its saved weights (bitwise), and leaves only its own variables', async () => {
  const tensors = tf.memory().numTensors;
  const loaded = await loadModel(join(root, 'good'));
  assert.deepEqual(weightsOf(loaded), weightsOf(model));
  assert.ok(weightsOf(loaded).flat().some((x) => x !== 0), 'weights are the saved values, not the zero fast initialisation');
  loaded.dispose();
  assert.equal(tf.memory().numTensors, tensors);
});

test("a '../' weights path is refused before any read, without revealing the outside file's size", async () => {
  // The outside file has exactly the manifest's size: only the path check can refuse it.
  await writeFile(join(root, 'secret.bin'), new Uint8Array(weightBytes).fill(7));
  const dir = await craft('dotdot', (j) => (j.weightsManifest[0]!.paths = ['../secret.bin']), false);
  const message = await refused(dir, /weights path '\.\.\/secret\.bin' contains '\.\.'/);
  assert.doesNotMatch(message, new RegExp(`\\b${weightBytes}\\b`), 'no size of a file outside the folder');
  const nested = await craft('dotdot-nested', (j) => (j.weightsManifest[0]!.paths = ['sub/../../secret.bin']), false);
  await refused(nested, /contains '\.\.'/);
});

test('absolute weights paths (POSIX, Windows, URL schemes) are refused', async () => {
  for (const [i, p] of [join(root, 'good', 'weights.bin'), 'C:\\weights.bin', 'file:///etc/passwd', 'http://example.com/w.bin'].entries()) {
    const dir = await craft(`absolute-${i}`, (j) => (j.weightsManifest[0]!.paths = [p]), false);
    await refused(dir, /is absolute/);
  }
});

test('a symlink leading out of the folder is refused; one staying inside is followed', async () => {
  const out = await craft('symlink-out', () => undefined, false);
  await symlink(join(root, 'secret.bin'), join(out, 'weights.bin'));
  await refused(out, /leads out of the folder through a symbolic link/);
  const dev = await craft('symlink-dev', () => undefined, false);
  await symlink('/dev/zero', join(dev, 'weights.bin'));
  await refused(dev, /leads out of the folder/);
  const inside = await craft('symlink-in', (j) => (j.weightsManifest[0]!.paths = ['link.bin']));
  await symlink('weights.bin', join(inside, 'link.bin'));
  const loaded = await loadModel(inside);
  assert.deepEqual(weightsOf(loaded), weightsOf(model));
  loaded.dispose();
});

test('non-regular files inside the folder (a fifo, a folder) are refused without blocking', async () => {
  const fifo = await craft('fifo', () => undefined, false);
  execFileSync('mkfifo', [join(fifo, 'weights.bin')]);
  await refused(fifo, /is not a regular file \(a fifo\)/);
  const folder = await craft('folder', () => undefined, false);
  await mkdir(join(folder, 'weights.bin'));
  await refused(folder, /is not a regular file \(a folder\)/);
  const jsonFifo = join(root, 'json-fifo');
  await mkdir(jsonFifo);
  execFileSync('mkfifo', [join(jsonFifo, 'model.json')]);
  await refused(jsonFifo, /is not a regular file/);
});

test('weight files longer or shorter than the manifest are refused before reading', async () => {
  const longer = await craft('longer', () => undefined);
  await appendFile(join(longer, 'weights.bin'), new Uint8Array(4));
  await refused(longer, new RegExp(`hold ${weightBytes + 4} bytes but its manifest describes ${weightBytes}`));
  const shorter = await craft('shorter', () => undefined);
  await writeFile(join(shorter, 'weights.bin'), (await readFile(join(shorter, 'weights.bin'))).subarray(0, weightBytes - 4));
  await refused(shorter, new RegExp(`hold ${weightBytes - 4} bytes but its manifest describes ${weightBytes}`));
});

test('a weights file from another save of the same size (a torn save) is refused by the SHA-256 model.json records; files without one still load', async () => {
  // The same architecture with other values: sizes agree, so only the hash can tell.
  const other = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4] }), tf.layers.dense({ units: 2 })] });
  const otherDir = join(root, 'other-values');
  await saveModel(other, otherDir);
  other.dispose();
  const torn = await craft('torn', () => undefined, false);
  await writeFile(join(torn, 'weights.bin'), await readFile(join(otherDir, 'weights.bin')));
  await refused(torn, /weight files of manifest group 0 \(weights\.bin\) do not match the SHA-256 that model\.json records.*save the model again/);
  // A single flipped byte is caught as well.
  const flipped = await craft('flipped', () => undefined);
  const bytes = await readFile(join(flipped, 'weights.bin'));
  bytes[5] = bytes[5]! ^ 1;
  await writeFile(join(flipped, 'weights.bin'), bytes);
  await refused(flipped, /do not match the SHA-256/);
  const badField = await craft('bad-sha', (j) => ((j.weightsManifest[0] as { sha256?: unknown }).sha256 = 'ABC'));
  await refused(badField, /group 0 has sha256 the string "ABC".*64 lowercase hex digits/);
  // tfjs's own writers record no hash: such a pair loads as before.
  const foreign = await craft('no-sha', (j) => delete (j.weightsManifest[0] as { sha256?: unknown }).sha256);
  const loaded = await loadModel(foreign);
  assert.deepEqual(weightsOf(loaded), weightsOf(model));
  loaded.dispose();
});

test('a model.json without weights is refused unless allowMissingWeights', async () => {
  const none = await craft('no-manifest', (j) => delete (j as Partial<tf.io.ModelJSON>).weightsManifest, false);
  await refused(none, /no weights in its 'weightsManifest' but its topology has 4 weights.*allowMissingWeights: true/);
  const empty = await craft('empty-manifest', (j) => (j.weightsManifest = []), false);
  await refused(empty, /no weights in its 'weightsManifest'/);
  const emptyGroup = await craft('empty-group', (j) => (j.weightsManifest = [{ paths: [], weights: [] }]), false);
  await refused(emptyGroup, /no weights in its 'weightsManifest'/);
  const loaded = await loadModel(none, { allowMissingWeights: true });
  assert.equal(loaded.weights.length, 4);
  loaded.dispose();
  await assert.rejects(() => loadModel(none, { allowMissingWeight: true } as never), /did you mean 'allowMissingWeights'/);
});

test('every tfjs failure is an InvalidArgumentError naming the file and the way out, with nothing left behind', async () => {
  const layer0 = (j: tf.io.ModelJSON) => (j.modelTopology as { config: { layers: Array<{ class_name: string; config: Record<string, unknown> }> } }).config.layers[0]!;
  const cases: Array<[string, (j: tf.io.ModelJSON) => void, RegExp]> = [
    ['unknown layer class', (j) => (layer0(j).class_name = 'MyCustomLayer'), /Unknown layer: MyCustomLayer.*tf\.serialization\.registerClass/],
    ['shape mismatch', (j) => (layer0(j).config.units = 5), /Shape mismatch.*do not belong to this topology/],
    ['negative units', (j) => (layer0(j).config.units = -3), /units to be a positive integer/],
    ['negative manifest shape', (j) => (j.weightsManifest[0]!.weights[0]!.shape = [-4, 3]), /shape \[-4, 3\]; every dimension must be an integer ≥ 0/],
    ['string dtype', (j) => ((j.weightsManifest[0]!.weights[0] as { dtype: string }).dtype = 'string'), /dtype the string "string"/],
    ['renamed weight', (j) => (j.weightsManifest[0]!.weights[3]!.name = 'zzz'), /no target variable: zzz/],
    ['weight named twice', (j) => (j.weightsManifest[0]!.weights[3]!.name = j.weightsManifest[0]!.weights[1]!.name), /appears twice/],
    ['topology garbage', (j) => (j.modelTopology = { foo: 1 }), /could not be rebuilt/],
    // The first layer is built (its variables created) before the second fails to fit it.
    ['a layer that fails after another was built', (j) => {
      const layers = (j.modelTopology as { config: { layers: Array<{ class_name: string; config: Record<string, unknown> }> } }).config.layers;
      layers[1] = { class_name: 'Conv2D', config: { name: 'bad_conv', filters: 2, kernel_size: [3, 3] } };
    }, /incompatible with layer bad_conv/],
    ['manifest not an array', (j) => ((j as { weightsManifest: unknown }).weightsManifest = { paths: [] }), /'weightsManifest' must be an array/],
  ];
  for (const [name, mutate, pattern] of cases) {
    const dir = await craft(`tfjs-${name.replace(/ /g, '-')}`, mutate);
    const message = await refused(dir, pattern);
    assert.match(message, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), `${name}: names the file`);
  }
});

test('in-memory artifacts get the same checks (weight data longer than the specs; a graph-model topology)', async () => {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
  const data = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts!.weightData!));
  const longer = new Uint8Array(data.length + 8);
  longer.set(data);
  await assert.rejects(() => loadModel({ ...artifacts!, weightData: longer.buffer }), /holds \d+ bytes but its manifest describes/);
  await assert.rejects(() => loadModel({ ...artifacts!, modelTopology: new ArrayBuffer(8) }), /no JSON 'modelTopology'/);
  const loaded = await loadModel(artifacts!);
  assert.deepEqual(weightsOf(loaded), weightsOf(model));
  loaded.dispose();
});

test('an http(s) model.json: weights fetched only from its origin and folder', async () => {
  const files: Record<string, Uint8Array | string> = {
    '/models/m/model.json': JSON.stringify(json),
    '/models/m/weights.bin': await readFile(join(root, 'good', 'weights.bin')),
    '/models/evil/model.json': JSON.stringify({ ...json, weightsManifest: [{ ...json.weightsManifest[0]!, paths: ['../secret.bin'] }] }),
    '/models/secret.bin': new Uint8Array(weightBytes),
    '/models/long/model.json': JSON.stringify(json),
    '/models/long/weights.bin': new Uint8Array(weightBytes + 1024 * 1024),
  };
  const requested: string[] = [];
  const server: Server = createServer((req, res) => {
    requested.push(req.url!);
    const body = files[req.url!];
    res.writeHead(body === undefined ? 404 : 200).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const loaded = await loadModel(`${base}/models/m/model.json`);
    assert.deepEqual(weightsOf(loaded), weightsOf(model));
    loaded.dispose();
    await assert.rejects(() => loadModel(`${base}/models/evil/model.json`), /outside the model's folder/);
    assert.ok(!requested.includes('/models/secret.bin'), `requested: ${requested.join(', ')}`);
    await assert.rejects(() => loadModel(`${base}/models/long/model.json`), (e: Error) => e instanceof InvalidArgumentError && new RegExp(`sends more than the ${weightBytes} bytes its manifest allows`).test(e.message));
  } finally {
    server.close();
  }
});

test('saveModel writes through a temporary file and a rename: no temporary file is left, and a failed save leaves the previous files whole', async () => {
  const dir = join(root, 'atomic');
  await saveModel(model, dir);
  const before = await Promise.all(['model.json', 'weights.bin'].map((f) => readFile(join(dir, f))));
  await saveModel(model, dir, { userDefinedMetadata: { run: 2 } });
  assert.deepEqual((await readdir(dir)).sort(), ['model.json', 'weights.bin'], 'no temporary file left');
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')).userDefinedMetadata, { run: 2 });
  // A save whose model.json cannot be renamed into place (a folder is in the way) fails and leaves weights.bin whole.
  const blocked = join(root, 'blocked');
  await saveModel(model, blocked);
  await rm(join(blocked, 'model.json'));
  await mkdir(join(blocked, 'model.json', 'x'), { recursive: true });
  await assert.rejects(() => saveModel(model, blocked));
  assert.deepEqual(await readFile(join(blocked, 'weights.bin')), before[1]);
  assert.deepEqual((await readdir(blocked)).sort(), ['model.json', 'weights.bin'], 'the failed temporary file was removed');
});

test('a save killed at several points leaves each file whole: model.json parses and weights.bin is one version entirely', async () => {
  const { spawn } = await import('node:child_process');
  const dir = join(root, 'killed');
  const script = new URL('./support/save-loop.ts', import.meta.url).pathname;
  for (const delayMs of [0, 40, 120]) {
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, delayMs));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const meta = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    assert.ok([1, 2].includes((meta.userDefinedMetadata as { version: number }).version));
    const bytes = new Float32Array((await readFile(join(dir, 'weights.bin'))).buffer.slice(0));
    assert.equal(bytes.length, 2000 * 2000, `killed after ${delayMs} ms: weights.bin whole`);
    assert.ok(bytes.every((x) => x === bytes[0]) && (bytes[0] === 1 || bytes[0] === 2), `killed after ${delayMs} ms: one version, not a mixture`);
  }
});

test('a reader polling during repeated saves only ever sees a whole weights.bin of one version', async () => {
  const dir = join(root, 'watched');
  const big = tf.sequential({ layers: [tf.layers.dense({ units: 1000, inputShape: [1000], useBias: false })] });
  const versions = [1, 2].map((v) => big.weights.map((w) => tf.fill(w.shape as number[], v)));
  big.setWeights(versions[1]!);
  await saveModel(big, dir);
  const seen: string[] = [];
  let stop = false;
  let reads = 0;
  const reader = (async () => {
    while (!stop) {
      const bytes = await readFile(join(dir, 'weights.bin'));
      const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      reads++;
      if (values.length !== 1000 * 1000 || !values.every((x) => x === values[0])) seen.push(`${bytes.byteLength} bytes`);
    }
  })();
  for (let round = 0; round < 8; round++) {
    big.setWeights(versions[round % 2]!);
    await saveModel(big, dir);
  }
  stop = true;
  await reader;
  assert.ok(reads > 1, `${reads} reads`);
  assert.deepEqual(seen, [], `partial files seen in ${reads} reads`);
  tf.dispose(versions.flat());
  big.dispose();
});
