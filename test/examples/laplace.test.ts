import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { run } from '../../examples/laplace.js';

before(async () => {
  await useTestBackend();
});

test('laplace example: the marginal likelihood rises, and the Laplace predictive beats the overconfident MAP on NLL and ECE, less confident out of distribution', async () => {
  const before = tf.memory().numTensors;
  const r = await run({ small: true, log: () => {} });
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.map.accuracy > 0.7, `MAP accuracy ${r.map.accuracy}`);
  assert.ok(r.logEvidence.optimised >= r.logEvidence.initial, `log evidence ${r.logEvidence.initial} → ${r.logEvidence.optimised}`);
  for (const s of [r.laplace, r.laplaceMC]) {
    assert.ok(s.nll < r.map.nll, `NLL ${s.nll} vs MAP ${r.map.nll}`);
    assert.ok(s.ece < r.map.ece, `ECE ${s.ece} vs MAP ${r.map.ece}`);
    assert.ok(s.oodConfidence < r.map.oodConfidence, `OOD: ${s.oodConfidence} vs MAP ${r.map.oodConfidence}`);
  }
});
