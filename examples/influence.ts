/**
 * Influence functions on Fashion-MNIST (`npx tsx examples/influence.ts [--out influence.html]`).
 *
 * An MLP (784 → 64 → 10) is trained on 1,000 bundled Fashion-MNIST images, then
 * `pairwiseInfluence` (EK-FAC, damping 0.1 × the mean eigenvalue) scores every training image
 * against a few held-out test images: scores[q, t] = ∇ℓ_qᵀ (F + λI)⁻¹ ∇ℓ_t. A large positive
 * score means a gradient step on training image t lowers the loss on test image q (helpful),
 * a negative one that it raises it (harmful). The page shows, for each test image, the five
 * most helpful and the five most harmful training images with their labels and scores, in one
 * self-contained HTML file (PNG data URIs, nothing fetched).
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { PMatEKFAC, pairwiseInfluence } from '../src/index.js';
import { FASHION_CLASSES, loadBundledData } from '../src/cli/bundled.js';
import { pngDataUri } from '../src/report/png.js';
import { writeFileAtomic } from '../src/io/atomic-write.js';

export interface InfluenceExample {
  /** Index of the test image among the held-out images. */
  query: number;
  label: number;
  predicted: number;
  /** Training indices and scores, most helpful first. */
  helpful: Array<{ index: number; label: number; score: number }>;
  /** Training indices and scores, most harmful (most negative) first. */
  harmful: Array<{ index: number; label: number; score: number }>;
}

export interface InfluenceResult {
  examples: InfluenceExample[];
  /** The HTML page. */
  html: string;
  /** Fraction of the top-5 helpful training images that share the test image's label. */
  helpfulSameLabel: number;
}

/** A 28×28 grey image [784] in [0, 1] as a PNG data URI, scaled 3×. */
function imageUri(pixels: Float32Array | number[]): string {
  const s = 3;
  const rgba = new Uint8Array(28 * s * 28 * s * 4);
  for (let y = 0; y < 28 * s; y++) {
    for (let x = 0; x < 28 * s; x++) {
      const v = 255 - Math.round(255 * pixels[Math.floor(y / s) * 28 + Math.floor(x / s)]!);
      rgba.set([v, v, v, 255], (y * 28 * s + x) * 4);
    }
  }
  return pngDataUri(rgba, 28 * s, 28 * s);
}

function page(examples: InfluenceExample[], train: Float32Array, test: Float32Array, offsets: number[]): string {
  const img = (data: Float32Array, i: number) => imageUri(data.subarray(i * 784, (i + 1) * 784));
  const cell = (uri: string, caption: string) => `<figure><img src="${uri}" alt=""><figcaption>${caption}</figcaption></figure>`;
  const rows = examples
    .map((e, k) => {
      const q = cell(img(test, offsets[k]!), `test: ${FASHION_CLASSES[e.label]}<br>predicted: ${FASHION_CLASSES[e.predicted]}`);
      const list = (items: InfluenceExample['helpful']) => items.map((t) => cell(img(train, t.index), `#${t.index} ${FASHION_CLASSES[t.label]}<br>${t.score.toExponential(2)}`)).join('');
      return `<tr><td>${q}</td><td class="help">${list(e.helpful)}</td><td class="harm">${list(e.harmful)}</td></tr>`;
    })
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>nngeometry: influence functions on Fashion-MNIST</title>
<style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:4px;text-align:center;font-size:11px}
td{vertical-align:top;padding:6px;border-bottom:1px solid #ccc}.help{background:#eef8ee}.harm{background:#fbeeee}</style></head><body>
<h1>Most helpful and most harmful training images</h1>
<p>MLP 784-64-10 trained on 1,000 Fashion-MNIST images; scores ∇ℓ(test)ᵀ(F + λI)⁻¹∇ℓ(train) with F the EK-FAC Fisher
(nngeometry <code>pairwiseInfluence</code>). Positive: training on the image lowers the test loss.</p>
<table><tr><th>test image</th><th>most helpful (highest score)</th><th>most harmful (lowest score)</th></tr>
${rows}</table></body></html>`;
}

/** Runs the example; `small`: 3 test images instead of 6. Writes the page to `out` when given. */
export async function run(options: { small?: boolean; out?: string; log?: (line: string) => void } = {}): Promise<InfluenceResult> {
  const log = options.log ?? console.log;
  const queries = options.small ? 3 : 6;
  const { xs, labels } = await loadBundledData({ inputShape: [784], count: 1000 + 100 });
  const [trainX, testX] = tf.split(xs, [1000, 100]) as [tf.Tensor2D, tf.Tensor2D];
  xs.dispose();
  const trainY = tf.tensor1d(labels.subarray(0, 1000), 'int32');
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 64, inputShape: [784], activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(3e-3), loss: (y: tf.Tensor, f: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, f) });
  const onehot = tf.oneHot(trainY, 10);
  await model.fit(trainX, onehot, { epochs: 10, batchSize: 50, shuffle: false, verbose: 0 });
  onehot.dispose();

  // Evenly spaced held-out images.
  const offsets = Array.from({ length: queries }, (_, k) => Math.floor((k * 100) / queries));
  const queryX = tf.gather(testX, offsets);
  const queryY = tf.tensor1d(offsets.map((i) => labels[1000 + i]!), 'int32');
  const trainLoader = [0, 1, 2, 3].map((k) => ({ xs: tf.slice(trainX, [k * 250], [250]), ys: tf.slice(trainY, [k * 250], [250]) }));
  const t0 = performance.now();
  const scores = await pairwiseInfluence({ model, trainLoader, queryLoader: { xs: queryX, ys: queryY }, representation: PMatEKFAC });
  const seconds = (performance.now() - t0) / 1000;
  const s = scores.arraySync();
  const predicted = tf.tidy(() => tf.argMax(model.predict(queryX) as tf.Tensor2D, 1).dataSync());
  const trainLabels = labels.subarray(0, 1000);
  const examples = offsets.map((off, q) => {
    const order = Array.from(s[q]!.keys()).sort((a, b) => s[q]![b]! - s[q]![a]!);
    const item = (i: number) => ({ index: i, label: trainLabels[i]!, score: s[q]![i]! });
    return { query: off, label: labels[1000 + off]!, predicted: predicted[q]!, helpful: order.slice(0, 5).map(item), harmful: order.slice(-5).reverse().map(item) };
  });
  const html = page(examples, trainX.dataSync() as Float32Array, testX.dataSync() as Float32Array, offsets);
  if (options.out) await writeFileAtomic(options.out, html);
  const same = examples.reduce((a, e) => a + e.helpful.filter((h) => h.label === e.label).length, 0) / (5 * queries);
  log(`pairwiseInfluence (EK-FAC) of 1,000 training images on ${queries} test images in ${seconds.toFixed(2)} s`);
  for (const e of examples) {
    log(`test #${e.query} ${FASHION_CLASSES[e.label]} (predicted ${FASHION_CLASSES[e.predicted]}): helpful ${e.helpful.map((h) => FASHION_CLASSES[h.label]).join(', ')}; harmful ${e.harmful.map((h) => FASHION_CLASSES[h.label]).join(', ')}`);
  }
  log(`${(100 * same).toFixed(0)}% of the most helpful training images share the test image's label${options.out ? `; page written to ${options.out}` : ''}`);
  tf.dispose([trainX, testX, trainY, queryX, queryY, scores, ...trainLoader.flatMap((b) => [b.xs, b.ys])]);
  model.optimizer.dispose();
  model.dispose();
  return { examples, html, helpfulSameLabel: same };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tf.setBackend('wasm');
  await tf.ready();
  const at = process.argv.indexOf('--out');
  await run({ small: process.argv.includes('--small'), out: at > 0 ? process.argv[at + 1] : 'influence.html' });
}
