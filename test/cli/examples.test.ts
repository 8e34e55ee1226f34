/** The runnable examples run to completion and print what they promise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './support.js';

test('examples/quickstart.ts prints one row per representation, LowRank and Implicit matching Dense', async () => {
  const r = await runCli([], 'examples/quickstart.ts');
  assert.equal(r.code, 0, r.stderr);
  const rows = new Map(r.stdout.split('\n').filter((l) => l.startsWith('PMat')).map((l) => [l.split(/\s+/)[0]!, l.split(/\s{2,}/)]));
  assert.deepEqual([...rows.keys()], ['PMatDense', 'PMatDiag', 'PMatBlockDiag', 'PMatLowRank', 'PMatKFAC', 'PMatEKFAC', 'PMatQuasiDiag', 'PMatEKFACBlockDiag', 'PMatImplicit']);
  for (const exact of ['PMatLowRank', 'PMatImplicit']) assert.ok(Number(rows.get(exact)!.at(-1)) < 1e-4, `${exact}: relative gap to dense`);
});
