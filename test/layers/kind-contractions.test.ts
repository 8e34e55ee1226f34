/**
 * For every layer kind (each collected layer of the kind fixtures):
 * - the contractions equal the same quantities formed from the per-example gradients
 *   (rel. 1e-5): squared sums, J·v, weighted sums and cross-batch gradient Grams, each
 *   returning one tensor and leaking none;
 * - the pre-activation from given weight tensors equals the one from the layer's variables, and
 *   differentiating ⟨g, s(weights)⟩ with respect to the given tensors gives Σ_i ∇θ f̃(x_i) (the
 *   path Hessians and Jacobian-vector products use);
 * - the executor reproduces model.predict (1e-5) and leaks nothing.
 * The per-example gradients themselves are checked against brute-force autodiff in
 * kind-fisher.test.ts.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection, type LayerEntry } from '../../src/layers/layer-collection.js';
import { executeModel } from '../../src/backend/executor.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';
import * as M from '../support/layer-models.js';

before(async () => {
  await useTestBackend();
});

const arr = (t: tf.Tensor) => {
  const a = Array.from(t.dataSync());
  t.dispose();
  return a;
};

/** A random input for the layer (tokens for int32 inputs) and a random pre-activation gradient. */
function sample(e: LayerEntry, b: number, seed: number): { x: tf.Tensor; g: tf.Tensor } {
  const input = e.layer.input as tf.SymbolicTensor;
  const shape = [b, ...(input.shape.slice(1) as number[])];
  const x = input.dtype === 'int32' ? M.randomTokens(shape, seed) : tf.randomNormal(shape, 0, 1, 'float32', seed);
  const s = e.kind.preactivation(e.layer, x);
  const g = tf.randomNormal(s.shape, 0, 1, 'float32', seed + 1);
  s.dispose();
  return { x, g };
}

const fixtures: Array<[string, () => tf.LayersModel]> = [
  ['Conv1D', () => M.conv1dModel()],
  ['Conv1D dilated', () => M.conv1dModel({ dilation: 2 })],
  ['Conv2DTranspose', M.conv2dTransposeModel],
  ['DepthwiseConv2D', M.depthwiseModel],
  ['SeparableConv2D', () => M.separableModel()],
  ['SeparableConv2D dilated', () => M.separableModel({ dilation: 2 })],
  ['BatchNormalization', () => M.batchNormModel()],
  ['BatchNormalization scale: false', () => M.batchNormModel({ scale: false })],
  ['BatchNormalization center: false', () => M.batchNormModel({ center: false })],
  ['LayerNormalization', M.layerNormModel],
  ['Embedding', M.embeddingModel],
  ['PReLU', M.preluModel],
  ['generic', M.genericModel],
];

/** The layers of the fixture whose kind is under test (Dense and Conv2D are covered elsewhere). */
const underTest = (lc: LayerCollection) => lc.layers.filter((e) => e.kind.name !== 'dense' && e.kind.name !== 'conv2d');

for (const [name, make] of fixtures) {
  test(`contractions equal per-example-gradient algebra: ${name}`, () => {
    const model = make();
    for (const e of underTest(LayerCollection.fromModel(model))) {
      const a = sample(e, 3, 1);
      const b = sample(e, 2, 5);
      const v = tf.randomNormal([e.numel], 0, 1, 'float32', 9) as tf.Tensor1D;
      const u = tf.tensor1d([0.5, -1, 2]);
      const ja = e.kind.perExampleGradients(e.layer, a.x, a.g);
      const jb = e.kind.perExampleGradients(e.layer, b.x, b.g);
      assert.deepEqual(ja.shape, [3, e.numel], `${e.id}: per-example gradients shape`);
      const n0 = tf.memory().numTensors;
      const sq = e.kind.squaredGradientSum(e.layer, a.x, a.g, 1);
      const dot = e.kind.gradientDot(e.layer, a.x, a.g, v, 1);
      const ws = e.kind.weightedGradientSum(e.layer, a.x, a.g, u, 1);
      const gram = e.kind.gradientGram(e.layer, a.x, a.g, b.x, b.g);
      assert.equal(tf.memory().numTensors, n0 + 4, `${e.id}: each contraction returns one tensor and leaks none`);
      const checks: Array<[string, tf.Tensor, tf.Tensor]> = [
        ['squaredGradientSum', sq, tf.sum(tf.square(ja), 0)],
        ['gradientDot', dot, tf.matMul(ja, v.reshape([-1, 1])).reshape([-1])],
        ['weightedGradientSum', ws, tf.matMul(u.reshape([1, -1]), ja).reshape([-1])],
        ['gradientGram', gram, tf.matMul(ja, tf.transpose(jb))],
      ];
      for (const [what, ours, ref] of checks) {
        const err = relativeError(arr(ours), arr(ref));
        assert.ok(err < 1e-5, `${e.id} ${what}: relative error ${err}`);
      }
      tf.dispose([a.x, a.g, b.x, b.g, v, u, ja, jb]);
    }
    model.dispose();
  });

  test(`pre-activation from given weights equals the layer's own and differentiates to Σ_i ∇θ f̃(x_i): ${name}`, () => {
    const model = make();
    for (const e of underTest(LayerCollection.fromModel(model))) {
      const { x, g } = sample(e, 3, 3);
      const given = e.layer.trainableWeights.map((w) => w.read().clone());
      const own = e.kind.preactivation(e.layer, x);
      const fromGiven = e.kind.preactivation(e.layer, x, given);
      assert.ok(relativeError(arr(fromGiven), arr(own)) < 1e-6, `${e.id}: pre-activation`);
      const grads = tf.grads((...w: tf.Tensor[]) => tf.sum(tf.mul(e.kind.preactivation(e.layer, x, w), g)))(given);
      const flat = tf.concat(grads.map((t) => t.reshape([-1])));
      const ones = tf.ones([3]) as tf.Tensor1D;
      const err = relativeError(arr(flat), arr(e.kind.weightedGradientSum(e.layer, x, g, ones, 1)));
      assert.ok(err < 1e-5, `${e.id}: gradient through given weights, relative error ${err}`);
      tf.dispose([x, g, ones, ...given, ...grads]);
    }
    model.dispose();
  });

  test(`executeModel equals model.predict (1e-5): ${name}`, () => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = M.layerBatches(model, 3, 3);
    const x = batches[0]!.xs as tf.Tensor;
    const n0 = tf.memory().numTensors;
    const ours = tf.tidy(() => executeModel(model, [x], { collected: new Map(lc.layers.map((e) => [e.layer, e])) })[0]!);
    const ref = model.predict(x) as tf.Tensor;
    assert.ok(relativeError(ours.dataSync(), ref.dataSync()) < 1e-5);
    tf.dispose([ours, ref]);
    assert.equal(tf.memory().numTensors, n0);
    M.disposeLayerBatches(batches);
    model.dispose();
  });
}
