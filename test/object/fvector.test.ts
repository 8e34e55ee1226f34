/**
 * FVector: arithmetic equals the float64 host computation (rel. 1e-6), every result owns one
 * tensor and nothing else is left behind; bad inputs get typed errors naming the argument.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { DisposedError, FVector, InvalidArgumentError, ShapeMismatchError } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

const host = (f: FVector): Float64Array => {
  const t = f.toTensor();
  const a = Float64Array.from(t.dataSync());
  t.dispose();
  return a;
};

test('add, sub, scale, dot and norms equal the host computation (rel. 1e-6)', () => {
  const a = FVector.random(3, 5, 1);
  const b = FVector.random(3, 5, 2);
  const [x, y] = [host(a), host(b)];
  const n0 = tf.memory().numTensors;
  const sum = a.add(b);
  const diff = a.sub(b);
  const scaled = a.scale(-2.5);
  assert.equal(tf.memory().numTensors, n0 + 3, 'each result holds one tensor');
  assert.ok(relativeError(host(sum), x.map((v, k) => v + y[k]!)) < 1e-6);
  assert.ok(relativeError(host(diff), x.map((v, k) => v - y[k]!)) < 1e-6);
  assert.ok(relativeError(host(scaled), x.map((v) => -2.5 * v)) < 1e-6);
  const dot = x.reduce((s, v, k) => s + v * y[k]!, 0);
  assert.ok(Math.abs(a.dot(b) - dot) / Math.abs(dot) < 1e-6);
  assert.ok(Math.abs(a.norm() - Math.sqrt(x.reduce((s, v) => s + v * v, 0))) < 1e-6 * a.norm());
  assert.ok(Math.abs(a.norm(1) - x.reduce((s, v) => s + Math.abs(v), 0)) < 1e-6 * a.norm(1));
  assert.ok(Math.abs(a.norm(Infinity) - Math.max(...x.map(Math.abs))) < 1e-6);
  assert.ok(Math.abs(a.norm(3) - x.reduce((s, v) => s + Math.abs(v) ** 3, 0) ** (1 / 3)) < 1e-5 * a.norm(3));
  assert.equal(tf.memory().numTensors, n0 + 3, 'dot and norm leave nothing behind');
  [a, b, sum, diff, scaled].forEach((f) => f.dispose());
});

test('fromTensor copies; shape accessors; zeros; clone', () => {
  const t = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const f = FVector.fromTensor(t);
  t.dispose();
  assert.deepEqual([f.numOutputs, f.numExamples], [2, 3]);
  assert.deepEqual(Array.from(host(f)), [1, 2, 3, 4, 5, 6]);
  const c = f.clone();
  f.dispose();
  assert.equal(f.isDisposed, true);
  assert.deepEqual(Array.from(host(c)), [1, 2, 3, 4, 5, 6]);
  const z = FVector.zeros(2, 3);
  assert.equal(z.norm(), 0);
  [c, z].forEach((x) => x.dispose());
});

test('bad inputs: wrong shapes, non-tensors, disposed vectors, bad scalars', () => {
  const a = FVector.random(3, 5, 1);
  const b = FVector.random(3, 4, 2);
  const n0 = tf.memory().numTensors;
  assert.throws(() => a.add(b), (e: Error) => e instanceof ShapeMismatchError && /FVector\.add.*\[3, 4\].*\[3, 5\]/.test(e.message));
  assert.throws(() => a.dot(b), ShapeMismatchError);
  const raw = tf.zeros([3, 5]);
  assert.throws(() => a.add(raw as never), (e: Error) => e instanceof InvalidArgumentError && /FVector/.test(e.message));
  assert.throws(() => a.scale(NaN), (e: Error) => e instanceof InvalidArgumentError && /'x'/.test(e.message));
  assert.throws(() => a.norm(0.5), (e: Error) => e instanceof InvalidArgumentError && /'p'/.test(e.message));
  const r3 = tf.zeros([2, 2, 2]);
  assert.throws(() => FVector.fromTensor(r3), (e: Error) => e instanceof ShapeMismatchError && /'t'.*\[2,2,2\]/.test(e.message));
  const i32 = tf.zeros([2, 2], 'int32');
  assert.throws(() => FVector.fromTensor(i32), (e: Error) => e instanceof InvalidArgumentError && /float32/.test(e.message));
  assert.throws(() => FVector.zeros(0, 3), (e: Error) => e instanceof InvalidArgumentError && /'outputs'/.test(e.message));
  tf.dispose([raw, r3, i32]);
  assert.equal(tf.memory().numTensors, n0, 'errors leave nothing behind');
  b.dispose();
  a.dispose();
  assert.throws(() => a.norm(), DisposedError);
});
