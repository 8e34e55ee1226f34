import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { run } from '../../examples/ewc.js';

before(async () => {
  await useTestBackend();
});

test('ewc: task-A accuracy after B is higher with the EWC penalty than without (seeded)', async () => {
  const before = tf.memory().numTensors;
  const r = await run({ small: true, log: () => {} });
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.taskAAfterA > 0.5, `task A learnt: ${r.taskAAfterA}`);
  assert.ok(r.ewc.taskA > r.plain.taskA, `EWC ${r.ewc.taskA} vs plain ${r.plain.taskA}`);
  // The penalty keeps the weights close to θ_A in the Fisher metric, and B is still learnt.
  assert.ok(r.ewc.drift < r.plain.drift);
  assert.ok(r.ewc.taskB > 0.5, `task B learnt with EWC: ${r.ewc.taskB}`);
});
