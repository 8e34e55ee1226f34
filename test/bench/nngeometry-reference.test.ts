/**
 * The contract between bench/pytorch_reference.py --nngeometry-cnn32 and bench/run.ts: the JSON
 * line is read into plain step, KFAC, Diag and update_diag by name and order, never by position
 * alone. Runs without Python or torch (the script itself is exercised by `npm run bench`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNngeometryCnnReference, torchMallocEnv } from '../../bench/pytorch.js';

const row = (what: string, ms: number) => ({ workload: 'CNN 32x32x3', what, examples: 1024, params: 24234, ms, samples: [ms] });
const line = (rows: unknown[]) => JSON.stringify({ schema: 1, torch: '1.13.0', threads: 2, blas: ['/usr/lib/libopenblasp.so'], rows });
const valid = [
  row('plain forward+backward', 400),
  row('NNGeometry FIM PMatKFAC', 5800),
  row('NNGeometry FIM PMatDiag', 10800),
  row('NNGeometry PMatEKFAC.update_diag', 30800),
];

test('each NNGeometry pass is read from its own row and divided by the plain step of the same run', () => {
  const r = parseNngeometryCnnReference(line(valid));
  assert.deepEqual([r.plainMs, r.kfacMs, r.diagMs, r.updateDiagMs], [400, 5800, 10800, 30800]);
  // Exact: 5800/400 = 14.5, 10800/400 = 27, 30800/400 = 77 in float64 (tolerance 1e-12).
  assert.ok(Math.abs(r.overPlain.kfac - 14.5) < 1e-12 && Math.abs(r.overPlain.diag - 27) < 1e-12 && Math.abs(r.overPlain.updateDiag - 77) < 1e-12);
  assert.equal(r.workload, 'CNN 32x32x3');
  assert.equal(r.examples, 1024);
  assert.equal(r.threads, 2);
  assert.deepEqual(r.samples.diag, [10800]);
});

test('rows out of order, missing, or with a non-positive time are refused with the rows received', () => {
  const swapped = [valid[0], valid[2], valid[1], valid[3]];
  assert.throws(() => parseNngeometryCnnReference(line(swapped)), /expected rows plain forward\+backward, NNGeometry FIM PMatKFAC.*PMatDiag/);
  assert.throws(() => parseNngeometryCnnReference(line(valid.slice(0, 3))), /expected rows/);
  assert.throws(() => parseNngeometryCnnReference(line([valid[0], row('NNGeometry FIM PMatKFAC', 0), valid[2], valid[3]])), /positive times/);
  assert.throws(() => parseNngeometryCnnReference('not json'), SyntaxError);
});

test("the reference's Python keeps freed memory (glibc thresholds) unless told otherwise", () => {
  const base = { PATH: '/usr/bin' };
  const set = torchMallocEnv(base);
  assert.equal(set.MALLOC_MMAP_THRESHOLD_, String(32 * 1024 * 1024), "glibc's largest mmap threshold");
  assert.equal(set.MALLOC_TRIM_THRESHOLD_, String(2 ** 32));
  assert.equal(set.PATH, '/usr/bin', 'the rest of the environment is kept');
  assert.equal(base.PATH, '/usr/bin');
  assert.ok(!('MALLOC_MMAP_THRESHOLD_' in base), 'the given environment is not changed');
  assert.equal(torchMallocEnv({ ...base, MALLOC_MMAP_THRESHOLD_: '65536' }).MALLOC_MMAP_THRESHOLD_, '65536', "the user's setting wins");
  assert.deepEqual(torchMallocEnv({ ...base, BENCH_TORCH_MALLOC: 'default' }), { ...base, BENCH_TORCH_MALLOC: 'default' }, 'BENCH_TORCH_MALLOC=default: glibc defaults');
});
