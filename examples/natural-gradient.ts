/**
 * Natural gradient with KFAC against Adam on the same model and data
 * (`npx tsx examples/natural-gradient.ts`).
 *
 * A seeded MLP 784-32-10 (tanh) is trained full-batch on bundled Fashion-MNIST images from the
 * same initial weights, twice:
 * - `NaturalGradientOptimizer` (KFAC, the exact Fisher of the softmax output): every `refresh`
 *   steps the Kronecker factors are recomputed on the batch and the damped inverse rebuilt; each
 *   step θ ← θ − lr (F + damping·I)⁻¹ ∇L (no momentum, no KL clipping, to compare the raw
 *   preconditioning);
 * - Adam (learning rate 1e-2).
 * Prints both loss curves and, honestly, which optimiser reached the lower loss and after how many
 * steps KFAC first matched Adam's final loss (if it did).
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { LayerCollection, NaturalGradientOptimizer, PVector } from '../src/index.js';
import { loadBundledData } from '../src/cli/bundled.js';

export interface NaturalGradientResult {
  /** Training loss before each step and after the last: length steps + 1. */
  kfac: number[];
  adam: number[];
  /** First step count after which KFAC's loss ≤ Adam's final loss; null when never. */
  kfacStepsToAdamFinal: number | null;
  /** The sentence printed as the conclusion. */
  claim: string;
  /** What the claim says: KFAC reached Adam's final loss within the same number of steps. */
  kfacReachedAdam: boolean;
}

function mlp(): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 32, inputShape: [784], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 31 }) }));
  model.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 32 }) }));
  return model;
}

/** Mean softmax cross-entropy of the model on (xs, ys). */
function loss(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(ys, model.apply(xs) as tf.Tensor) as tf.Scalar;
}

function lossValue(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): number {
  return tf.tidy(() => loss(model, xs, ys).dataSync()[0]!);
}

/**
 * Trains both optimisers. `small`: 256 images, 20 steps; otherwise 512 images, 40 steps.
 * `lr`, `regul` and `refresh` (steps between Fisher recomputations) tune KFAC.
 */
export async function run(
  options: { small?: boolean; lr?: number; regul?: number; refresh?: number; log?: (line: string) => void } = {},
): Promise<NaturalGradientResult> {
  const log = options.log ?? console.log;
  const n = options.small ? 256 : 512;
  const steps = options.small ? 20 : 40;
  const { lr = 1, regul = 1, refresh = 5 } = options;
  const { xs, labels } = await loadBundledData({ inputShape: [784], count: n });
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 10));
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const theta0 = PVector.fromModel(model, lc);

  // KFAC natural gradient through the library's optimizer.
  const kfac = [lossValue(model, xs, ys)];
  const natural = new NaturalGradientOptimizer({
    model,
    layerCollection: lc,
    learningRate: lr,
    damping: regul,
    curvatureUpdateEvery: refresh,
    inverseUpdateEvery: refresh,
    decay: 0,
    fisher: 'exact',
    momentum: 0,
    klClip: null,
  });
  for (let t = 0; t < steps; t++) {
    await natural.step({ xs, ys });
    kfac.push(lossValue(model, xs, ys));
  }
  natural.dispose();

  // Adam from the same initial weights.
  theta0.copyToModel(model);
  const adam = [lossValue(model, xs, ys)];
  const opt = tf.train.adam(1e-2);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let t = 0; t < steps; t++) {
    tf.tidy(() => {
      opt.minimize(() => loss(model, xs, ys), false, vars);
    });
    adam.push(lossValue(model, xs, ys));
  }
  opt.dispose();

  log(`MLP 784-32-10 (tanh), d = ${model.countParams()}, full batch of ${n} bundled images, ${steps} steps`);
  log(`KFAC: lr ${lr}, regul ${regul}, Fisher recomputed every ${refresh} steps; Adam: lr 1e-2`);
  log('step  KFAC loss  Adam loss');
  for (let t = 0; t <= steps; t += Math.max(1, Math.floor(steps / 10))) {
    log(`${String(t).padStart(4)}  ${kfac[t]!.toFixed(4).padStart(9)}  ${adam[t]!.toFixed(4).padStart(9)}`);
  }
  const adamFinal = adam[steps]!;
  const kfacFinal = kfac[steps]!;
  const hit = kfac.findIndex((v) => v <= adamFinal);
  const kfacStepsToAdamFinal = hit < 0 ? null : hit;
  const kfacReachedAdam = kfacStepsToAdamFinal !== null;
  const claim = kfacReachedAdam
    ? `KFAC reached Adam's final loss ${adamFinal.toFixed(4)} after ${kfacStepsToAdamFinal} steps (Adam: ${steps}); final losses KFAC ${kfacFinal.toFixed(4)}, Adam ${adamFinal.toFixed(4)}.`
    : `KFAC did NOT reach Adam's final loss ${adamFinal.toFixed(4)} within ${steps} steps: ${kfacFinal < adamFinal ? 'KFAC' : 'Adam'} reached the lower loss (KFAC ${kfacFinal.toFixed(4)}, Adam ${adamFinal.toFixed(4)}).`;
  log(claim);

  [xs, ys].forEach((x) => x.dispose());
  theta0.dispose();
  model.dispose();
  return { kfac, adam, kfacStepsToAdamFinal, claim, kfacReachedAdam };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tf.setBackend('wasm');
  await tf.ready();
  await run({ small: process.argv.includes('--small') });
}
