/**
 * The architectures of the bundled models (data/models/<name>), with seeded initialisers so that
 * `npm run train-model` reproduces them.
 */
import * as tf from '@tensorflow/tfjs';

export type BundledModelName = 'fmnist-cnn' | 'fmnist-mlp';

let seed = 0;
const init = () => tf.initializers.glorotUniform({ seed: ++seed });

/** conv 3×3/2 (4) → conv 3×3/2 (8) → flatten → dense 10: 3,226 parameters, conv and dense layers. */
function cnn(): tf.Sequential {
  seed = 100;
  return tf.sequential({
    name: 'fmnist_cnn',
    layers: [
      tf.layers.conv2d({ name: 'conv1', inputShape: [28, 28, 1], filters: 4, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init() }),
      tf.layers.conv2d({ name: 'conv2', filters: 8, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init() }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ name: 'logits', units: 10, kernelInitializer: init() }),
    ],
  });
}

/** 784 → 32 (relu) → 10: 25,450 parameters. */
function mlp(): tf.Sequential {
  seed = 200;
  return tf.sequential({
    name: 'fmnist_mlp',
    layers: [
      tf.layers.dense({ name: 'hidden', inputShape: [784], units: 32, activation: 'relu', kernelInitializer: init() }),
      tf.layers.dense({ name: 'logits', units: 10, kernelInitializer: init() }),
    ],
  });
}

export const MODEL_BUILDERS: Record<BundledModelName, { build: () => tf.Sequential; inputShape: number[]; epochs: number }> = {
  'fmnist-cnn': { build: cnn, inputShape: [28, 28, 1], epochs: 8 },
  'fmnist-mlp': { build: mlp, inputShape: [784], epochs: 6 },
};
