import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { run } from '../../examples/natural-gradient.js';

before(async () => {
  await useTestBackend();
});

test('natural-gradient: the printed claim (KFAC vs Adam) matches the loss curves', async () => {
  const before = tf.memory().numTensors;
  const lines: string[] = [];
  const r = await run({ small: true, log: (l) => lines.push(l) });
  assert.equal(tf.memory().numTensors, before);
  const steps = r.adam.length - 1;
  assert.equal(r.kfac.length, steps + 1);
  assert.equal(r.kfac[0], r.adam[0], 'same initial weights');
  const adamFinal = r.adam[steps]!;
  const first = r.kfac.findIndex((v) => v <= adamFinal);
  // The claim is derived from the numbers, never hard-coded.
  assert.equal(r.kfacReachedAdam, first >= 0 && first <= steps);
  assert.equal(r.kfacStepsToAdamFinal, first >= 0 ? first : null);
  assert.ok(lines.includes(r.claim));
  if (r.kfacReachedAdam) {
    assert.match(r.claim, new RegExp(`after ${first} steps`));
    assert.ok(r.kfac[first]! <= adamFinal);
  } else {
    assert.match(r.claim, /did NOT reach/);
    assert.match(r.claim, r.kfac[steps]! < adamFinal ? /KFAC reached the lower/ : /Adam reached the lower/);
  }
});
