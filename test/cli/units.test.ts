/**
 * The CLI's building blocks in-process: data files, the progress bar, Lanczos against exact
 * eigenvalues, stored bytes against the layouts, and no tensor left behind by the runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatDense, PMatLowRank } from '../../src/index.js';
import { readExamples, readLabels } from '../../src/cli/data-io.js';
import { encodeIdxUint8, parseIdx } from '../../src/cli/idx.js';
import { ProgressBar } from '../../src/cli/progress.js';
import { topEigenvalue, eigenvaluesDescending } from '../../src/cli/spectrum.js';
import { REPRESENTATIONS, computeFisher } from '../../src/cli/representations.js';
import { storageBytes } from '../../src/cli/storage.js';
import { pickSubnetwork } from '../../src/cli/measure.js';
import { runSubnetwork, runWholeModel } from '../../src/cli/runs.js';
import { loadBundledData, loadBundledModel } from '../../src/cli/bundled.js';
import { computeDemo } from '../../demo/compute.js';
import { useTestBackend } from '../support/backend.js';

const dir = mkdtempSync(join(tmpdir(), 'nngeometry-units-'));

test('data files: IDX (gzipped), CSV with a header, JSON arrays and {xs, ys}', async () => {
  const idx = encodeIdxUint8([2, 2, 3], Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]));
  assert.deepEqual(parseIdx(idx, 'x').shape, [2, 2, 3]);
  writeFileSync(join(dir, 'a.idx.gz'), gzipSync(idx));
  const a = await readExamples(join(dir, 'a.idx.gz'), '--data');
  assert.deepEqual([a.n, a.exampleShape, a.uint8, a.values[11]], [2, [2, 3], true, 255]);
  writeFileSync(join(dir, 'b.csv'), 'x1,x2\n1,2\n3.5,-4\n');
  const b = await readExamples(join(dir, 'b.csv'), '--data');
  assert.deepEqual([b.n, b.exampleShape, Array.from(b.values)], [2, [2], [1, 2, 3.5, -4]]);
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ xs: [[[1, 2]], [[3, 4]]], ys: [1, 0] }));
  const c = await readExamples(join(dir, 'c.json'), '--data');
  assert.deepEqual([c.n, c.exampleShape, Array.from(c.labels!)], [2, [1, 2], [1, 0]]);
  writeFileSync(join(dir, 'l.csv'), '3\n1\n');
  assert.deepEqual(Array.from((await readLabels(join(dir, 'l.csv'))).labels), [3, 1]);
  writeFileSync(join(dir, 'ragged.csv'), '1,2\n3\n');
  await assert.rejects(() => readExamples(join(dir, 'ragged.csv'), '--data'), /row 2 has 1 columns/);
  assert.throws(() => parseIdx(idx.subarray(0, idx.length - 1), 'cut'), /file has/);
});

test('progress bar: silent under a second, one line per half on a pipe, a new pass restarts it', () => {
  let now = 0;
  const realNow = performance.now;
  performance.now = () => now;
  try {
    const lines: string[] = [];
    const bar = new ProgressBar('F', { total: 100, stream: { write: (s: string) => lines.push(s), isTTY: false } });
    bar.onProgress({ examplesDone: 50 });
    now = 500;
    bar.onProgress({ examplesDone: 100 });
    assert.deepEqual(lines, [], 'a pass under a second prints nothing');
    now = 600;
    bar.onProgress({ examplesDone: 10 }); // second pass
    now = 1700;
    bar.onProgress({ examplesDone: 50 });
    now = 2600;
    bar.onProgress({ examplesDone: 100 });
    bar.finish();
    assert.deepEqual(lines, ['F (pass 2) [############............] 50/100 examples, 1.1 s\n', 'F (pass 2) [########################] 100/100 examples, 2.0 s\n']);
    const tty: string[] = [];
    const bar2 = new ProgressBar('G', { stream: { write: (s: string) => tty.push(s), isTTY: true }, delayMs: 0 });
    bar2.onProgress({ examplesDone: 3, examplesTotal: 6 });
    bar2.finish();
    assert.deepEqual(tty, ['\rG [############............] 3/6 examples, 0.0 s', '\n']);
  } finally {
    performance.now = realNow;
  }
});

test('topEigenvalue (eigsh): the top eigenvalue of a FIM within 1e-4 of the exact one, in a few products', async () => {
  await useTestBackend('wasm');
  const model = await loadBundledModel('fmnist-mlp');
  const { xs } = await loadBundledData({ inputShape: [784], count: 64 });
  const lc = LayerCollection.fromLayers(model, ['logits']);
  const F = await FIM({ model, loader: [{ xs }], representation: PMatDense, layerCollection: lc });
  const exact = eigenvaluesDescending(F.values(), lc.numel())[0]!;
  const before = tf.memory().numTensors;
  const r = await topEigenvalue(F, { tol: 1e-4, maxIterations: 40 });
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  assert.ok(Math.abs(r.value - exact) <= 1e-4 * exact, `${r.value} vs ${exact}`);
  assert.ok(r.iterations < 40);
  F.dispose();
  xs.dispose();
  model.dispose();
});

test('stored bytes: what each representation holds, by its layout; no tensor left by the runs', async () => {
  await useTestBackend('wasm');
  const model = await loadBundledModel('fmnist-cnn');
  const { xs } = await loadBundledData({ inputShape: [28, 28, 1], count: 40 });
  const loader = [{ xs: xs.slice([0], [20]) }, { xs: xs.slice([20], [20]) }];
  const lc = LayerCollection.fromModel(model);
  const sub = pickSubnetwork(model, lc, 400);
  assert.deepEqual(sub.layers.map((e) => e.id), ['conv1', 'conv2']);
  const d = sub.numel();
  // conv1: K = 3·3·1 + 1 = 10, C = 4; conv2: K = 3·3·4 + 1 = 37, C = 8.
  const want: Record<string, number> = {
    dense: 8 * d * d, blockdiag: 8 * (40 ** 2 + 296 ** 2), diag: 8 * d, lowrank: 4 * 40 * 10 * d,
    kfac: 8 * (10 ** 2 + 4 ** 2 + 37 ** 2 + 8 ** 2), ekfac: 8 * (10 ** 2 + 4 ** 2 + 37 ** 2 + 8 ** 2 + d),
    quasidiag: 8 * (d + 9 * 4 + 36 * 8), 'ekfac-blockdiag': 8 * (10 ** 2 + 4 ** 2 + 37 ** 2 + 8 ** 2 + d), implicit: 0,
  };
  const before = tf.memory().numTensors;
  for (const info of REPRESENTATIONS) {
    const M = await computeFisher(info, { model, loader, layerCollection: sub, variant: 'classif_logits' });
    assert.equal(storageBytes(M), want[info.name], info.name);
    if (info.name === 'lowrank') assert.equal((M as PMatLowRank).rows, 400);
    M.dispose();
    await runWholeModel(info, { model, loader, layerCollection: sub, variant: 'classif_logits' }, { lanczos: { maxIterations: 3 } });
    await runSubnetwork(info, { model, loader, layerCollection: sub, variant: 'classif_logits' }, info.name === 'implicit' ? new Float32Array(d * d).fill(1) : null);
    assert.equal(tf.memory().numTensors, before, `${info.name}: tensors left behind`);
  }
  await computeDemo(model, xs, 'ekfac', 40);
  assert.equal(tf.memory().numTensors, before, 'demo computation: tensors left behind');
  tf.dispose([xs, ...loader.map((b) => b.xs)]);
  model.dispose();
});
