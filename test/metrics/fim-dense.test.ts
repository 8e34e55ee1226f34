/**
 * PMatDense equals (1/n) Σ_i J_iᵀ H_i J_i built by brute force from per-example autodiff through
 * tfjs-layers' own forward pass (relative Frobenius error ≤ 1e-4), for every variant and for
 * MLPs with and without biases, a CNN (stride 2, 'same' and 'valid', dilation), a residual
 * functional model, a Dense layer on [n, T, in] inputs, and a nested model.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatDense, type Variant } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, nested, randomBatches, residual, sequenceDense } from '../support/models.js';
import { type RefVariant, bruteForceEmpirical, bruteForceFisher, relativeError, selectSubmatrix, undilatedTwin } from '../support/reference.js';

const TOL = 1e-4;

before(async () => {
  await useTestBackend();
});

async function check(name: string, model: tf.LayersModel, variant: RefVariant, sigma2?: number): Promise<void> {
  const batches = randomBatches(model, 6, 4);
  const lc = LayerCollection.fromModel(model);
  const before = tf.memory().numTensors;
  const F = await FIM({ model, loader: batches, representation: PMatDense, variant: variant as Variant, ...(sigma2 ? { sigma2 } : {}) });
  assert.equal(tf.memory().numTensors, before + 1, `${name}: FIM must leave only the matrix it returns`);
  const ref = referenceFisher(model, lc, batches.map((b) => b.xs), variant, sigma2);
  const err = relativeError(F.values(), ref);
  assert.ok(err <= TOL, `${name} ${variant}: relative error ${err} > ${TOL}`);
  F.dispose();
  disposeBatches(batches);
}

/** Brute force; through an undilated twin when the model has dilated convolutions (no tfjs gradient). */
function referenceFisher(model: tf.LayersModel, lc: LayerCollection, xs: tf.Tensor[], variant: RefVariant, sigma2?: number): Float64Array {
  const dilated = model.layers.some((l) => l.getClassName() === 'Conv2D' && JSON.stringify((l.getConfig() as { dilationRate?: unknown }).dilationRate) !== '[1,1]');
  if (!dilated) return bruteForceFisher(model, lc, xs, variant, sigma2);
  const { twin, map } = undilatedTwin(model as tf.Sequential);
  const twinLc = LayerCollection.fromModel(twin);
  const full = bruteForceFisher(twin, twinLc, xs, variant, sigma2);
  twin.dispose();
  return selectSubmatrix(full, twinLc.numel(), map);
}

const models: Array<[string, () => tf.LayersModel]> = [
  ['mlp', () => mlp()],
  ['mlp without bias', () => mlp({ bias: false })],
  ['cnn', () => cnn()],
  ['cnn dilated', () => cnn({ dilation: 2 })],
  ['residual', () => residual()],
  ['sequence dense', () => sequenceDense()],
  ['nested', () => nested()],
];

for (const [name, make] of models) {
  for (const variant of ['classif_logits', 'classif_binary_logits', 'regression'] as const) {
    test(`PMatDense = brute-force Fisher: ${name}, ${variant}`, async () => {
      const model = make();
      await check(name, model, variant, variant === 'regression' ? 2.5 : undefined);
      model.dispose();
    });
  }
}

test('PMatDense = brute-force Fisher: classif_logsoftmax on a log-softmax head', async () => {
  const model = mlp({ head: 'logsoftmax' });
  await check('mlp logsoftmax', model, 'classif_logsoftmax');
  model.dispose();
});

test('PMatDense = brute-force Fisher: classif_probs on a softmax head', async () => {
  const model = mlp({ head: 'probs' });
  await check('mlp probs', model, 'classif_probs');
  model.dispose();
});

test('classif_logits, classif_logsoftmax and classif_probs give the same Fisher for the same network (1e-4)', async () => {
  const logits = mlp();
  const logsm = mlp({ head: 'logsoftmax' });
  const probs = mlp({ head: 'probs' });
  logsm.setWeights(logits.getWeights());
  probs.setWeights(logits.getWeights());
  const batches = randomBatches(logits, 6, 3);
  const a = await FIM({ model: logits, loader: batches, representation: PMatDense });
  const b = await FIM({ model: logsm, loader: batches, representation: PMatDense, variant: 'classif_logsoftmax' });
  const c = await FIM({ model: probs, loader: batches, representation: PMatDense, variant: 'classif_probs' });
  assert.ok(relativeError(b.values(), a.values()) < TOL);
  assert.ok(relativeError(c.values(), a.values()) < TOL);
  [a, b, c].forEach((m) => m.dispose());
  [logits, logsm, probs].forEach((m) => m.dispose());
  disposeBatches(batches);
});

test('PMatDense = brute-force empirical Fisher with a custom per-example loss and with cross_entropy', async () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 6, 4);
  const ce = (y: tf.Tensor, f: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.cast(y, 'int32'), 4), f, undefined, 0, tf.Reduction.NONE);
  const ref = bruteForceEmpirical(model, lc, batches, ce);
  const custom = await FIM({ model, loader: batches, representation: PMatDense, variant: 'empirical', loss: ce });
  const builtin = await FIM({ model, loader: batches, representation: PMatDense, variant: 'empirical', loss: 'cross_entropy' });
  assert.ok(relativeError(custom.values(), ref) < TOL, `custom loss error ${relativeError(custom.values(), ref)}`);
  assert.ok(relativeError(builtin.values(), ref) < TOL, `builtin loss error ${relativeError(builtin.values(), ref)}`);
  custom.dispose();
  builtin.dispose();
  model.dispose();
  disposeBatches(batches);
});

test('PMatDense = brute-force Fisher: functional model with two inputs and a concatenation', async () => {
  const a = tf.input({ shape: [3] });
  const b = tf.input({ shape: [2] });
  const ha = tf.layers.dense({ units: 4, activation: 'tanh', biasInitializer: 'randomNormal' }).apply(a) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate().apply([ha, b]) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3 }).apply(cat) as tf.SymbolicTensor;
  const model = tf.model({ inputs: [a, b], outputs: out });
  const xa = tf.randomNormal([5, 3], 0, 1, 'float32', 3);
  const xb = tf.randomNormal([5, 2], 0, 1, 'float32', 4);
  const lc = LayerCollection.fromModel(model);
  const F = await FIM({ model, loader: [{ xs: [xa, xb] }], representation: PMatDense });
  const ref = bruteForceFisher(model, lc, [[xa, xb]], 'classif_logits');
  assert.ok(relativeError(F.values(), ref) < TOL, `relative error ${relativeError(F.values(), ref)}`);
  F.dispose();
  tf.dispose([xa, xb]);
  model.dispose();
});
