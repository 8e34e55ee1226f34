/**
 * PFMapDense as an object: per-layer views are the layer's columns of J in tfjs shapes, the
 * arithmetic is exact elementwise, and bad inputs (FVectors of the wrong shape, PVectors of
 * another layer collection, bad representations) get typed errors naming the culprit, for the
 * dense and the implicit map alike. Nothing leaks.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  DisposedError,
  FVector,
  InvalidArgumentError,
  Jacobian,
  LayerCollection,
  LayerCollectionMismatchError,
  PFMapDense,
  PFMapImplicit,
  PVector,
  ShapeMismatchError,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../support/models.js';
import { relativeError, host } from '../support/reference.js';

let model: tf.LayersModel;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let J: PFMapDense;

before(async () => {
  await useTestBackend();
  model = cnn();
  batches = randomBatches(model, 5, 3);
  J = await Jacobian({ model, loader: batches });
});

after(() => {
  J.dispose();
  model.dispose();
  disposeBatches(batches);
});

test('layer(id) returns the columns of J of each parameter in [O, n, ...tfjs shape]', () => {
  const [o, n, d] = J.data.shape;
  const all = host(J.toTensor());
  for (const e of J.layerCollection.layers) {
    const parts = J.layer(e.id);
    let at = e.offset;
    parts.forEach((t, k) => {
      const p = e.parameters[k]!;
      assert.deepEqual(t.shape, [o, n, ...p.shape]);
      const got = host(t);
      const want = new Float64Array(o * n * p.size);
      for (let r = 0; r < o * n; r++) for (let c = 0; c < p.size; c++) want[r * p.size + c] = all[r * d + at + c]!;
      assert.deepEqual(Array.from(got), Array.from(want));
      at += p.size;
    });
  }
});

test('add, sub, scale act elementwise (rel. 1e-6) and own one tensor each', () => {
  const a = host(J.toTensor());
  const n0 = tf.memory().numTensors;
  const twice = J.add(J);
  const zero = J.sub(J);
  const scaled = J.scale(0.5);
  assert.equal(tf.memory().numTensors, n0 + 3);
  assert.ok(relativeError(host(twice.toTensor()), a.map((v) => 2 * v)) < 1e-6);
  assert.equal(host(zero.toTensor()).every((v) => v === 0), true);
  assert.ok(relativeError(host(scaled.toTensor()), a.map((v) => 0.5 * v)) < 1e-6);
  const copy = PFMapDense.fromTensor(J.layerCollection, J.data);
  assert.ok(relativeError(host(copy.toTensor()), a) === 0);
  [twice, zero, scaled, copy].forEach((m) => m.dispose());
  assert.equal(tf.memory().numTensors, n0);
});

test('bad inputs get typed errors naming the culprit, for PFMapDense and PFMapImplicit', async () => {
  const implicit = await Jacobian({ model, loader: batches, representation: PFMapImplicit });
  const other = mlp();
  const otherLc = LayerCollection.fromModel(other);
  const foreign = PVector.random(otherLc, 1);
  const wrongN = FVector.random(J.numOutputs, J.numExamples + 1, 2);
  const wrongO = FVector.random(J.numOutputs + 1, J.numExamples, 2);
  const rank2 = tf.zeros([2, 2]);
  const n0 = tf.memory().numTensors;
  assert.throws(() => J.jvp(foreign), (e: Error) => e instanceof LayerCollectionMismatchError && /jvp/.test(e.message));
  await assert.rejects(() => implicit.jvp(foreign), LayerCollectionMismatchError);
  assert.throws(() => J.vjp(wrongN), (e: Error) => e instanceof ShapeMismatchError && /PFMapDense\.vjp.*\[3, 6\]/.test(e.message));
  await assert.rejects(() => implicit.vjp(wrongN), (e: Error) => e instanceof ShapeMismatchError && /PFMapImplicit\.vjp/.test(e.message));
  await assert.rejects(() => implicit.vjp(wrongO), (e: Error) => e instanceof ShapeMismatchError && /PFMapImplicit\.vjp.*\[4, 5\]/.test(e.message));
  assert.throws(() => J.vjp(foreign as never), (e: Error) => e instanceof InvalidArgumentError && /FVector/.test(e.message));
  assert.throws(() => J.scale(Infinity), (e: Error) => e instanceof InvalidArgumentError && /'x'/.test(e.message));
  assert.throws(() => new PFMapDense(J.layerCollection, rank2 as never), ShapeMismatchError);
  await assert.rejects(() => Jacobian({ model, loader: batches, representation: {} as never }), (e: Error) => e instanceof InvalidArgumentError && /representation/.test(e.message));
  await assert.rejects(() => Jacobian({ model: {} as never, loader: batches }), (e: Error) => e instanceof InvalidArgumentError && /'model'/.test(e.message));
  assert.equal(tf.memory().numTensors, n0, 'errors leave nothing behind');
  rank2.dispose();
  [foreign, wrongN, wrongO].forEach((x) => x.dispose());
  other.dispose();
  const copy = PFMapDense.fromTensor(J.layerCollection, J.data);
  copy.dispose();
  assert.throws(() => copy.toTensor(), DisposedError);
});
