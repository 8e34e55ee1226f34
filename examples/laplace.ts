/**
 * Last-layer Laplace approximation with `Laplace` (`npx tsx examples/laplace.ts`).
 *
 * An MLP (784 → 64 → 10) is trained to overconfidence on 1,000 bundled Fashion-MNIST images
 * (Adam 1e-2, 20 epochs, seeded). `Laplace.fit` puts a Gaussian posterior N(θ̂, Λ⁻¹),
 * Λ = n·F + δI, on its last layer (F: KFAC Fisher over the 1,000 training images),
 * `optimizePriorPrecision()` picks δ by maximising the marginal likelihood, and the predictive
 * (probit link, and Monte-Carlo over sampled weights) is compared with the MAP on the 1,000
 * held-out bundled images — accuracy, negative log-likelihood, expected calibration error
 * (10 bins), mean confidence — and on 200 uniform-noise images (out of distribution).
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Laplace, PMatKFAC } from '../src/index.js';
import { loadBundledData } from '../src/cli/bundled.js';

export interface PredictiveStats {
  accuracy: number;
  /** Mean negative log-likelihood of the held-out labels. */
  nll: number;
  /** Mean of the max probability over the held-out images. */
  confidence: number;
  /** Expected calibration error, 10 equal-width confidence bins. */
  ece: number;
  /** Mean max probability on uniform-noise images. */
  oodConfidence: number;
}

export interface LaplaceResult {
  map: PredictiveStats;
  /** Probit (GLM) predictive. */
  laplace: PredictiveStats;
  /** Mean softmax over weight samples. */
  laplaceMC: PredictiveStats;
  samples: number;
  priorPrecision: number;
  /** log p(D) at δ = 1 and at the optimised δ. */
  logEvidence: { initial: number; optimised: number };
}

/** Accuracy, NLL, mean confidence and ECE of probabilities [n, C] against labels. */
export function calibration(probs: tf.Tensor2D, labels: Int32Array): Omit<PredictiveStats, 'oodConfidence'> {
  const p = probs.arraySync();
  const bins = Array.from({ length: 10 }, () => ({ hits: 0, conf: 0 }));
  let hits = 0;
  let conf = 0;
  let nll = 0;
  p.forEach((row, i) => {
    const c = Math.max(...row);
    const ok = row.indexOf(c) === labels[i] ? 1 : 0;
    const b = bins[Math.min(9, Math.floor(c * 10))]!;
    b.hits += ok;
    b.conf += c;
    hits += ok;
    conf += c;
    nll -= Math.log(Math.max(row[labels[i]!]!, 1e-12));
  });
  const n = labels.length;
  return { accuracy: hits / n, nll: nll / n, confidence: conf / n, ece: bins.reduce((e, b) => e + Math.abs(b.hits - b.conf) / n, 0) };
}

function meanMaxProb(probs: tf.Tensor2D): number {
  return tf.tidy(() => tf.mean(tf.max(probs, 1)).dataSync()[0]!);
}

/** Trains the overconfident MAP network on `xs` [n, 784] with integer labels. */
async function trainMap(xs: tf.Tensor2D, ys: tf.Tensor1D): Promise<tf.Sequential> {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 64, inputShape: [784], activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-2), loss: (y: tf.Tensor, f: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, f) });
  const onehot = tf.oneHot(ys, 10);
  await model.fit(xs, onehot, { epochs: 20, batchSize: 50, shuffle: false, verbose: 0 });
  onehot.dispose();
  return model;
}

/** Runs the comparison. `small`: 10 Monte-Carlo samples instead of 50. */
export async function run(options: { small?: boolean; log?: (line: string) => void } = {}): Promise<LaplaceResult> {
  const log = options.log ?? console.log;
  const samples = options.small ? 10 : 50;
  const { xs, labels } = await loadBundledData({ inputShape: [784], count: 2000 });
  const [trainX, testX] = tf.split(xs, 2) as [tf.Tensor2D, tf.Tensor2D];
  xs.dispose();
  const trainY = tf.tensor1d(labels.subarray(0, 1000), 'int32');
  const testLabels = labels.subarray(1000);
  const noise = tf.randomUniform([200, 784], 0, 1, 'float32', 7) as tf.Tensor2D;
  const model = await trainMap(trainX, trainY);
  const loader = [0, 1, 2, 3].map((k) => ({ xs: tf.slice(trainX, [k * 250], [250]), ys: tf.slice(trainY, [k * 250], [250]) }));

  const la = await Laplace.fit({ model, loader, likelihood: 'classification', subsetOfWeights: 'last_layer', representation: PMatKFAC });
  const initial = la.logMarginalLikelihood();
  const priorPrecision = await la.optimizePriorPrecision();
  const optimised = la.logMarginalLikelihood();

  const stats = async (predict: (x: tf.Tensor2D) => Promise<tf.Tensor2D>): Promise<PredictiveStats> => {
    const p = await predict(testX);
    const q = await predict(noise);
    const out = { ...calibration(p, testLabels), oodConfidence: meanMaxProb(q) };
    tf.dispose([p, q]);
    return out;
  };
  const map = await stats(async (x) => tf.tidy(() => tf.softmax(model.predict(x) as tf.Tensor2D)) as tf.Tensor2D);
  const laplace = await stats(async (x) => (await la.predictive(x)) as tf.Tensor2D);
  const laplaceMC = await stats(async (x) => (await la.predictive(x, { linkApprox: 'mc', samples, seed: 1 })) as tf.Tensor2D);

  log(`MLP 784-64-10 trained on 1,000 bundled Fashion-MNIST images; last-layer KFAC Laplace (layer '${la.layerCollection.ids().join(', ')}', ${la.layerCollection.numel()} parameters)`);
  log(`prior precision δ = 1 → ${priorPrecision.toFixed(3)} (log marginal likelihood ${initial.toFixed(1)} → ${optimised.toFixed(1)}); 1,000 held-out images, 200 uniform-noise images (OOD)`);
  log('predictive            accuracy     NLL     ECE  confidence  OOD confidence');
  for (const [name, r] of [['MAP', map], ['Laplace (probit)', laplace], [`Laplace (MC, ${samples})`, laplaceMC]] as const) {
    log(`${name.padEnd(20)}${(100 * r.accuracy).toFixed(1).padStart(9)}%${r.nll.toFixed(4).padStart(8)}${r.ece.toFixed(4).padStart(8)}${r.confidence.toFixed(4).padStart(12)}${r.oodConfidence.toFixed(4).padStart(16)}`);
  }
  la.dispose();
  tf.dispose([trainX, testX, trainY, noise, ...loader.flatMap((b) => [b.xs, b.ys])]);
  model.optimizer.dispose();
  model.dispose();
  return { map, laplace, laplaceMC, samples, priorPrecision, logEvidence: { initial, optimised } };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tf.setBackend('wasm');
  await tf.ready();
  await run({ small: process.argv.includes('--small') });
}
