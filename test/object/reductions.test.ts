/**
 * Long float32 reductions stay accurate: a plain sequential float32 sum of 4·10⁶ terms drifts
 * by ~1e-3 (measured 2e-3 on wasm); preciseSum stays below 1e-5.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { preciseSum } from '../../src/object/reductions.js';
import { useTestBackend } from '../support/backend.js';

before(async () => {
  await useTestBackend();
});

test('preciseSum of 4,000,003 values of 0.1 is within 1e-5 of the float64 sum of the float32 values, where tf.sum drifts', () => {
  const n = 4_000_003;
  const t = tf.fill([n], 0.1);
  const exact = n * Math.fround(0.1);
  const n0 = tf.memory().numTensors;
  const s = preciseSum(t);
  assert.equal(tf.memory().numTensors, n0);
  assert.ok(Math.abs(s - exact) / exact < 1e-5, `preciseSum error ${Math.abs(s - exact) / exact}`);
  const naive = tf.sum(t);
  const naiveError = Math.abs(naive.dataSync()[0]! - exact) / exact;
  naive.dispose();
  assert.ok(naiveError > 1e-4, `the plain float32 sum was expected to drift (error ${naiveError})`);
  t.dispose();
});

test('preciseSum of an empty tensor is 0, of a scalar its value', () => {
  const e = tf.zeros([0]);
  const s = tf.scalar(2.5);
  assert.equal(preciseSum(e), 0);
  assert.equal(preciseSum(s), 2.5);
  tf.dispose([e, s]);
});
