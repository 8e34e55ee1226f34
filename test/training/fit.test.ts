/**
 * fit(model, dataset, { optimizer, epochs, callbacks }) runs model.fitDataset's loop around
 * NaturalGradientOptimizer.step: the same weights as a hand-written loop of steps, the
 * fitDataset callback order and logs, the example-weighted epoch loss, stopTraining, no leaks,
 * typed errors.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { InvalidArgumentError, LayerCollection, NaturalGradientOptimizer, PVector, fit } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { host } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

const options = { learningRate: 0.05, curvatureUpdateEvery: 2, inverseUpdateEvery: 3, seed: 5 };

test('fit over an array of batches equals the hand-written loop of steps (same weights, exactly), history = example-weighted mean loss', async () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const theta0 = PVector.fromModel(model, lc);
  const batches = randomBatches(model, 22, 6, 2000); // 6, 6, 6, 4 examples
  const manual = new NaturalGradientOptimizer({ model, ...options });
  const losses: number[][] = [[], []];
  for (let e = 0; e < 2; e++) for (const b of batches) losses[e]!.push(await manual.step(b));
  const want = PVector.fromModel(model, lc);
  manual.dispose();
  theta0.copyToModel(model);
  const opt = new NaturalGradientOptimizer({ model, ...options });
  const lines: string[] = [];
  const history = await fit(model, batches, { optimizer: opt, epochs: 2, log: (l) => lines.push(l) });
  const got = PVector.fromModel(model, lc);
  assert.deepEqual(host(got.toFlat()), host(want.toFlat()));
  const sizes = batches.map((b) => b.xs.shape[0]!);
  const mean = (ls: number[]) => ls.reduce((s, l, i) => s + l * sizes[i]!, 0) / 22;
  assert.deepEqual(history.epoch, [0, 1]);
  history.history.loss.forEach((l, e) => assert.ok(Math.abs(l - mean(losses[e]!)) < 1e-12));
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^Epoch 1 \/ 2$/);
  assert.match(lines[1]!, /ms \d+us\/step - loss=/);
  [theta0, want, got].forEach((v) => v.dispose());
  opt.dispose();
  disposeBatches(batches);
  model.dispose();
});

test('a tf.data.Dataset: fitDataset callback order and logs, stopTraining after a batch, no tensor leaks', async () => {
  const model = mlp();
  const xs = tf.randomNormal([20, 5], 0, 1, 'float32', 3);
  const ys = tf.randomUniform([20], 0, 4, 'int32', 4);
  const dataset = tf.data.zip({ xs: tf.data.array(tf.unstack(xs)), ys: tf.data.array(tf.unstack(ys)) }).batch(8);
  // tfjs lets callbacks set stopTraining on a Sequential only once it is compiled (the compiled optimizer is not used).
  model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy' });
  const opt = new NaturalGradientOptimizer({ model, ...options });
  await fit(model, dataset, { optimizer: opt, verbose: 0 }); // warm: the optimizer's state exists
  const before = tf.memory().numTensors;
  const events: string[] = [];
  const history = await fit(model, dataset, {
    optimizer: opt,
    epochs: 3,
    verbose: 0,
    callbacks: {
      onTrainBegin: () => void events.push('trainBegin'),
      onEpochBegin: (e) => void events.push(`epochBegin ${e}`),
      onBatchBegin: (b, logs) => void events.push(`batchBegin ${b} size ${logs!.size}`),
      onBatchEnd: (b, logs) => {
        assert.ok(Number.isFinite(logs!.loss));
        events.push(`batchEnd ${b}`);
        if (events.filter((x) => x.startsWith('batchEnd')).length === 5) model.stopTraining = true;
      },
      onEpochEnd: (e, logs) => void events.push(`epochEnd ${e} ${Number.isFinite(logs!.loss)}`),
      onTrainEnd: () => void events.push('trainEnd'),
    },
  });
  assert.deepEqual(events, [
    'trainBegin',
    'epochBegin 0', 'batchBegin 0 size 8', 'batchEnd 0', 'batchBegin 1 size 8', 'batchEnd 1', 'batchBegin 2 size 4', 'batchEnd 2', 'epochEnd 0 true',
    'epochBegin 1', 'batchBegin 0 size 8', 'batchEnd 0', 'batchBegin 1 size 8', 'batchEnd 1', 'epochEnd 1 true',
    'trainEnd',
  ]);
  assert.deepEqual(history.epoch, [0, 1]);
  assert.equal(tf.memory().numTensors, before, 'fit leaks no tensor');
  opt.dispose();
  tf.dispose([xs, ys]);
  model.dispose();
});

test('bad input: an optimizer of another model, epochs 0, a dataset that is not one — typed errors', async () => {
  const model = mlp();
  const other = mlp();
  const opt = new NaturalGradientOptimizer({ model: other, learningRate: 0.1 });
  await assert.rejects(fit(model, [], { optimizer: opt }), /trains model/);
  const own = new NaturalGradientOptimizer({ model, learningRate: 0.1 });
  await assert.rejects(fit(model, [], { optimizer: own, epochs: 0 }), InvalidArgumentError);
  await assert.rejects(fit(model, 'data' as never, { optimizer: own }), /dataset/);
  await assert.rejects(fit(model, [], { optimizer: own, epoch: 2 } as never), /epochs/);
  [opt, own].forEach((o) => o.dispose());
  [model, other].forEach((m) => m.dispose());
});
