/**
 * Fisher merging (Matena & Raffel 2022) on bundled Fashion-MNIST, reduced size: a shared MLP
 * pre-trained briefly on all classes is fine-tuned twice, on classes 0–4 and on 5–9; merging
 * the two with their diagonal Fishers classifies the union of the held-out images better than
 * the plain average of the weights (seeded).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, PMatDiag, PVector, fisherMerge } from '../../src/index.js';
import { loadBundledData } from '../../src/cli/bundled.js';
import { useTestBackend } from '../support/backend.js';

before(async () => {
  await useTestBackend();
});

interface Split {
  xs: tf.Tensor2D;
  labels: Int32Array;
}

function select(xs: tf.Tensor2D, labels: Int32Array, keep: (label: number) => boolean): Split {
  const idx = [...labels.keys()].filter((i) => keep(labels[i]!));
  return { xs: tf.tidy(() => tf.gather(xs, tf.tensor1d(idx, 'int32'))), labels: Int32Array.from(idx, (i) => labels[i]!) };
}

function train(model: tf.LayersModel, data: Split, epochs: number, lr: number): void {
  const opt = tf.train.adam(lr);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(data.labels, 'int32'), 10));
  const n = data.labels.length;
  for (let e = 0; e < epochs; e++) {
    for (let b = 0; b < n; b += 32) {
      tf.tidy(() => {
        const size = Math.min(32, n - b);
        const x = tf.slice(data.xs, [b, 0], [size, -1]);
        const y = tf.slice(ys, [b, 0], [size, -1]);
        opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, false, vars);
      });
    }
  }
  ys.dispose();
  opt.dispose();
}

function accuracy(model: tf.LayersModel, data: Split): number {
  const pred = tf.tidy(() => tf.argMax(model.predict(data.xs) as tf.Tensor2D, 1));
  const p = pred.dataSync();
  pred.dispose();
  let hits = 0;
  for (let i = 0; i < p.length; i++) if (p[i] === data.labels[i]) hits++;
  return hits / data.labels.length;
}

test('Fisher merging of two models fine-tuned on disjoint classes beats plain weight averaging on the union', async () => {
  const before = tf.memory().numTensors;
  const { xs, labels } = await loadBundledData({ inputShape: [784], count: 2000 });
  const [trainX, testX] = tf.split(xs as tf.Tensor2D, [1600, 400]) as [tf.Tensor2D, tf.Tensor2D];
  xs.dispose();
  const trainLabels = labels.subarray(0, 1600);
  const pre = select(trainX, trainLabels, () => true);
  const pretrain = { xs: tf.slice(pre.xs, [0, 0], [300, -1]) as tf.Tensor2D, labels: pre.labels.subarray(0, 300) };
  const taskA = select(trainX, trainLabels, (l) => l < 5);
  const taskB = select(trainX, trainLabels, (l) => l >= 5);
  const test = select(testX, labels.subarray(1600), () => true);
  tf.dispose([trainX, testX, pre.xs]);

  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 64, inputShape: [784], activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 41 }) }));
  model.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 42 }) }));
  train(model, pretrain, 2, 1e-3);
  const theta0 = PVector.fromModel(model);
  const fineTune = async (data: Split) => {
    theta0.copyToModel(model);
    train(model, data, 3, 1e-3);
    const batches = tf.split(data.xs, [200, data.labels.length - 200]);
    const fisher = await FIM({ model, loader: batches.map((x) => ({ xs: x })), representation: PMatDiag });
    tf.dispose(batches);
    return { weights: PVector.fromModel(model), fisher };
  };
  const a = await fineTune(taskA);
  const b = await fineTune(taskB);

  const averaged = a.weights.add(b.weights);
  const average = averaged.scale(0.5);
  average.copyToModel(model);
  const averageAccuracy = accuracy(model, test);
  const merged = await fisherMerge([a, b], { regul: 1e-6 });
  merged.copyToModel(model);
  const mergedAccuracy = accuracy(model, test);
  a.weights.copyToModel(model);
  const onlyA = accuracy(model, test);

  assert.ok(mergedAccuracy > averageAccuracy, `Fisher merge ${mergedAccuracy} vs plain average ${averageAccuracy} (model A alone ${onlyA})`);
  [theta0, averaged, average, merged, a.weights, b.weights, a.fisher, b.fisher].forEach((o) => o.dispose());
  tf.dispose([pretrain.xs, taskA.xs, taskB.xs, test.xs]);
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});
