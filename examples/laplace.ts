/**
 * Last-layer Laplace approximation of the bundled Fashion-MNIST MLP (`npx tsx examples/laplace.ts`).
 *
 * The MAP weights θ* of the last Dense layer get a Gaussian posterior with precision
 * N·F + τI, F = `FIM(..., PMatKFAC)` on that layer only (`LayerCollection.fromLayers`), N the
 * number of images F is estimated on and τ the prior precision. Samples
 * θ = θ* + N^{-1/2} (F + τ/N·I)^{-1/2} z, z ~ N(0, I), use `pow(-1/2, { regul })` (exact for
 * KFAC, in its Kronecker eigenbasis). The predictive is the mean softmax over the samples.
 * Reports accuracy, mean confidence (max probability) and expected calibration error (10 bins)
 * of MAP and Laplace on held-out images, and the mean confidence on uniform-noise images (OOD).
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, LayerCollection, PMatKFAC, PVector } from '../src/index.js';
import { loadBundledData, loadBundledModel } from '../src/cli/bundled.js';

export interface PredictiveStats {
  accuracy: number;
  /** Mean of the max probability over the held-out images. */
  confidence: number;
  /** Expected calibration error, 10 equal-width confidence bins. */
  ece: number;
  /** Mean max probability on uniform-noise images. */
  oodConfidence: number;
}

export interface LaplaceResult {
  map: PredictiveStats;
  laplace: PredictiveStats;
  samples: number;
  priorPrecision: number;
}

/** Accuracy, mean confidence and ECE of probabilities [n, C] against labels. */
function calibration(probs: tf.Tensor2D, labels: Int32Array): { accuracy: number; confidence: number; ece: number } {
  const [confT, predT] = tf.tidy(() => [tf.max(probs, 1), tf.argMax(probs, 1)]);
  const conf = confT!.dataSync() as Float32Array;
  const pred = predT!.dataSync() as Int32Array;
  confT!.dispose();
  predT!.dispose();
  const bins = Array.from({ length: 10 }, () => ({ n: 0, hits: 0, conf: 0 }));
  let hits = 0;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const ok = pred[i] === labels[i] ? 1 : 0;
    const b = bins[Math.min(9, Math.floor(conf[i]! * 10))]!;
    b.n++;
    b.hits += ok;
    b.conf += conf[i]!;
    hits += ok;
    sum += conf[i]!;
  }
  const n = labels.length;
  const ece = bins.reduce((e, b) => e + (b.n ? Math.abs(b.hits - b.conf) / n : 0), 0);
  return { accuracy: hits / n, confidence: sum / n, ece };
}

function meanMaxProb(probs: tf.Tensor2D): number {
  return tf.tidy(() => tf.mean(tf.max(probs, 1)).dataSync()[0]!);
}

/**
 * Runs the comparison. `small`: F on 500 images, 500 held out, 10 samples; otherwise 1,000,
 * 1,000 and 30. `priorPrecision` τ defaults to 1.
 */
export async function run(options: { small?: boolean; priorPrecision?: number; log?: (line: string) => void } = {}): Promise<LaplaceResult> {
  const log = options.log ?? console.log;
  const nFit = options.small ? 500 : 1000;
  const nTest = options.small ? 500 : 1000;
  const samples = options.small ? 10 : 30;
  const tau = options.priorPrecision ?? 1;
  const model = await loadBundledModel('fmnist-mlp');
  const { xs, labels } = await loadBundledData({ inputShape: [784], count: nFit + nTest });
  const [fitX, testX] = tf.split(xs, [nFit, nTest]);
  xs.dispose();
  const testLabels = labels.subarray(nFit);
  const noise = tf.randomUniform([200, 784], 0, 1, 'float32', 7);

  const last = model.layers[model.layers.length - 1]!;
  const lc = LayerCollection.fromLayers(model, [last]);
  const F = await FIM({ model, loader: fitX!, representation: PMatKFAC, layerCollection: lc });
  // (N F + τ I)^{-1/2} = N^{-1/2} (F + τ/N I)^{-1/2}.
  const root = F.pow(-0.5, { regul: tau / nFit });
  const thetaMap = PVector.fromModel(model, lc);

  const mapProbs = tf.tidy(() => tf.softmax(model.predict(testX!) as tf.Tensor2D)) as tf.Tensor2D;
  const mapOod = tf.tidy(() => tf.softmax(model.predict(noise) as tf.Tensor2D)) as tf.Tensor2D;
  let lapProbs = tf.zerosLike(mapProbs);
  let lapOod = tf.zerosLike(mapOod);
  for (let s = 0; s < samples; s++) {
    const z = PVector.random(lc, 1000 + s);
    const dz = root.mv(z);
    const step = dz.scale(1 / Math.sqrt(nFit));
    thetaMap.copyToModel(model);
    step.addToModel(model);
    [z, dz, step].forEach((v) => v.dispose());
    const [p, q] = [lapProbs, lapOod];
    lapProbs = tf.tidy(() => tf.add(p, tf.div(tf.softmax(model.predict(testX!) as tf.Tensor2D), samples)));
    lapOod = tf.tidy(() => tf.add(q, tf.div(tf.softmax(model.predict(noise) as tf.Tensor2D), samples)));
    p.dispose();
    q.dispose();
  }
  thetaMap.copyToModel(model);

  const map: PredictiveStats = { ...calibration(mapProbs, testLabels), oodConfidence: meanMaxProb(mapOod) };
  const laplace: PredictiveStats = { ...calibration(lapProbs as tf.Tensor2D, testLabels), oodConfidence: meanMaxProb(lapOod as tf.Tensor2D) };
  log(`last-layer Laplace on the bundled fmnist-mlp: KFAC Fisher of layer '${lc.ids().join(', ')}' (${lc.numel()} parameters) on ${nFit} images`);
  log(`posterior precision ${nFit}·F + ${tau}·I, ${samples} samples; ${nTest} held-out images, 200 uniform-noise images (OOD)`);
  log('predictive  accuracy  mean confidence  ECE     OOD mean confidence');
  for (const [name, r] of [['MAP', map], ['Laplace', laplace]] as const) {
    log(`${name.padEnd(10)}${(100 * r.accuracy).toFixed(1).padStart(9)}%${r.confidence.toFixed(4).padStart(17)}  ${r.ece.toFixed(4)}  ${r.oodConfidence.toFixed(4).padStart(19)}`);
  }
  [fitX!, testX!, noise, mapProbs, mapOod, lapProbs, lapOod].forEach((t) => t.dispose());
  [F, root, thetaMap].forEach((o) => o.dispose());
  model.dispose();
  return { map, laplace, samples, priorPrecision: tau };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tf.setBackend('wasm');
  await tf.ready();
  await run({ small: process.argv.includes('--small') });
}
