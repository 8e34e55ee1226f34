/**
 * Each layer kind's contractions equal the same quantities formed from its per-example
 * gradients (themselves checked against brute-force autodiff by the Fisher tests), rel. 1e-5:
 * squared sums, directional derivatives, weighted sums and cross-batch gradient Grams.
 * Also: a preactivation from given weight tensors equals the one from the layer's variables.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection, type LayerEntry } from '../../src/layers/layer-collection.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, sequenceDense, mlp } from '../support/models.js';
import { relativeError } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

const arr = (t: tf.Tensor) => {
  const a = Array.from(t.dataSync());
  t.dispose();
  return a;
};

/** A random input for the layer and a random pre-activation gradient of the right shapes. */
function sample(e: LayerEntry, model: tf.LayersModel, b: number, seed: number): { x: tf.Tensor; g: tf.Tensor } {
  const inShape = (e.layer.input as tf.SymbolicTensor).shape.slice(1) as number[];
  const x = tf.randomNormal([b, ...inShape], 0, 1, 'float32', seed);
  const s = e.kind.preactivation(e.layer, x);
  const g = tf.randomNormal(s.shape, 0, 1, 'float32', seed + 1);
  s.dispose();
  void model;
  return { x, g };
}

for (const [name, make] of [
  ['dense 2-D', mlp],
  ['dense on sequences', sequenceDense],
  ['conv2d', cnn],
] as const) {
  test(`contractions equal per-example-gradient algebra: ${name}`, () => {
    const model = make();
    const e = LayerCollection.fromModel(model).layers[0]!;
    const a = sample(e, model, 3, 1);
    const b = sample(e, model, 2, 5);
    const v = tf.randomNormal([e.numel], 0, 1, 'float32', 9) as tf.Tensor1D;
    const u = tf.tensor1d([0.5, -1, 2]);
    const ja = e.kind.perExampleGradients(e.layer, a.x, a.g);
    const jb = e.kind.perExampleGradients(e.layer, b.x, b.g);
    const n0 = tf.memory().numTensors;
    const sq = e.kind.squaredGradientSum(e.layer, a.x, a.g, 1);
    const dot = e.kind.gradientDot(e.layer, a.x, a.g, v, 1);
    const ws = e.kind.weightedGradientSum(e.layer, a.x, a.g, u, 1);
    const gram = e.kind.gradientGram(e.layer, a.x, a.g, b.x, b.g);
    assert.equal(tf.memory().numTensors, n0 + 4, 'each contraction returns one tensor and leaks none');
    const checks: Array<[string, tf.Tensor, tf.Tensor]> = [
      ['squaredGradientSum', sq, tf.sum(tf.square(ja), 0)],
      ['gradientDot', dot, tf.matMul(ja, v.reshape([-1, 1])).reshape([-1])],
      ['weightedGradientSum', ws, tf.matMul(u.reshape([1, -1]), ja).reshape([-1])],
      ['gradientGram', gram, tf.matMul(ja, tf.transpose(jb))],
    ];
    for (const [what, ours, ref] of checks) {
      const err = relativeError(arr(ours), arr(ref));
      assert.ok(err < 1e-5, `${what}: relative error ${err}`);
    }
    tf.dispose([a.x, a.g, b.x, b.g, v, u, ja, jb]);
    model.dispose();
  });
}

test('preactivation from given weights equals the one from the layer variables (dense, conv2d, dilated)', () => {
  for (const model of [mlp(), cnn(), cnn({ dilation: 2 })]) {
    for (const e of LayerCollection.fromModel(model).layers) {
      const { x } = sample(e, model, 2, 3);
      const own = e.kind.preactivation(e.layer, x);
      const given = e.kind.preactivation(e.layer, x, e.layer.trainableWeights.map((w) => w.read().clone()));
      assert.deepEqual(arr(given), arr(own));
      x.dispose();
    }
    model.dispose();
  }
});
