/**
 * `npm run bench:influence`: mislabel detection by self-influence on Fashion-MNIST, after
 * kronfluence's CIFAR-10 benchmark (Grosse et al. 2023; kronfluence examples/cifar: top 10% of
 * the self-influence ranking finds 82% of the mislabelled images, top 20% finds 96%).
 *
 * 10% of the labels of N training images are flipped to another class (seeded): N = 4,000 of
 * Debian's dataset-fashion-mnist training images when installed (/usr/share/datasets/
 * fashion-mnist), else the 2,000 bundled images. The bundled MLP and CNN architectures
 * (scripts/model-architectures.ts) are trained on the noisy labels (Adam 1e-3, batch 64,
 * seeded order), then every training image is ranked by
 *   - self-influence ∇ℓ_tᵀ(F + λI)⁻¹∇ℓ_t with F in EK-FAC and in KFAC (λ = 0.1·tr(F)/d),
 *   - its training loss,
 *   - at random,
 * and the fraction of the flipped images found in the top 10% and 20% is reported. Times per
 * 1,000 training examples are multiples of one plain tfjs gradient step over the same examples
 * (forward and backward of the mean cross-entropy, all trainable weights, batches of 125).
 *
 * Output: a table on stdout and bench/out/influence.json. Environment: BENCH_INFLUENCE_N
 * (training images, default 4,000 or 2,000), BENCH_INFLUENCE_EPOCHS (default 20).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, PMatEKFAC, PMatKFAC, selfInfluence, type PMatBase, type Representation } from '../src/index.js';
import { parseIdx } from '../src/cli/idx.js';
import { loadBundledData } from '../src/cli/bundled.js';
import { MODEL_BUILDERS, type BundledModelName } from '../scripts/model-architectures.js';
import { median } from './measure.js';

const DEBIAN = '/usr/share/datasets/fashion-mnist';
const BATCH = 125;

await tf.setBackend(process.env.BENCH_BACKEND ?? 'wasm');
await tf.ready();

/** mulberry32. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function trainingImages(): Promise<{ xs: Float32Array; labels: Int32Array; n: number; source: string }> {
  const images = join(DEBIAN, 'train-images-idx3-ubyte.gz');
  const labelsPath = join(DEBIAN, 'train-labels-idx1-ubyte.gz');
  if (existsSync(images) && existsSync(labelsPath)) {
    const n = Number(process.env.BENCH_INFLUENCE_N ?? 4000);
    const im = parseIdx(gunzipSync(readFileSync(images)), images);
    const lb = parseIdx(gunzipSync(readFileSync(labelsPath)), labelsPath);
    return { xs: Float32Array.from(im.data.subarray(0, n * 784), (v) => v / 255), labels: Int32Array.from(lb.data.subarray(0, n)), n, source: `${DEBIAN} (training set, first ${n})` };
  }
  const n = Math.min(2000, Number(process.env.BENCH_INFLUENCE_N ?? 2000));
  const { xs, labels } = await loadBundledData({ inputShape: [784], count: n });
  const out = Float32Array.from(xs.dataSync());
  xs.dispose();
  return { xs: out, labels: labels.slice(0, n), n, source: `bundled data/fashion-mnist (${n} images)` };
}

/** Flips `fraction` of the labels to a different class; returns the noisy labels and the flipped indices. */
function flipLabels(labels: Int32Array, fraction: number, seed: number): { noisy: Int32Array; flipped: Set<number> } {
  const r = rng(seed);
  const order = Array.from(labels.keys());
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const flipped = new Set(order.slice(0, Math.round(fraction * labels.length)));
  const noisy = Int32Array.from(labels, (y, i) => (flipped.has(i) ? (y + 1 + Math.floor(r() * 9)) % 10 : y));
  return { noisy, flipped };
}

async function train(name: BundledModelName, xs: tf.Tensor, ys: Int32Array, epochs: number): Promise<tf.Sequential> {
  const { build } = MODEL_BUILDERS[name];
  const model = build();
  const optimizer = tf.train.adam(1e-3);
  const r = rng(1234);
  const n = ys.length;
  const labels = tf.tensor1d(ys, 'int32');
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let start = 0; start < n; start += 64) {
      const idx = tf.tensor1d(order.subarray(start, Math.min(start + 64, n)), 'int32');
      const x = tf.gather(xs, idx);
      const y = tf.tidy(() => tf.oneHot(tf.gather(labels, idx), 10));
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar, true)!;
      tf.dispose([idx, x, y, loss]);
    }
  }
  optimizer.dispose();
  labels.dispose();
  return model;
}

/** Recall of the flipped examples among the top `fraction` of a ranking (highest score first). */
function recall(scores: ArrayLike<number>, flipped: Set<number>, fraction: number): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const top = order.slice(0, Math.round(fraction * scores.length));
  return top.filter((i) => flipped.has(i)).length / flipped.size;
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

const started = performance.now();
const load0 = loadavg();
const epochs = Number(process.env.BENCH_INFLUENCE_EPOCHS ?? 20);
const data = await trainingImages();
const { noisy, flipped } = flipLabels(data.labels, 0.1, 42);
console.log(`mislabel detection: ${data.n} training images from ${data.source}, ${flipped.size} labels flipped (10%), ${epochs} epochs`);

interface ModelResult {
  model: string;
  parameters: number;
  trainAccuracyOnNoisyLabels: number;
  /** One plain gradient step over all N examples, ms. */
  unitMs: number;
  rankings: Array<{ method: string; top10: number; top20: number; fitMs?: number; scoreMs?: number; perThousandUnits?: number }>;
}
const results: ModelResult[] = [];

for (const name of ['fmnist-mlp', 'fmnist-cnn'] as BundledModelName[]) {
  const { inputShape } = MODEL_BUILDERS[name];
  const xs = tf.tensor(data.xs, [data.n, ...inputShape]);
  const t0 = performance.now();
  const model = await train(name, xs, noisy, epochs);
  console.error(`${name}: trained in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const loader = Array.from({ length: Math.ceil(data.n / BATCH) }, (_, k) => {
    const size = Math.min(BATCH, data.n - k * BATCH);
    return { xs: tf.slice(xs, [k * BATCH], [size]), ys: tf.tensor1d(noisy.subarray(k * BATCH, k * BATCH + size), 'int32') };
  });
  // The unit: forward + backward of the mean loss over the same batches.
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const unitRuns: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const t = performance.now();
    for (const b of loader) {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(tf.oneHot(b.ys, 10), model.apply(b.xs) as tf.Tensor) as tf.Scalar, vars);
      await value.data();
      tf.dispose([value, ...Object.values(grads)]);
    }
    unitRuns.push(performance.now() - t);
  }
  const unitMs = median(unitRuns);
  const perExampleLoss = tf.tidy(() => tf.concat(loader.map((b) => tf.losses.softmaxCrossEntropy(tf.oneHot(b.ys, 10), model.predict(b.xs) as tf.Tensor, undefined, undefined, tf.Reduction.NONE))));
  const accuracy = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.concat(loader.map((b) => tf.argMax(model.predict(b.xs) as tf.Tensor, 1))), tf.tensor1d(noisy, 'int32')), 'float32')).dataSync()[0]!);
  const parameters = model.countParams();
  const rankings: ModelResult['rankings'] = [];
  for (const [method, representation] of [['self-influence EK-FAC', PMatEKFAC], ['self-influence KFAC', PMatKFAC]] as const) {
    const fit = await timed(async () => {
      const F = (await FIM({ model, loader, representation: representation as Representation<PMatBase>, workers: 1 })) as PMatBase;
      if (F instanceof PMatEKFAC) await F.updateDiag(loader);
      return F;
    });
    const score = await timed(() => selfInfluence({ model, trainLoader: loader, curvature: fit.value }));
    const s = score.value.dataSync();
    rankings.push({ method, top10: recall(s, flipped, 0.1), top20: recall(s, flipped, 0.2), fitMs: fit.ms, scoreMs: score.ms, perThousandUnits: (fit.ms + score.ms) / unitMs });
    score.value.dispose();
    fit.value.dispose();
  }
  const lossValues = perExampleLoss.dataSync();
  rankings.push({ method: 'training loss', top10: recall(lossValues, flipped, 0.1), top20: recall(lossValues, flipped, 0.2) });
  const r = rng(7);
  const random = Float64Array.from({ length: data.n }, () => r());
  rankings.push({ method: 'random', top10: recall(random, flipped, 0.1), top20: recall(random, flipped, 0.2) });
  results.push({ model: name, parameters, trainAccuracyOnNoisyLabels: accuracy, unitMs, rankings });
  tf.dispose([xs, perExampleLoss, ...loader.flatMap((b) => [b.xs, b.ys])]);
  model.dispose();
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log('\nmodel        ranking                top 10%   top 20%   fit (s)  score (s)  per 1,000 examples (× plain gradient step)');
for (const m of results) {
  for (const r of m.rankings) {
    const cost = r.perThousandUnits === undefined ? '—' : r.perThousandUnits.toFixed(1);
    console.log(`${m.model.padEnd(13)}${r.method.padEnd(23)}${pct(r.top10).padStart(7)}${pct(r.top20).padStart(10)}${(r.fitMs === undefined ? '—' : (r.fitMs / 1000).toFixed(2)).padStart(10)}${(r.scoreMs === undefined ? '—' : (r.scoreMs / 1000).toFixed(2)).padStart(11)}${cost.padStart(12)}`);
  }
  console.log(`${m.model}: ${m.parameters.toLocaleString('en')} parameters, accuracy on the noisy training labels ${pct(m.trainAccuracyOnNoisyLabels)}, plain gradient step over ${data.n} examples ${m.unitMs.toFixed(0)} ms`);
}
const out = {
  schema: 1,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage: { start: load0, end: loadavg() } },
  backend: tf.getBackend(),
  data: { source: data.source, n: data.n, flipped: flipped.size, epochs },
  results,
  seconds: (performance.now() - started) / 1000,
};
mkdirSync(join(import.meta.dirname, 'out'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'out', 'influence.json'), JSON.stringify(out, null, 2));
console.log(`\n${out.seconds.toFixed(0)} s in all; load average ${load0.map((x) => x.toFixed(1)).join(' ')} → ${loadavg().map((x) => x.toFixed(1)).join(' ')}; JSON in bench/out/influence.json`);
