/**
 * `npm run bench:training`: training curves of NaturalGradientOptimizer (KFAC) against Adam and
 * SGD with momentum on the bundled Fashion-MNIST architectures (scripts/model-architectures.ts:
 * MLP 784-32-10, CNN conv4/conv8/dense10), from the same seeded initial weights and the same
 * seeded batch order.
 *
 * Data: the first 10,000 images of Debian's `dataset-fashion-mnist` training set
 * (/usr/share/datasets/fashion-mnist), or the 2,000 bundled images when it is absent.
 * Measured per optimizer and model, on one core of the wasm backend:
 * - the full training-set loss after each epoch (evaluation time excluded from the wall time);
 * - the wall time per epoch, and the median time of one step of each kind (Adam step; natural-
 *   gradient step plain, with curvature statistics, with a preconditioner rebuild), as a
 *   multiple of the median Adam step;
 * - the epochs each optimizer needs to reach Adam's loss after 5 epochs (interpolated linearly
 *   between epochs; "> N" when not reached).
 * Output: tables on stdout, JSON in bench/out/training.json. Flags: --epochs N (default 5),
 * --models mlp,cnn, --examples N, --ng-lr X, --ng-damping X.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { NaturalGradientOptimizer, PMatKFAC } from '../src/index.js';
import { parseIdx } from '../src/cli/idx.js';
import { BUNDLED_IMAGES, BUNDLED_LABELS } from '../src/cli/bundled.js';
import { MODEL_BUILDERS, type BundledModelName } from '../scripts/model-architectures.js';
import { median } from './measure.js';

const { values: flags } = parseArgs({
  options: {
    epochs: { type: 'string', default: '5' },
    models: { type: 'string', default: 'mlp,cnn' },
    examples: { type: 'string', default: '10000' },
    'ng-lr': { type: 'string', default: '0.1' },
    'ng-damping': { type: 'string', default: '0.01' },
  },
});
const EPOCHS = Number(flags.epochs);
const BATCH = 128;
const DEBIAN = '/usr/share/datasets/fashion-mnist';

function readIdx(path: string): { shape: number[]; data: ArrayLike<number> } {
  return parseIdx(gunzipSync(readFileSync(path)), path);
}

function loadData(count: number): { images: Float32Array; labels: Int32Array; n: number; source: string } {
  const debian = existsSync(`${DEBIAN}/train-images-idx3-ubyte.gz`);
  const [imagesPath, labelsPath, source] = debian
    ? [`${DEBIAN}/train-images-idx3-ubyte.gz`, `${DEBIAN}/train-labels-idx1-ubyte.gz`, `Debian dataset-fashion-mnist (training set, first ${count})`]
    : [BUNDLED_IMAGES, BUNDLED_LABELS, 'the 2,000 bundled images (dataset-fashion-mnist not installed)'];
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  const n = Math.min(count, images.shape[0]!);
  return { images: Float32Array.from({ length: n * 784 }, (_, i) => images.data[i]! / 255), labels: Int32Array.from({ length: n }, (_, i) => labels.data[i]!), n, source };
}

type OptimizerName = 'adam' | 'sgd-momentum' | 'kfac';

interface Run {
  model: BundledModelName;
  optimizer: OptimizerName;
  /** Training-set loss before training and after each epoch. */
  loss: number[];
  /** Cumulative training wall time (s) at each entry of `loss`. */
  seconds: number[];
  /** Cumulative CPU time (user + system, s) of this process at each entry of `loss`: less sensitive than wall time to other processes on a loaded machine. */
  cpuSeconds: number[];
  /** Median step times, ms, by kind. */
  stepMs: Record<string, number>;
  steps: number;
}

function meanLoss(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): number {
  let sum = 0;
  const n = xs.shape[0]!;
  for (let b = 0; b < n; b += 1000) {
    const size = Math.min(1000, n - b);
    sum += tf.tidy(() => {
      const x = tf.slice(xs, b, size);
      const y = tf.slice(ys, b, size);
      return tf.losses.softmaxCrossEntropy(y, model.predict(x) as tf.Tensor).mul(size).dataSync()[0]!;
    });
  }
  return sum / n;
}

function shuffled(n: number, seed: number): number[] {
  const order = [...Array(n).keys()];
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

async function train(name: BundledModelName, optimizer: OptimizerName, xs: tf.Tensor, ys: tf.Tensor, labels: tf.Tensor1D): Promise<Run> {
  const model = MODEL_BUILDERS[name].build();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const n = xs.shape[0]!;
  const tfOptimizer = optimizer === 'adam' ? tf.train.adam(1e-3) : optimizer === 'sgd-momentum' ? tf.train.momentum(0.05, 0.9) : null;
  const ng =
    optimizer === 'kfac'
      ? new NaturalGradientOptimizer({ model, representation: PMatKFAC, learningRate: Number(flags['ng-lr']), damping: Number(flags['ng-damping']), seed: 1 })
      : null;
  const loss = [meanLoss(model, xs, ys)];
  const seconds = [0];
  const cpuSeconds = [0];
  let cpu = 0;
  const times: Record<string, number[]> = {};
  let elapsed = 0;
  let steps = 0;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const order = shuffled(n, 1000 + epoch);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let b = 0; b < n; b += BATCH) {
      const idx = tf.tensor1d(order.slice(b, b + BATCH), 'int32');
      const x = tf.gather(xs, idx);
      const y = tf.gather(ys, idx);
      const s0 = performance.now();
      let kind = optimizer;
      if (tfOptimizer) {
        tf.tidy(() => {
          tfOptimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, false, vars);
        });
        await tf.nextFrame();
      } else {
        const lab = tf.gather(labels, idx);
        await ng!.step({ xs: x, ys: lab });
        lab.dispose();
        const last = ng!.lastStep!;
        kind = (last.inverseUpdated ? 'kfac+inverse' : last.curvatureUpdated ? 'kfac+curvature' : 'kfac') as OptimizerName;
      }
      (times[kind] ??= []).push(performance.now() - s0);
      tf.dispose([idx, x, y]);
      steps++;
    }
    elapsed += (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1e6;
    cpuSeconds.push(cpu);
    loss.push(meanLoss(model, xs, ys));
    seconds.push(elapsed);
    process.stderr.write(`${name} ${optimizer} epoch ${epoch + 1}: loss ${loss[loss.length - 1]!.toFixed(4)}, ${elapsed.toFixed(1)} s (CPU ${cpu.toFixed(1)} s)\n`);
  }
  tfOptimizer?.dispose();
  ng?.dispose();
  model.dispose();
  return { model: name, optimizer, loss, seconds, cpuSeconds, stepMs: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])), steps };
}

/** First (fractional) epoch at which the curve reaches `target`, linear between epochs; null when never. */
function epochsToReach(loss: number[], target: number): number | null {
  for (let e = 1; e < loss.length; e++) {
    if (loss[e]! <= target) return e - 1 + (loss[e - 1]! - target) / (loss[e - 1]! - loss[e]!);
  }
  return null;
}

await tf.setBackend('wasm');
await tf.ready();
const started = performance.now();
const data = loadData(Number(flags.examples));
console.log(`Load average at the start: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (2 cores shared)`);
console.log(`Training bench: ${data.n} images from ${data.source}; batch ${BATCH}, ${EPOCHS} epochs, wasm backend (1 thread)`);
console.log(`Adam lr 1e-3; SGD lr 0.05 momentum 0.9; KFAC NaturalGradientOptimizer lr ${flags['ng-lr']}, damping ${flags['ng-damping']}, curvature every 10 steps, inverse every 100, decay 0.95, Monte-Carlo Fisher, momentum 0.9, KL clip 1e-3`);
const runs: Run[] = [];
for (const short of flags.models!.split(',')) {
  const name = `fmnist-${short}` as BundledModelName;
  const shape = MODEL_BUILDERS[name].inputShape;
  const xs = tf.tensor(data.images, [data.n, ...shape]);
  const labels = tf.tensor1d(data.labels, 'int32');
  const ys = tf.oneHot(labels, 10).toFloat();
  for (const opt of ['adam', 'sgd-momentum', 'kfac'] as const) runs.push(await train(name, opt, xs, ys, labels));
  tf.dispose([xs, ys, labels]);
}

for (const short of flags.models!.split(',')) {
  const name = `fmnist-${short}` as BundledModelName;
  const mine = runs.filter((r) => r.model === name);
  const adam = mine.find((r) => r.optimizer === 'adam')!;
  const target = adam.loss[EPOCHS]!;
  const adamStep = adam.stepMs.adam!;
  console.log(`\n## ${name}: training loss after each epoch (wall time s)`);
  console.log(`| optimizer | ${[...Array(EPOCHS + 1).keys()].map((e) => `epoch ${e}`).join(' | ')} | epochs to Adam's ${EPOCHS}-epoch loss (${target.toFixed(4)}) | time per epoch / Adam's (wall, CPU) |`);
  console.log(`|---|${'---|'.repeat(EPOCHS + 1)}---|---|`);
  for (const r of mine) {
    const reach = epochsToReach(r.loss, target);
    const perEpoch = r.seconds[EPOCHS]! / adam.seconds[EPOCHS]!;
    const perEpochCpu = r.cpuSeconds[EPOCHS]! / adam.cpuSeconds[EPOCHS]!;
    console.log(`| ${r.optimizer} | ${r.loss.map((l, e) => `${l.toFixed(4)} (${r.seconds[e]!.toFixed(1)})`).join(' | ')} | ${reach === null ? `> ${EPOCHS}` : reach.toFixed(2)} | ${perEpoch.toFixed(2)}×, ${perEpochCpu.toFixed(2)}× |`);
  }
  const ng = mine.find((r) => r.optimizer === 'kfac')!;
  const amortised = ng.seconds[EPOCHS]! / ng.steps / (adam.seconds[EPOCHS]! / adam.steps);
  console.log(`\nStep cost as a multiple of the median Adam step (${adamStep.toFixed(2)} ms): ` +
    Object.entries(ng.stepMs).map(([k, v]) => `${k} ${(v / adamStep).toFixed(2)}×`).join(', ') + `; SGD ${(mine.find((r) => r.optimizer === 'sgd-momentum')!.stepMs['sgd-momentum']! / adamStep).toFixed(2)}×; KFAC amortised over the run ${amortised.toFixed(2)}×`);
}
const total = (performance.now() - started) / 1000;
console.log(`\nTotal ${total.toFixed(0)} s (load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')}). JSON written to bench/out/training.json`);
mkdirSync('bench/out', { recursive: true });
writeFileSync('bench/out/training.json', JSON.stringify({ schema: 1, examples: data.n, source: data.source, batch: BATCH, epochs: EPOCHS, flags, runs, totalSeconds: total }, null, 1));
