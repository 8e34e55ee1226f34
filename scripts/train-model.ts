/**
 * `npm run train-model`: trains the small models bundled in data/models/ on the Fashion-MNIST
 * *training* set (60,000 images, from Debian's `dataset-fashion-mnist`; disjoint from the 2,000
 * bundled test images, on which accuracy is reported), seeded, with tfjs on the wasm backend.
 *
 * Usage: tsx scripts/train-model.ts [--model cnn|mlp|all] [--epochs N] [--train N] [--source DIR]
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installKernelFixes } from '../src/index.js';
import { parseIdx } from '../src/cli/idx.js';
import { saveModel } from '../src/cli/model-io.js';
import { loadBundledData } from '../src/cli/bundled.js';
import { MODEL_BUILDERS, type BundledModelName } from './model-architectures.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'all' },
    epochs: { type: 'string' },
    train: { type: 'string', default: '60000' },
    source: { type: 'string', default: '/usr/share/datasets/fashion-mnist' },
  },
});

function readTrainingSet(source: string, count: number): { xs: Float32Array; ys: Int32Array; n: number } {
  const imagesPath = join(source, 'train-images-idx3-ubyte.gz');
  const labelsPath = join(source, 'train-labels-idx1-ubyte.gz');
  if (!existsSync(imagesPath) || !existsSync(labelsPath)) {
    console.error(`${imagesPath} not found: 'apt-get install dataset-fashion-mnist' (Debian) or pass --source DIR with the Fashion-MNIST training IDX files`);
    process.exit(2);
  }
  const images = parseIdx(gunzipSync(readFileSync(imagesPath)), imagesPath);
  const labels = parseIdx(gunzipSync(readFileSync(labelsPath)), labelsPath);
  const n = Math.min(count, images.shape[0]!);
  const xs = new Float32Array(n * 784);
  for (let i = 0; i < n * 784; i++) xs[i] = images.data[i]! / 255;
  return { xs, ys: Int32Array.from(labels.data.subarray(0, n)), n };
}

/** mulberry32: a tiny seeded PRNG, so that the shuffling order is reproducible. */
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

async function train(name: BundledModelName, epochs: number, data: ReturnType<typeof readTrainingSet>): Promise<void> {
  const { build, inputShape } = MODEL_BUILDERS[name];
  const model = build();
  // The models output logits (the FIM variant 'classif_logits'); tfjs's built-in sparse
  // cross-entropy expects probabilities, so the loss is written out.
  const optimizer = tf.train.adam(1e-3);
  const random = rng(1234);
  const batch = 64;
  const t0 = performance.now();
  for (let epoch = 0; epoch < epochs; epoch++) {
    // Fisher–Yates with the seeded generator; fit then sees the batches in this order.
    const order = Int32Array.from({ length: data.n }, (_, i) => i);
    for (let i = data.n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let lossSum = 0;
    for (let start = 0; start < data.n; start += batch) {
      const idx = order.subarray(start, Math.min(start + batch, data.n));
      const xb = new Float32Array(idx.length * 784);
      idx.forEach((k, r) => xb.set(data.xs.subarray(k * 784, (k + 1) * 784), r * 784));
      const x = tf.tensor(xb, [idx.length, ...inputShape]);
      const y = tf.oneHot(tf.tensor1d(Int32Array.from(idx, (k) => data.ys[k]!), 'int32'), 10);
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar, true)!;
      lossSum += loss.dataSync()[0]! * idx.length;
      tf.dispose([x, y, loss]);
    }
    console.log(`${name}: epoch ${epoch + 1}/${epochs}, train loss ${(lossSum / data.n).toFixed(4)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const test = await loadBundledData({ inputShape });
  const logits = model.predict(test.xs) as tf.Tensor;
  const predicted = Array.from(logits.argMax(-1).dataSync());
  const labels = test.labels;
  const accuracy = predicted.reduce((a, p, i) => a + (p === labels[i] ? 1 : 0), 0) / labels.length;
  tf.dispose([logits, test.xs]);
  const dir = join(import.meta.dirname, '..', 'data', 'models', name);
  await saveModel(model, dir, {
    dataset: 'Fashion-MNIST (inputs scaled to [0, 1])',
    trainedOn: `first ${data.n} training images, ${epochs} epochs, Adam 1e-3, batch ${batch}, seed 1234`,
    testAccuracyOnBundled2000: Number(accuracy.toFixed(4)),
    script: 'scripts/train-model.ts',
  });
  console.log(`${name}: accuracy on the 2,000 bundled test images ${(accuracy * 100).toFixed(1)}%; saved to ${dir}`);
  model.dispose();
  optimizer.dispose();
}

await tf.setBackend('wasm');
installKernelFixes();
const names = values.model === 'all' ? (Object.keys(MODEL_BUILDERS) as BundledModelName[]) : [values.model as BundledModelName];
if (!names.every((n) => n in MODEL_BUILDERS)) {
  console.error(`--model must be one of ${Object.keys(MODEL_BUILDERS).join(', ')} or all`);
  process.exit(2);
}
const data = readTrainingSet(values.source!, Number(values.train));
for (const name of names) await train(name, values.epochs ? Number(values.epochs) : MODEL_BUILDERS[name].epochs, data);
