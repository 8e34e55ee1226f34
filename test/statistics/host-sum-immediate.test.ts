/**
 * HostSum's `immediate` mode (the Kronecker factor sums of width ≥ IMMEDIATE_FACTOR_WIDTH): each
 * term goes into the float64 sum as it is added, so no float32 sum stays on the device.
 *   - 20 batches (past BATCHES_PER_TRANSFER) of two segments: the sum is exactly the float64 sum
 *     of the float32 terms, computed here by a loop, and the mean exactly that divided by n;
 *   - nothing is held on the device between adds (tf.memory() unchanged with the terms gone);
 *   - the device-summed mode agrees to float32 round-off (1e-6 relative);
 *   - a segment past the end is refused.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { HostSum } from '../../src/statistics/host-sum.js';
import { IMMEDIATE_FACTOR_WIDTH } from '../../src/statistics/kronecker-factors.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

test('immediate HostSum: the float64 sum of the float32 terms, bit for bit, with nothing left on the device', () => {
  const size = 37;
  const immediate = new HostSum(size, { immediate: true });
  const pending = new HostSum(size);
  const expected = new Float64Array(size);
  const start = tf.memory();
  for (let b = 0; b < 20; b++) {
    // Two segments (offsets 0 and 15), values spread over magnitudes so that float32 sums round.
    const head = tf.tidy(() => tf.mul(tf.randomNormal([15], 0, 1, 'float32', b), 10 ** (b % 5)));
    const tail = tf.tidy(() => tf.randomUniform([size - 15], -1, 1, 'float32', 100 + b));
    for (const [t, offset] of [[head, 0], [tail, 15]] as const) {
      immediate.add(t, offset);
      pending.add(t, offset);
      const v = t.dataSync();
      for (let k = 0; k < v.length; k++) expected[offset + k]! += v[k]!;
    }
    tf.dispose([head, tail]);
    immediate.flush();
    // The device-summed mode holds its two pending segment sums here; the immediate one nothing.
    assert.equal(tf.memory().numTensors - start.numTensors, 2, 'only the device-summed mode holds pending sums');
    pending.flush();
  }
  const n = 60;
  const mean = immediate.mean(n);
  assert.deepEqual(Array.from(mean), Array.from(expected, (x) => x / n), 'exact float64 mean');
  const e = relativeError(pending.mean(n), mean);
  assert.ok(e < 1e-6, `device-summed mode: ${e}`);
  assert.equal(tf.memory().numTensors, start.numTensors);
  const t = tf.zeros([5]);
  assert.throws(() => immediate.add(t, size - 4), /overflow a sum of 37/);
  t.dispose();
  assert.equal(IMMEDIATE_FACTOR_WIDTH, 4096, 'the d ≈ 10⁸ bench factors (4,096 and 4,097 wide) are summed term by term; 2,049 (d ≈ 10⁷) on the device');
});

test('one-transfer mean (fewer than 16 batches): each value divided as it is copied, bit for bit the device quotient', () => {
  // Two segments of sums that do not divide evenly, over n = 3, 7 and 1,000 examples: the mean
  // must equal tf.div on the device widened to float64, element for element (a float64 quotient
  // without the float32 rounding, or a division by another n, differs in the last bits).
  for (const n of [3, 7, 1000]) {
    const sum = new HostSum(29);
    const head = tf.tidy(() => tf.mul(tf.randomNormal([11], 0, 1, 'float32', n), 1e3));
    const tail = tf.tidy(() => tf.randomUniform([18], -1, 1, 'float32', n + 1));
    sum.add(head, 0);
    sum.add(tail, 11);
    sum.flush();
    const expected = tf.tidy(() => [...tf.div(head, n).dataSync(), ...tf.div(tail, n).dataSync()]);
    const before = tf.memory().numTensors;
    const mean = sum.mean(n);
    // The pending device sums are released by the transfer, and nothing new is left behind.
    assert.equal(tf.memory().numTensors, before - 2, `n = ${n}: tensors after mean`);
    assert.deepEqual(Array.from(mean), expected, `n = ${n}`);
    tf.dispose([head, tail]);
  }
});
