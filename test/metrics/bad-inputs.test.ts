/**
 * Bad inputs get a typed error naming the culprit, leave the model's weights untouched, and
 * leak no tensor.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  EmptyLoaderError,
  FIM,
  InvalidArgumentError,
  LayerCollection,
  LayerCollectionMismatchError,
  NonFiniteError,
  NotPositiveDefiniteError,
  PMatDense,
  PMatDiag,
  PMatLowRank,
  PVector,
  ShapeMismatchError,
  UnsupportedLayerError,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, mlp } from '../support/models.js';

before(async () => {
  await useTestBackend();
});

function weights(model: tf.LayersModel): number[] {
  return model.trainableWeights.flatMap((w) => Array.from(w.read().dataSync()));
}

async function rejects(f: () => Promise<unknown>, type: new (...a: never[]) => Error, pattern: RegExp, model?: tf.LayersModel): Promise<void> {
  const w0 = model ? weights(model) : [];
  const n0 = tf.memory().numTensors;
  await assert.rejects(f, (e: Error) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
  assert.equal(tf.memory().numTensors, n0, 'tensors leaked on the error path');
  if (model) assert.deepEqual(weights(model), w0, 'model weights changed');
}

test('unknown variant lists the valid ones', async () => {
  const model = mlp();
  const xs = tf.randomNormal([4, 5]);
  await rejects(() => FIM({ model, loader: { xs }, representation: PMatDiag, variant: 'fisher' as never }), InvalidArgumentError, /classif_logits.*regression/, model);
  xs.dispose();
  model.dispose();
});

test('variant options are checked: sigma2 ≤ 0, sigma2 on a classification variant, empirical without loss or targets', async () => {
  const model = mlp();
  const xs = tf.randomNormal([4, 5]);
  await rejects(() => FIM({ model, loader: { xs }, representation: PMatDiag, variant: 'regression', sigma2: -1 }), InvalidArgumentError, /sigma2/);
  await rejects(() => FIM({ model, loader: { xs }, representation: PMatDiag, sigma2: 2 }), InvalidArgumentError, /sigma2.*regression/);
  await rejects(() => FIM({ model, loader: { xs }, representation: PMatDiag, variant: 'empirical' }), InvalidArgumentError, /loss/);
  await rejects(() => FIM({ model, loader: { xs }, representation: PMatDiag, variant: 'empirical', loss: 'mse' }), InvalidArgumentError, /targets/, model);
  xs.dispose();
  model.dispose();
});

test('an empty loader is an EmptyLoaderError', async () => {
  const model = mlp();
  await rejects(() => FIM({ model, loader: [], representation: PMatDiag }), EmptyLoaderError, /no examples/, model);
  model.dispose();
});

test('inputs of the wrong shape name the input and both shapes', async () => {
  const model = mlp();
  const xs = tf.randomNormal([4, 6]);
  await rejects(() => FIM({ model, loader: [{ xs }], representation: PMatDiag }), ShapeMismatchError, /\[4,6\].*\[batch,5\]/, model);
  const a = tf.randomNormal([4, 5]);
  const ys = tf.zeros([3]);
  await rejects(() => FIM({ model, loader: [{ xs: a, ys }], representation: PMatDiag }), ShapeMismatchError, /batch size/);
  tf.dispose([xs, a, ys]);
  model.dispose();
});

test('NaN or Infinity in the inputs is a NonFiniteError', async () => {
  const model = mlp();
  const xs = tf.tensor2d([[1, 2, 3, 4, NaN]]);
  await rejects(() => FIM({ model, loader: [xs], representation: PMatDiag }), NonFiniteError, /input 0/, model);
  xs.dispose();
  model.dispose();
});

test('integer inputs to a float model are refused', async () => {
  const model = mlp();
  const xs = tf.ones([2, 5], 'int32');
  await rejects(() => FIM({ model, loader: [xs], representation: PMatDiag }), InvalidArgumentError, /int32.*float32/, model);
  xs.dispose();
  model.dispose();
});

test('probabilities variant on logits outputs is refused', async () => {
  const model = mlp();
  const xs = tf.randomNormal([4, 5], 0, 3, 'float32', 1);
  await rejects(() => FIM({ model, loader: [xs], representation: PMatDiag, variant: 'classif_probs' }), InvalidArgumentError, /classif_logits/, model);
  xs.dispose();
  model.dispose();
});

test('a layer without a specific kind: refused with generic: false, refused by KFAC with the way out', async () => {
  const { PMatKFAC } = await import('../../src/index.js');
  const m = tf.sequential();
  m.add(tf.layers.simpleRNN({ units: 3, inputShape: [2, 4], name: 'rnn_x' }));
  m.add(tf.layers.dense({ units: 2 }));
  const xs = tf.ones([2, 2, 4]);
  assert.throws(() => LayerCollection.fromModel(m, { generic: false }), (e: Error) => e instanceof UnsupportedLayerError && /rnn_x.*SimpleRNN/.test(e.message));
  await rejects(() => FIM({ model: m, loader: [xs], representation: PMatKFAC }), UnsupportedLayerError, /rnn_x.*PMatEKFACBlockDiag/, m);
  xs.dispose();
  m.dispose();
});

test('a model without trainable supported weights is refused', async () => {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 3, inputShape: [4], trainable: false }));
  const xs = tf.ones([2, 4]);
  await rejects(() => FIM({ model: m, loader: [xs], representation: PMatDiag }), InvalidArgumentError, /no parameters/);
  xs.dispose();
  m.dispose();
});

test('a missing or wrong representation, model or loader is named', async () => {
  const model = mlp();
  const xs = tf.ones([2, 5]);
  await rejects(() => FIM({ model, loader: [xs], representation: {} as never }), InvalidArgumentError, /representation/);
  await rejects(() => FIM({ model: {} as never, loader: [xs], representation: PMatDiag }), InvalidArgumentError, /'model'/);
  await rejects(() => FIM({ model, loader: undefined as never, representation: PMatDiag }), InvalidArgumentError, /'loader'/);
  await rejects(() => FIM({ model, loader: [42 as never], representation: PMatDiag }), InvalidArgumentError, /batch 0/);
  xs.dispose();
  model.dispose();
});

test('a layer collection of another model is refused', async () => {
  const a = mlp();
  const b = cnn();
  const xs = tf.ones([2, 5]);
  await rejects(() => FIM({ model: a, loader: [xs], representation: PMatDiag, layerCollection: LayerCollection.fromModel(b) }), LayerCollectionMismatchError, /not the model/);
  xs.dispose();
  a.dispose();
  b.dispose();
});

test('matrices: negative or NaN regul, bad norm order, vectors of another collection, singular solve, low-rank solve without damping', async () => {
  const model = mlp();
  const other = cnn();
  const xs = tf.randomNormal([3, 5], 0, 1, 'float32', 2);
  const F = await FIM({ model, loader: [xs], representation: PMatDense });
  const L = await FIM({ model, loader: [xs], representation: PMatLowRank });
  const v = PVector.random(F.layerCollection, 1);
  const w = PVector.random(LayerCollection.fromModel(other), 1);
  assert.throws(() => F.solve(v, { regul: -1 }), InvalidArgumentError);
  assert.throws(() => F.solve(v, { regul: NaN }), InvalidArgumentError);
  assert.throws(() => F.norm('nuc' as never), /'fro', 2 or -2/);
  assert.throws(() => F.mv(w), LayerCollectionMismatchError);
  // 3 examples × 4 outputs (rank ≤ 12 < d = 75): singular without damping.
  assert.throws(() => F.solve(v), NotPositiveDefiniteError);
  assert.throws(() => L.solve(v), /regul > 0/);
  assert.throws(() => L.scale(-1), /≥ 0/);
  F.dispose();
  assert.throws(() => F.trace(), /disposed/);
  [L, v, w].forEach((o) => o.dispose());
  xs.dispose();
  model.dispose();
  other.dispose();
});

test('NaN in a weight is named; a one-output model with a softmax variant points to classif_binary_logits', async () => {
  const model = mlp();
  const xs = tf.randomNormal([3, 5], 0, 1, 'float32', 1);
  const w = model.layers[1]!.getWeights();
  const poisoned = tf.fill(w[1]!.shape, NaN);
  model.layers[1]!.setWeights([w[0]!, poisoned]);
  const n0 = tf.memory().numTensors;
  await assert.rejects(() => FIM({ model, loader: [xs], representation: PMatDiag }), (e: Error) => e instanceof NonFiniteError && /weight '.*bias.*'/.test(e.message));
  assert.equal(tf.memory().numTensors, n0);
  const one = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [5] })] });
  await rejects(() => FIM({ model: one, loader: [xs], representation: PMatDiag }), InvalidArgumentError, /classif_binary_logits/, one);
  tf.dispose([xs, poisoned]);
  model.dispose();
  one.dispose();
});

test('integer tokens feed a Sequential model that starts with an Embedding (declared float32 input)', async () => {
  const m = tf.sequential();
  m.add(tf.layers.embedding({ inputDim: 7, outputDim: 3, inputLength: 4 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 2 }));
  const tokens = tf.tensor2d([[1, 2, 3, 4], [0, 6, 6, 1]], [2, 4], 'int32');
  const F = await FIM({ model: m, loader: [tokens], representation: PMatDiag });
  assert.ok(Number.isFinite(F.trace()) && F.trace() > 0);
  F.dispose();
  tokens.dispose();
  m.dispose();
});
