/**
 * On real data: an MLP trained to overconfidence on 1,000 bundled Fashion-MNIST images (Adam
 * 1e-2, 20 epochs, seeded), then a last-layer KFAC Laplace with the prior precision chosen by
 * the marginal likelihood. On the 1,000 held-out bundled images the probit predictive has a
 * lower negative log-likelihood and a lower expected calibration error (10 bins) than the MAP.
 * Measured when written: MAP NLL 0.749, ECE 0.102; Laplace NLL 0.579, ECE 0.030.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { Laplace, PMatKFAC } from '../../src/index.js';
import { loadBundledData } from '../../src/cli/bundled.js';
import { useTestBackend } from '../support/backend.js';

before(async () => {
  await useTestBackend();
});

/** Mean NLL and expected calibration error (10 equal-width confidence bins) of probabilities [n, C]. */
function nllAndEce(probs: tf.Tensor2D, labels: Int32Array): { nll: number; ece: number; accuracy: number } {
  const p = probs.arraySync();
  let nll = 0;
  let hits = 0;
  const bins = Array.from({ length: 10 }, () => ({ hits: 0, conf: 0 }));
  p.forEach((row, i) => {
    nll -= Math.log(Math.max(row[labels[i]!]!, 1e-12));
    const conf = Math.max(...row);
    const ok = row.indexOf(conf) === labels[i] ? 1 : 0;
    hits += ok;
    const b = bins[Math.min(9, Math.floor(conf * 10))]!;
    b.hits += ok;
    b.conf += conf;
  });
  const n = labels.length;
  return { nll: nll / n, ece: bins.reduce((e, b) => e + Math.abs(b.hits - b.conf) / n, 0), accuracy: hits / n };
}

test("Fashion-MNIST: last-layer KFAC Laplace with optimizePriorPrecision('marglik') improves held-out NLL and ECE over MAP", async () => {
  const start = tf.memory().numTensors;
  const { xs, labels } = await loadBundledData({ inputShape: [784], count: 2000 });
  const [trainX, testX] = tf.split(xs, 2) as [tf.Tensor2D, tf.Tensor2D];
  xs.dispose();
  const trainY = tf.tensor1d(labels.subarray(0, 1000), 'int32');
  const testLabels = labels.subarray(1000);
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 64, inputShape: [784], activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-2), loss: (y: tf.Tensor, f: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, f) });
  const onehot = tf.oneHot(trainY, 10);
  await model.fit(trainX, onehot, { epochs: 20, batchSize: 50, shuffle: false, verbose: 0 });
  onehot.dispose();
  const loader = [0, 1, 2, 3].map((k) => ({ xs: tf.slice(trainX, [k * 250], [250]), ys: tf.slice(trainY, [k * 250], [250]) }));

  const mapProbs = tf.tidy(() => tf.softmax(model.predict(testX) as tf.Tensor2D)) as tf.Tensor2D;
  const map = nllAndEce(mapProbs, testLabels);
  const la = await Laplace.fit({ model, loader, likelihood: 'classification', subsetOfWeights: 'last_layer', representation: PMatKFAC });
  const prior = await la.optimizePriorPrecision({ method: 'marglik' });
  assert.ok(prior > 0 && Number.isFinite(prior));
  const lapProbs = (await la.predictive(testX)) as tf.Tensor2D;
  const laplace = nllAndEce(lapProbs, testLabels);
  assert.ok(laplace.nll < map.nll, `NLL: Laplace ${laplace.nll} vs MAP ${map.nll}`);
  assert.ok(laplace.ece < map.ece, `ECE: Laplace ${laplace.ece} vs MAP ${map.ece}`);
  assert.ok(Math.abs(laplace.accuracy - map.accuracy) < 0.03, `accuracy ${laplace.accuracy} vs ${map.accuracy}`);
  la.dispose();
  tf.dispose([mapProbs, lapProbs, trainX, testX, trainY, ...loader.flatMap((b) => [b.xs, b.ys])]);
  model.optimizer.dispose();
  model.dispose();
  assert.equal(tf.memory().numTensors, start);
});
