/**
 * `nngeometry spectrum` end to end (child process, as a user runs it): the JSON eigenvalues of
 * a small saved MLP (d = 74) match a float64 eigendecomposition of the dense Fisher computed
 * in-process on the same data; the trace interval covers the
 * exact trace; the report draws the eigenvalues, the density and the trace interval; bad flags
 * are one-line user errors (exit code 2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatDense, initLinalg, saveModel } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { mlp } from '../support/models.js';
import { IMAGES, MLP, runCli } from '../cli/support.js';
import { eigenvalues } from './support.js';

test('nngeometry spectrum: eigenvalues, trace interval and density of the dense Fisher match the in-process reference', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-spectrum-'));
  try {
    await useTestBackend('wasm');
    await initLinalg();
    const model = mlp();
    await saveModel(model, join(dir, 'm'));
    const xs = tf.randomNormal([48, 5], 0, 1, 'float32', 3);
    writeFileSync(join(dir, 'x.json'), JSON.stringify(xs.arraySync()));
    const json = join(dir, 'out.json');
    const report = join(dir, 'out.html');
    const r = await runCli(['spectrum', '--model', join(dir, 'm', 'model.json'), '--data', join(dir, 'x.json'), '--representation', 'dense', '--k', '4', '--trace', '--samples', '30', '--density', '--probes', '3', '--steps', '8', '--json', json, '--report', report, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /eigsh route 'dense'/);
    const out = JSON.parse(readFileSync(json, 'utf8')) as { eigenvalues: number[]; residuals: number[]; route: string; trace: { value: number; standardError: number; exact: number; samples: number }; density: { nodes: number[]; weights: number[] } };
    // The reference: the same Fisher in-process, float64 eigh of its dense entries.
    const lc = LayerCollection.fromModel(model);
    const F = await FIM({ model, loader: [{ xs: tf.tensor2d(xs.arraySync() as number[][]) }], representation: PMatDense, layerCollection: lc });
    const d = lc.numel();
    const ev = eigenvalues(F.values(), d);
    out.eigenvalues.forEach((x, i) => assert.ok(Math.abs(x - ev[d - 1 - i]!) <= 1e-4 * ev[d - 1]!, `λ${i + 1}: ${x} vs ${ev[d - 1 - i]}`));
    assert.ok(out.residuals.every((x) => x <= 1e-4 * ev[d - 1]!));
    assert.ok(Math.abs(out.trace.exact - F.trace()) <= 1e-4 * F.trace());
    assert.ok(Math.abs(out.trace.value - out.trace.exact) <= 3 * out.trace.standardError, `${out.trace.value} ± ${out.trace.standardError} vs ${out.trace.exact}`);
    assert.equal(out.density.nodes.length, 24);
    assert.ok(Math.abs(out.density.weights.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    const html = readFileSync(report, 'utf8');
    for (const cls of ['eigenvalues', 'density', 'trace']) assert.match(html, new RegExp(`<svg[^>]*class="chart ${cls}"`), cls);
    F.dispose();
    xs.dispose();
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nngeometry spectrum: bad flags are one-line user errors (exit code 2)', async () => {
  for (const [flags, message] of [
    [['--k', '0'], /--k must be a positive integer/],
    [['--samples', '2'], /--samples must be an integer in \[3/],
  ] as const) {
    const r = await runCli(['spectrum', '--model', MLP, '--data', IMAGES, '--count', '8', ...flags]);
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});
