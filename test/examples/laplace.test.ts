import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { run } from '../../examples/laplace.js';

before(async () => {
  await useTestBackend();
});

test('laplace: the predictive is less confident than MAP, in and out of distribution', async () => {
  const before = tf.memory().numTensors;
  const r = await run({ small: true, log: () => {} });
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.map.accuracy > 0.7, `MAP accuracy ${r.map.accuracy}`);
  assert.ok(r.laplace.confidence < r.map.confidence, `Laplace ${r.laplace.confidence} vs MAP ${r.map.confidence}`);
  assert.ok(r.laplace.oodConfidence < r.map.oodConfidence, `OOD: Laplace ${r.laplace.oodConfidence} vs MAP ${r.map.oodConfidence}`);
  for (const s of [r.map, r.laplace]) assert.ok(s.ece >= 0 && s.ece <= 1);
});
