/**
 * PVector: round-trips with the model exactly, arithmetic matches the flat tensors, and every
 * operation leaves no tensor behind.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection } from '../../src/layers/layer-collection.js';
import { PVector } from '../../src/object/pvector.js';
import { DisposedError, LayerCollectionMismatchError, ShapeMismatchError, InvalidArgumentError } from '../../src/errors.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, mlp } from '../support/models.js';

before(async () => {
  await useTestBackend();
});

const arr = (t: tf.Tensor) => {
  const a = Array.from(t.dataSync());
  t.dispose();
  return a;
};

test('fromModel copies the weights in collection order; copyToModel round-trips exactly', () => {
  const model = cnn();
  const lc = LayerCollection.fromModel(model);
  const w = PVector.fromModel(model, lc);
  const expected = model.trainableWeights.flatMap((v) => Array.from(v.read().dataSync()));
  assert.deepEqual(arr(w.toFlat()), expected);
  const r = PVector.random(lc, 5);
  r.copyToModel(model);
  assert.deepEqual(arr(PVector.fromModel(model, lc).toFlat()), arr(r.toFlat()));
  w.copyToModel(model);
  assert.deepEqual(model.trainableWeights.flatMap((v) => Array.from(v.read().dataSync())), expected);
  [w, r].forEach((x) => x.dispose());
  model.dispose();
});

test('fromModel holds a copy: changing the model later does not change the vector', () => {
  const model = mlp();
  const w = PVector.fromModel(model);
  const before = arr(w.toFlat());
  const r = PVector.random(w.layerCollection, 1);
  r.addToModel(model);
  assert.deepEqual(arr(w.toFlat()), before);
  const after = arr(PVector.fromModel(model).toFlat());
  const rr = arr(r.toFlat());
  after.forEach((x, k) => assert.ok(Math.abs(x - (before[k]! + rr[k]!)) < 1e-6));
  [w, r].forEach((x) => x.dispose());
  model.dispose();
});

test('layer(id) gives the parameters in their tfjs shapes', () => {
  const model = cnn();
  const lc = LayerCollection.fromModel(model);
  const w = PVector.fromModel(model, lc);
  const [kernel, bias] = w.layer(lc.ids()[0]!);
  assert.deepEqual(kernel!.shape, [3, 3, 2, 3]);
  assert.deepEqual(bias!.shape, [3]);
  assert.deepEqual(arr(kernel!), Array.from(model.layers[0]!.trainableWeights[0]!.read().dataSync()));
  bias!.dispose();
  w.dispose();
  model.dispose();
});

test('add, sub, scale, dot and norms match the flat arithmetic (1e-5)', () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const a = PVector.random(lc, 1);
  const b = PVector.random(lc, 2);
  const x = arr(a.toFlat());
  const y = arr(b.toFlat());
  const n0 = tf.memory().numTensors;
  const s = a.add(b);
  const dlt = a.sub(b);
  const sc = a.scale(-2);
  assert.equal(tf.memory().numTensors, n0 + 3);
  arr(s.toFlat()).forEach((v, k) => assert.ok(Math.abs(v - (x[k]! + y[k]!)) < 1e-5));
  arr(dlt.toFlat()).forEach((v, k) => assert.ok(Math.abs(v - (x[k]! - y[k]!)) < 1e-5));
  arr(sc.toFlat()).forEach((v, k) => assert.ok(Math.abs(v + 2 * x[k]!) < 1e-5));
  const dot = x.reduce((acc, v, k) => acc + v * y[k]!, 0);
  assert.ok(Math.abs(a.dot(b) - dot) < 1e-4 * Math.abs(dot) + 1e-5);
  assert.ok(Math.abs(a.norm() - Math.sqrt(x.reduce((acc, v) => acc + v * v, 0))) < 1e-4);
  assert.ok(Math.abs(a.norm(1) - x.reduce((acc, v) => acc + Math.abs(v), 0)) < 1e-3);
  assert.equal(a.norm(Infinity), Math.max(...x.map(Math.abs)));
  assert.ok(Math.abs(a.norm(3) - x.reduce((acc, v) => acc + Math.abs(v) ** 3, 0) ** (1 / 3)) < 1e-4);
  assert.equal(tf.memory().numTensors, n0 + 3);
  [a, b, s, dlt, sc].forEach((v) => v.dispose());
  model.dispose();
});

test('PVector.random is reproducible for a seed', () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const a = PVector.random(lc, 42);
  const b = PVector.random(lc, 42);
  assert.deepEqual(arr(a.toFlat()), arr(b.toFlat()));
  [a, b].forEach((v) => v.dispose());
  model.dispose();
});

test('bad inputs: wrong shape, other collection, disposed vector, bad norm order', () => {
  const m1 = mlp();
  const m2 = cnn();
  const lc1 = LayerCollection.fromModel(m1);
  const lc2 = LayerCollection.fromModel(m2);
  const t = tf.zeros([3]);
  assert.throws(() => PVector.fromFlat(lc1, t), ShapeMismatchError);
  const a = PVector.random(lc1);
  const b = PVector.random(lc2);
  assert.throws(() => a.add(b), LayerCollectionMismatchError);
  assert.throws(() => a.norm(0), InvalidArgumentError);
  assert.throws(() => a.scale(NaN), InvalidArgumentError);
  a.dispose();
  assert.throws(() => a.toFlat(), DisposedError);
  assert.throws(() => b.copyToModel(m1), LayerCollectionMismatchError);
  t.dispose();
  b.dispose();
  m1.dispose();
  m2.dispose();
});

test('PVector.random with seed 0 is reproducible too (tfjs alone would treat 0 as unseeded)', () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const a = PVector.random(lc, 0);
  const b = PVector.random(lc, 0);
  assert.deepEqual(arr(a.toFlat()), arr(b.toFlat()));
  [a, b].forEach((v) => v.dispose());
  model.dispose();
});
