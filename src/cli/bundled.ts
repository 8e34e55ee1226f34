/**
 * The data and models shipped in data/: 2,000 Fashion-MNIST test images (MIT, Zalando SE; see
 * data/fashion-mnist/README.md) and the small models trained on the training set by
 * `npm run train-model`. Node only.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { tf } from '../tf.js';
import { readExamples, readLabels } from './data-io.js';
import { loadModelFile } from './model-io.js';

/** The repository's data/ folder (the same relative path from src/cli and from dist/cli). */
export const DATA_DIR = fileURLToPath(new URL('../../data/', import.meta.url));
export const BUNDLED_IMAGES = join(DATA_DIR, 'fashion-mnist', 'test-images-idx3-ubyte.gz');
export const BUNDLED_LABELS = join(DATA_DIR, 'fashion-mnist', 'test-labels-idx1-ubyte.gz');
/** Fashion-MNIST class names, by label. */
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

/** Path of a bundled model's model.json ('fmnist-cnn', 'fmnist-mlp'). */
export function bundledModelPath(name: string): string {
  return join(DATA_DIR, 'models', name, 'model.json');
}

/** Loads a bundled model. */
export function loadBundledModel(name: string): Promise<tf.LayersModel> {
  return loadModelFile(bundledModelPath(name));
}

/**
 * The first `count` (default all 2,000) bundled images, scaled to [0, 1] and shaped
 * [count, ...inputShape], with their labels. The caller owns (and disposes) `xs`.
 */
export async function loadBundledData(options: { inputShape: number[]; count?: number }): Promise<{ xs: tf.Tensor; labels: Int32Array }> {
  const images = await readExamples(BUNDLED_IMAGES, 'bundled images', options.count);
  const { labels } = await readLabels(BUNDLED_LABELS, options.count);
  const n = images.n;
  const per = images.values.length / images.n;
  const values = images.values.subarray(0, n * per).map((v) => v / 255);
  return { xs: tf.tensor(values, [n, ...options.inputShape]), labels: labels.subarray(0, n) };
}
