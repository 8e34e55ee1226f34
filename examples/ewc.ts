/**
 * Elastic weight consolidation on two tasks from the bundled Fashion-MNIST images
 * (`npx tsx examples/ewc.ts`).
 *
 * Task A = classes 0–4, task B = classes 5–9. A seeded MLP 784-64-10 is trained on A, the
 * Fisher F_A is computed on A in each of PMatDiag, PMatKFAC and PMatEKFAC, then training
 * continues on B from the same weights: once plainly, and once per representation with the
 * penalty `ewcPenalty(F_A, θ_A, { model, lambda })` = λ/2 (θ − θ_A)ᵀ F_A (θ − θ_A) added to the
 * loss (the library differentiates it: its gradient is λ·F_A(θ − θ_A), through the Kronecker
 * factors for KFAC/EKFAC, never a d×d matrix).
 * Reports the accuracy on held-out images of A and B after B, task-aware (argmax over the
 * task's own five classes) and over all ten classes, and the drift (θ − θ_A)ᵀF_A(θ − θ_A).
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, PMatDiag, PMatEKFAC, PMatKFAC, PVector, ewcPenalty, type PMat, type Representation } from '../src/index.js';
import { loadBundledData } from '../src/cli/bundled.js';

/** Accuracies after training on B, in [0, 1]. */
export interface EwcAccuracies {
  /** Task A, argmax over classes 0–4 (task-aware). */
  taskA: number;
  /** Task B, argmax over classes 5–9. */
  taskB: number;
  /** Task A, argmax over all ten classes (class-incremental). */
  taskAAllClasses: number;
  /** (θ − θ_A)ᵀ F_A (θ − θ_A), with the Fisher of the same representation (Diag for plain fine-tuning). */
  drift: number;
}

export type EwcRepresentation = 'PMatDiag' | 'PMatKFAC' | 'PMatEKFAC';

export interface EwcResult {
  lambda: number;
  /** Task-A accuracy right after training on A (task-aware). */
  taskAAfterA: number;
  plain: EwcAccuracies;
  /** EWC with the Fisher in each representation asked for. */
  ewc: Partial<Record<EwcRepresentation, EwcAccuracies>>;
}

const REPRESENTATIONS: Record<EwcRepresentation, Representation<PMat>> = { PMatDiag, PMatKFAC, PMatEKFAC };

interface Split {
  xs: tf.Tensor2D;
  labels: Int32Array;
}

/** Rows of xs whose label is in [lo, lo + 5). */
function select(xs: tf.Tensor2D, labels: Int32Array, lo: number): Split {
  const idx = [...labels.keys()].filter((i) => labels[i]! >= lo && labels[i]! < lo + 5);
  return { xs: tf.tidy(() => tf.gather(xs, tf.tensor1d(idx, 'int32'))), labels: Int32Array.from(idx, (i) => labels[i]!) };
}

/** Mini-batch Adam on softmax cross-entropy plus an optional penalty; batch order seeded. */
function train(model: tf.LayersModel, data: Split, epochs: number, seed: number, penalty?: () => tf.Scalar): void {
  const opt = tf.train.adam(1e-3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const n = data.labels.length;
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(data.labels, 'int32'), 10));
  let s = seed;
  for (let e = 0; e < epochs; e++) {
    const order = [...Array(n).keys()];
    for (let i = n - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      const j = s % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let b = 0; b < n; b += 32) {
      tf.tidy(() => {
        const idx = tf.tensor1d(order.slice(b, b + 32), 'int32');
        const x = tf.gather(data.xs, idx);
        const y = tf.gather(ys, idx);
        opt.minimize(() => {
          const ce = tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
          return penalty ? tf.add(ce, penalty()) : ce;
        }, false, vars);
      });
    }
  }
  ys.dispose();
  opt.dispose();
}

/** Accuracy with argmax restricted to classes [lo, hi). */
function accuracy(model: tf.LayersModel, data: Split, lo: number, hi: number): number {
  const pred = tf.tidy(() => tf.argMax((model.predict(data.xs) as tf.Tensor2D).slice([0, lo], [-1, hi - lo]), 1).add(lo));
  const p = pred.dataSync();
  pred.dispose();
  let hits = 0;
  for (let i = 0; i < p.length; i++) if (p[i] === data.labels[i]) hits++;
  return hits / data.labels.length;
}

function mlp(): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 64, inputShape: [784], activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 21 }) }));
  model.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 22 }) }));
  return model;
}

/**
 * Runs the experiment. `small`: 1,000 images (800 to train) and fewer epochs instead of
 * 2,000 (1,600 to train). `lambda`: EWC strength (default 1000). `representations`: the Fisher
 * representations to compare (default all three).
 */
export async function run(
  options: { small?: boolean; lambda?: number; representations?: EwcRepresentation[]; log?: (line: string) => void } = {},
): Promise<EwcResult> {
  const log = options.log ?? console.log;
  const count = options.small ? 1000 : 2000;
  const epochs = options.small ? 4 : 8;
  const lambda = options.lambda ?? 1000;
  const names = options.representations ?? (['PMatDiag', 'PMatKFAC', 'PMatEKFAC'] as EwcRepresentation[]);
  const nTrain = Math.round(count * 0.8);
  const { xs: all, labels } = await loadBundledData({ inputShape: [784], count });
  const [trainX, testX] = tf.split(all as tf.Tensor2D, [nTrain, count - nTrain]) as [tf.Tensor2D, tf.Tensor2D];
  all.dispose();
  const trainA = select(trainX, labels.subarray(0, nTrain), 0);
  const trainB = select(trainX, labels.subarray(0, nTrain), 5);
  const testA = select(testX, labels.subarray(nTrain), 0);
  const testB = select(testX, labels.subarray(nTrain), 5);
  trainX.dispose();
  testX.dispose();

  const model = mlp();
  train(model, trainA, epochs, 1);
  const taskAAfterA = accuracy(model, testA, 0, 5);
  const thetaA = PVector.fromModel(model);
  const batches = tf.split(trainA.xs, [...Array(Math.ceil(trainA.labels.length / 200)).keys()].map((k) => Math.min(200, trainA.labels.length - 200 * k)));
  const fishers = new Map<EwcRepresentation, PMat>();
  for (const name of new Set<EwcRepresentation>(['PMatDiag', ...names])) {
    const F = await FIM({ model, loader: batches, representation: REPRESENTATIONS[name] });
    // EKFAC proper: the exact second moments in the Kronecker eigenbasis (otherwise it equals KFAC).
    if (F instanceof PMatEKFAC) await F.updateDiag(batches);
    fishers.set(name, F);
  }
  batches.forEach((b) => b.dispose());
  log(`EWC on bundled Fashion-MNIST: A = classes 0-4 (${trainA.labels.length} train / ${testA.labels.length} test), B = classes 5-9 (${trainB.labels.length} / ${testB.labels.length})`);
  log(`MLP 784-64-10, d = ${model.countParams()}, Adam 1e-3, ${epochs} epochs per task; Fisher traces on A: ${[...fishers].map(([n, F]) => `${n} ${F.trace().toPrecision(4)}`).join(', ')}`);
  log(`after A: task-A accuracy ${(100 * taskAAfterA).toFixed(1)}%`);

  const measure = (F: PMat): EwcAccuracies => {
    const theta = PVector.fromModel(model);
    const delta = theta.sub(thetaA);
    const drift = F.vTMv(delta);
    theta.dispose();
    delta.dispose();
    return { taskA: accuracy(model, testA, 0, 5), taskB: accuracy(model, testB, 5, 10), taskAAllClasses: accuracy(model, testA, 0, 10), drift };
  };
  const ewc: EwcResult['ewc'] = {};
  thetaA.copyToModel(model);
  train(model, trainB, epochs, 2);
  const plain = measure(fishers.get('PMatDiag')!);
  for (const name of names) {
    const F = fishers.get(name)!;
    thetaA.copyToModel(model);
    train(model, trainB, epochs, 2, () => ewcPenalty(F, thetaA, { model, lambda }));
    ewc[name] = measure(F);
  }
  log(`after B                  task A (0-4)  task B (5-9)  task A (all 10 classes)  (θ-θ_A)ᵀF(θ-θ_A)`);
  const row = (label: string, r: EwcAccuracies) =>
    log(`${label.padEnd(25)}${(100 * r.taskA).toFixed(1).padStart(11)}%${(100 * r.taskB).toFixed(1).padStart(13)}%${(100 * r.taskAAllClasses).toFixed(1).padStart(24)}%  ${r.drift.toExponential(3)}`);
  row('plain fine-tuning', plain);
  for (const name of names) row(`EWC ${name} λ=${lambda}`, ewc[name]!);
  for (const name of names) {
    log(ewc[name]!.taskA > plain.taskA ? `EWC with ${name} forgets less of task A than plain fine-tuning.` : `EWC with ${name} did NOT keep more of task A than plain fine-tuning at this size.`);
  }

  [trainA.xs, trainB.xs, testA.xs, testB.xs].forEach((t) => t.dispose());
  thetaA.dispose();
  fishers.forEach((F) => F.dispose());
  model.dispose();
  return { lambda, taskAAfterA, plain, ewc };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tf.setBackend('wasm');
  await tf.ready();
  await run({ small: process.argv.includes('--small') });
}
