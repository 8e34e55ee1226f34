/**
 * The CLI as a child process on the bundled data: its numbers equal the library API's on the
 * same inputs (relative 1e-4: the same float32 computation, summed in a possibly different
 * batch order), its files are written, and every user error is one line with exit code 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { FIM, PMatDiag, PMatKFAC, GramMatrix } from '../../src/index.js';
import { loadBundledData } from '../../src/cli/bundled.js';
import { loadModelFile, saveModel } from '../../src/cli/model-io.js';
import { useTestBackend } from '../support/backend.js';
import { CNN, IMAGES, LABELS, MLP, runCli } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'nngeometry-cli-'));
const close = (a: number, b: number, rtol: number, what: string) => assert.ok(Math.abs(a - b) <= rtol * Math.abs(b), `${what}: ${a} vs ${b} (rtol ${rtol})`);

test('fim --representation kfac on bundled IDX data: the trace of the library API, JSON and report written', async () => {
  const json = join(dir, 'kfac.json');
  const report = join(dir, 'kfac.html');
  const r = await runCli(['fim', '--model', CNN, '--data', IMAGES, '--count', '200', '--representation', 'kfac', '--variant', 'classif_logits', '--batch-size', '64', '--json', json, '--report', report]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /PMatKFAC, variant classif_logits/);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(out.examples, 200);
  assert.equal(out.parameters, 3226);

  await useTestBackend('wasm');
  const model = await loadModelFile(CNN);
  const { xs } = await loadBundledData({ inputShape: [28, 28, 1], count: 200 });
  const F = await FIM({ model, loader: [{ xs }], representation: PMatKFAC });
  close(out.trace, F.trace(), 1e-4, 'trace');
  close(out.topEigenvalue, F.norm(2), 1e-3, 'top eigenvalue');
  close(out.bytes, 681360, 0, 'bytes');
  F.dispose();
  xs.dispose();
  model.dispose();

  const html = readFileSync(report, 'utf8');
  assert.match(html, /<svg[^>]*class="heatmap"[^>]*data-representation="PMatKFAC"/);
  assert.match(html, /data-representation="PMatDense"/);
  assert.doesNotMatch(html, /(src|href)="https?:/, 'no external resource');
});

test('fim on a model saved with model.save and a CSV file: the trace of the library API', async () => {
  await useTestBackend('wasm');
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 6, inputShape: [4], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }), tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) })] });
  const path = await saveModel(model, join(dir, 'mlp'));
  const rows = Array.from({ length: 37 }, (_, i) => Array.from({ length: 4 }, (_, j) => Math.sin(1 + i * 4 + j).toFixed(6)));
  writeFileSync(join(dir, 'x.csv'), ['a,b,c,d', ...rows.map((r) => r.join(','))].join('\n'));
  const json = join(dir, 'diag.json');
  const r = await runCli(['fim', '--model', path, '--data', join(dir, 'x.csv'), '--representation', 'diag', '--batch-size', '10', '--json', json, '--backend', 'cpu']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  const xs = tf.tensor2d(rows.map((r) => r.map(Number)));
  const F = await FIM({ model, loader: [{ xs }], representation: PMatDiag });
  close(out.trace, F.trace(), 1e-4, 'trace');
  assert.deepEqual(out.layers.map((l: { parameters: number }) => l.parameters), [30, 21]);
  F.dispose();
  xs.dispose();
  model.dispose();
});

test('fim --variant empirical with --labels, and --mc 1 (reproducible for a seed)', async () => {
  const [emp, mc1, mc2] = await Promise.all([
    runCli(['fim', '--model', MLP, '--data', IMAGES, '--labels', LABELS, '--count', '100', '--variant', 'empirical', '--json', join(dir, 'emp.json')]),
    runCli(['fim', '--model', MLP, '--data', IMAGES, '--count', '100', '--mc', '1', '--seed', '5', '--json', join(dir, 'mc1.json')]),
    runCli(['fim', '--model', MLP, '--data', IMAGES, '--count', '100', '--mc', '1', '--seed', '5', '--json', join(dir, 'mc2.json')]),
  ]);
  for (const r of [emp, mc1, mc2]) assert.equal(r.code, 0, r.stderr);
  const traces = ['emp', 'mc1', 'mc2'].map((f) => JSON.parse(readFileSync(join(dir, `${f}.json`), 'utf8')).trace as number);
  assert.ok(traces.every((t) => t > 0));
  assert.equal(traces[1], traces[2]);
});

test('ntk: trace and eigenvalues of the library GramMatrix', async () => {
  const json = join(dir, 'ntk.json');
  const r = await runCli(['ntk', '--model', MLP, '--data', IMAGES, '--count', '20', '--top', '3', '--json', json, '--report', join(dir, 'ntk.html')]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  await useTestBackend('wasm');
  const model = await loadModelFile(MLP);
  const { xs } = await loadBundledData({ inputShape: [784], count: 20 });
  const K = await GramMatrix({ model, loader: [{ xs }] });
  close(out.trace, K.trace(), 1e-4, 'trace');
  const top = K.eigendecomposition({ k: 3 });
  out.eigenvalues.forEach((e: number, i: number) => close(e, top.values[i]!, 1e-3, `eigenvalue ${i + 1}`));
  top.vectors.dispose();
  K.dispose();
  xs.dispose();
  model.dispose();
});

test('info: layers, parameter counts and the representations each layer supports', async () => {
  const r = await runCli(['info', '--model', CNN, '--json', join(dir, 'info.json')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /3,226 parameters in 3 supported layer/);
  const out = JSON.parse(readFileSync(join(dir, 'info.json'), 'utf8'));
  assert.deepEqual(out.layers.map((l: { id: string; parameters: number; status: string }) => [l.id, l.parameters, l.status]), [
    ['conv1', 40, 'supported'], ['conv2', 296, 'supported'], ['flatten', 0, 'no trainable weights'], ['logits', 2890, 'supported'],
  ]);
  assert.ok(out.layers[0].representations.includes('kfac'));
});

test('every user error is one line on stderr with exit code 2', async () => {
  // A recurrent layer that also returns its state: no layer kind takes a layer with two outputs.
  const input = tf.input({ shape: [2, 4] });
  const [seq] = tf.layers.simpleRNN({ units: 3, returnState: true, name: 'rnn' }).apply(input) as tf.SymbolicTensor[];
  const unsupported = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2 }).apply(seq!) as tf.SymbolicTensor });
  const rnn = await saveModel(unsupported, join(dir, 'rnn'));
  unsupported.dispose();
  writeFileSync(join(dir, 'seq.json'), JSON.stringify([[[1, 2, 3, 4], [5, 6, 7, 8]]]));
  writeFileSync(join(dir, 'bad.json'), '{ not json');
  const cases: Array<[string, string[], RegExp]> = [
    ['missing model', ['fim', '--model', join(dir, 'none.json'), '--data', IMAGES], /model file not found/],
    ['missing data', ['fim', '--model', CNN, '--data', join(dir, 'none.idx')], /--data: file not found/],
    ['shape mismatch', ['fim', '--model', MLP, '--data', LABELS], /have shape \[\] \(1 values\) but the model expects \[784\]/],
    ['unreadable data', ['fim', '--model', MLP, '--data', join(dir, 'bad.json')], /not valid JSON/],
    ['unsupported layer', ['fim', '--model', rnn, '--data', join(dir, 'seq.json')], /unsupported layer: .*'rnn'.*SimpleRNN/],
    ['unknown representation', ['fim', '--model', MLP, '--data', IMAGES, '--representation', 'foo'], /unknown representation 'foo'/],
    ['too big', ['fim', '--model', MLP, '--data', IMAGES, '--representation', 'dense'], /would store 5\.2 GB/],
    ['unknown option', ['fim', '--model', MLP, '--bogus'], /Unknown option '--bogus'/],
    ['bad number', ['fim', '--model', MLP, '--data', IMAGES, '--batch-size', '0'], /--batch-size must be a positive integer/],
    ['empirical without labels', ['fim', '--model', MLP, '--data', IMAGES, '--variant', 'empirical'], /needs labels/],
    ['info on a bad path', ['info', '--model', join(dir, 'none.json')], /model file not found/],
    ['unknown command', ['fisher'], /unknown command 'fisher'/],
  ];
  const results = await Promise.all(cases.map(([, args]) => runCli(args)));
  results.forEach((r, i) => {
    const [name, , pattern] = cases[i]!;
    assert.equal(r.code, 2, `${name}: exit code (stderr: ${r.stderr})`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${name}: one line, got ${JSON.stringify(r.stderr)}`);
    assert.match(lines[0]!, /^nngeometry: /, name);
    assert.match(lines[0]!, pattern, name);
  });
});
