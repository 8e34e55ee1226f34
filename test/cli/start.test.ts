/**
 * `npm start` end to end, on 40 of the bundled images: the table's numbers are those the library
 * computes on the same model and images (trace, top eigenvalue, memory of each representation),
 * the exact representations agree with each other, the distances to the dense matrix are 0 for
 * the dense and the low-rank ones, and report.html holds a heatmap per stored representation.
 * Not a snapshot: every expected number is recomputed here through the public API.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIM, PMatDiag, PMatKFAC, PMatLowRank, loadModel } from '../../src/index.js';
import { bundledModelPath, loadBundledData } from '../../src/cli/bundled.js';
import { useTestBackend } from '../support/backend.js';

const COUNT = 40;
const BATCH = 20;

/** Rows of the printed table: representation → its cells (memory, time, trace, top eigenvalue, distance). */
function parseTable(stdout: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const cells = line.trim().split(/\s{2,}/);
    if (/^PMat\w+$/.test(cells[0] ?? '') && cells.length >= 6) rows.set(cells[0]!, cells.slice(1));
  }
  return rows;
}
const number = (cell: string) => Number(cell.replace(/[,*]/g, '').replace(/ \(est\.\)$/, ''));

test('npm start: the table equals the library on the same data, and the report is written', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-start-'));
  try {
    const out = join(dir, 'report.html');
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/start.ts', '--count', String(COUNT), '--batch-size', String(BATCH), '--out', out], { encoding: 'utf8', timeout: 540_000 });
    assert.equal(run.status, 0, run.stderr);
    const rows = parseTable(run.stdout);
    assert.deepEqual([...rows.keys()].sort(), ['PMatBlockDiag', 'PMatDense', 'PMatDiag', 'PMatEKFAC', 'PMatEKFACBlockDiag', 'PMatImplicit', 'PMatKFAC', 'PMatLowRank', 'PMatQuasiDiag']);

    await useTestBackend();
    const model = await loadModel(bundledModelPath('fmnist-cnn'));
    const { xs } = await loadBundledData({ inputShape: model.inputs[0]!.shape.slice(1) as number[], count: COUNT });
    const loader = [0, 1].map((k) => ({ xs: xs.slice([k * BATCH], [BATCH]) }));
    // The trace and the largest diagonal entry from the diagonal, the top eigenvalue from the
    // low-rank form (a 400×400 Gram matrix: cheaper than the 3,226-wide dense eigendecomposition).
    const diag = await FIM({ model, loader, representation: PMatDiag });
    const lowRank = await FIM({ model, loader, representation: PMatLowRank });
    const kfac = await FIM({ model, loader, representation: PMatKFAC });
    const d = diag.layerCollection.numel();
    const diagonal = diag.getDiag();
    const expected = { trace: diag.trace(), top: lowRank.norm(2), diagTop: Math.max(...(await diagonal.data())), kfacTrace: kfac.trace() };
    [diagonal, diag, lowRank, kfac, xs, ...loader.map((b) => b.xs)].forEach((t) => t.dispose());
    model.dispose();

    const near = (cell: string, value: number, what: string, rtol = 1e-4) =>
      assert.ok(Math.abs(number(cell) - value) <= rtol * Math.abs(value), `${what}: printed ${cell}, library ${value}`);
    // Exact representations: the trace of F (Diag, BlockDiag, LowRank, EKFAC and QuasiDiag keep the exact diagonal).
    for (const name of ['PMatDense', 'PMatBlockDiag', 'PMatDiag', 'PMatLowRank', 'PMatEKFAC', 'PMatQuasiDiag', 'PMatEKFACBlockDiag', 'PMatImplicit']) {
      near(rows.get(name)![2]!, expected.trace, `${name} trace`);
    }
    near(rows.get('PMatKFAC')![2]!, expected.kfacTrace, 'PMatKFAC trace');
    near(rows.get('PMatDense')![3]!, expected.top, 'PMatDense top eigenvalue');
    near(rows.get('PMatLowRank')![3]!, expected.top, 'PMatLowRank top eigenvalue (Lanczos)', 1e-3);
    near(rows.get('PMatImplicit')![3]!, expected.top, 'PMatImplicit top eigenvalue (Lanczos)', 1e-3);
    near(rows.get('PMatDiag')![3]!, expected.diagTop, 'PMatDiag top eigenvalue = largest diagonal entry');
    assert.equal(number(rows.get('PMatDense')![0]!), 8 * d * d, 'dense memory: d² float64');
    assert.equal(number(rows.get('PMatDiag')![0]!), 8 * d, 'diagonal memory: d float64');
    assert.equal(number(rows.get('PMatImplicit')![0]!), 0);
    assert.equal(number(rows.get('PMatDense')![4]!), 0);
    for (const name of ['PMatLowRank', 'PMatImplicit']) assert.ok(number(rows.get(name)![4]!) < 1e-5, `${name} is the dense matrix`);
    for (const name of ['PMatDiag', 'PMatKFAC', 'PMatBlockDiag']) assert.ok(number(rows.get(name)![4]!) > 0.1, `${name} approximates`);

    const html = readFileSync(out, 'utf8');
    for (const name of ['PMatDense', 'PMatDiag', 'PMatKFAC', 'PMatEKFAC', 'PMatLowRank']) assert.match(html, new RegExp(`data-representation="${name}"`));
    assert.match(html, /Per-layer trace/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
