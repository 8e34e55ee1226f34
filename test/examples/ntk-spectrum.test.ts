import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { run } from '../../examples/ntk-spectrum.js';

before(async () => {
  await useTestBackend();
});

test('ntk-spectrum: trace(K) = Σλ, eigenvalues ≥ −1e-6·max, no leak', async () => {
  const before = tf.memory().numTensors;
  const r = await run({ small: true, log: () => {} });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.eigenvalues.length, r.examples * r.outputs);
  const sum = r.eigenvalues.reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(sum - r.trace) <= 1e-4 * Math.abs(r.trace), `Σλ = ${sum}, trace = ${r.trace}`);
  const max = r.eigenvalues[0]!;
  for (const v of r.eigenvalues) assert.ok(v >= -1e-6 * max, `eigenvalue ${v} < −1e-6·${max}`);
  for (let i = 1; i < r.eigenvalues.length; i++) assert.ok(r.eigenvalues[i]! <= r.eigenvalues[i - 1]!);
  assert.ok(r.effectiveRank >= 1 && r.effectiveRank <= r.eigenvalues.length);
});
