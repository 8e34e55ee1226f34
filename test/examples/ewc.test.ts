import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { run } from '../../examples/ewc.js';

before(async () => {
  await useTestBackend();
});

test('ewc: with the Fisher as PMatDiag, PMatKFAC and PMatEKFAC, task-A accuracy after B is higher with ewcPenalty than without (seeded)', async () => {
  const before = tf.memory().numTensors;
  const r = await run({ small: true, log: () => {} });
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.taskAAfterA > 0.5, `task A learnt: ${r.taskAAfterA}`);
  for (const name of ['PMatDiag', 'PMatKFAC', 'PMatEKFAC'] as const) {
    const e = r.ewc[name]!;
    assert.ok(e.taskA > r.plain.taskA, `${name}: EWC ${e.taskA} vs plain ${r.plain.taskA}`);
    // B is still learnt above chance (20% over five classes); the Kronecker penalties are stiffer at this λ.
    assert.ok(e.taskB > 0.3, `${name}: task B learnt with EWC: ${e.taskB}`);
  }
  // The penalty keeps the weights close to θ_A in the Fisher metric.
  assert.ok(r.ewc.PMatDiag!.drift < r.plain.drift);
  assert.ok(r.ewc.PMatDiag!.taskB > 0.5);
});
