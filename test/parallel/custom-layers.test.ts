/**
 * Worker threads and custom layer classes, and what 'auto' decides from:
 * - a model with a layer class registered in this thread only is refused up front with
 *   `workers: 2` (InvalidArgumentError naming the layer, its class and `workerSetup`), before any
 *   thread starts; with 'auto' it is computed on this thread (equal to `workers: 1`);
 * - with `workerSetup` (a module registering the class, imported by each thread) 2 threads give
 *   the 1-thread matrix (rel. 1e-5), Diag and KFAC;
 * - a bad `workerSetup` (not a string, a missing file, a module that throws) is a typed error
 *   naming it; the pool survives;
 * - 'auto' ignores the machine's load: with a 1-minute load average of 64 reported by `os`,
 *   8,192 examples still split (before, it ran on one thread and depended on the load).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tf } from '../../src/tf.js';
import { FIM, InvalidArgumentError, LayerCollection, PMatDiag, PMatKFAC, terminateWorkers, type PMatBase, type Representation } from '../../src/index.js';
import { planWorkers } from '../../src/parallel/parallel-fim.js';
import { workerPoolInfo } from '../../src/parallel/pool.js';
import { useTestBackend } from '../support/backend.js';
import { ScaledTanh } from './fixtures/scaled-tanh.js';

const SETUP = new URL('./fixtures/scaled-tanh.ts', import.meta.url);
let model: tf.LayersModel;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;

before(async () => {
  await useTestBackend();
  model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 6, inputShape: [4], kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }), name: 'first' }),
      new ScaledTanh({ scale: 1.5, name: 'custom' }),
      tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }), name: 'last' }),
    ],
  });
  batches = [0, 1, 2, 3].map((k) => ({ xs: tf.randomNormal([8, 4], 0, 1, 'float32', 10 + k), ys: tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32') }));
});

after(async () => {
  await terminateWorkers();
  batches.forEach((b) => tf.dispose([b.xs, b.ys]));
  model.dispose();
});

const traceOf = async (options: Record<string, unknown>, representation: Representation<PMatBase> = PMatDiag): Promise<number> => {
  const F = await FIM({ model, loader: batches, representation, ...options });
  try {
    return (F as unknown as { trace(): number }).trace();
  } finally {
    F.dispose();
  }
};

test('workers: 2 with a custom layer class and no workerSetup: refused up front, naming the layer, its class and the way out; no thread started', async () => {
  const { started } = workerPoolInfo();
  const n0 = tf.memory().numTensors;
  await assert.rejects(
    () => FIM({ model, loader: batches, representation: PMatDiag, workers: 2 }),
    (e: unknown) =>
      e instanceof InvalidArgumentError &&
      /cannot use 2 worker threads: layer 'custom' is of class 'ScaledTanhForWorkerTests', registered in this thread only.*workerSetup.*workers: 1/.test(e.message),
  );
  assert.equal(workerPoolInfo().started, started, 'a thread was started');
  assert.equal(tf.memory().numTensors, n0);
});

test("workers: 'auto' with a custom layer class and no workerSetup: computed on this thread, equal to workers: 1", async () => {
  // 8,192 examples: enough for 'auto' to split, were the layer known to the threads.
  const many = Array.from({ length: 16 }, (_, k) => ({ xs: tf.randomNormal([512, 4], 0, 1, 'float32', k), ys: tf.zeros([512], 'int32') }));
  try {
    const { started } = workerPoolInfo();
    const one = await FIM({ model, loader: many, representation: PMatDiag, workers: 1 });
    const auto = await FIM({ model, loader: many, representation: PMatDiag });
    assert.equal(auto.trace(), one.trace());
    assert.equal(workerPoolInfo().started, started, 'a thread was started');
    one.dispose();
    auto.dispose();
  } finally {
    many.forEach((b) => tf.dispose([b.xs, b.ys]));
  }
});

for (const representation of [PMatDiag, PMatKFAC] as Array<Representation<PMatBase>>) {
  test(`workerSetup registers the class in the threads: 2 threads give the 1-thread ${representation.representationName} (rel. 1e-5)`, async () => {
    const one = await traceOf({ workers: 1 }, representation);
    const n0 = tf.memory().numTensors;
    const two = await traceOf({ workers: 2, workerSetup: SETUP }, representation);
    assert.equal(tf.memory().numTensors, n0);
    assert.ok(one > 0 && Math.abs(two - one) <= 1e-5 * one, `2 threads ${two} vs 1 thread ${one}`);
  });
}

test('workerSetup as a path relative to the current directory works too', async () => {
  const relative = new URL(SETUP).pathname.replace(`${process.cwd()}/`, '');
  const one = await traceOf({ workers: 1 });
  const two = await traceOf({ workers: 2, workerSetup: relative });
  assert.ok(Math.abs(two - one) <= 1e-5 * one);
});

test('a bad workerSetup is a typed error naming it', async () => {
  await assert.rejects(() => FIM({ model, loader: batches, representation: PMatDiag, workers: 2, workerSetup: 42 as unknown as string }), (e: unknown) => e instanceof InvalidArgumentError && /'workerSetup' must be a module path or a file: URL, received .*42/.test(e.message));
  await assert.rejects(() => FIM({ model, loader: batches, representation: PMatDiag, workers: 2, workerSetup: './no/such/module.js' }), (e: unknown) => e instanceof InvalidArgumentError && /'workerSetup' module "\.\/no\/such\/module\.js" does not exist/.test(e.message));
  const failing = new URL('./fixtures/failing-setup.ts', import.meta.url);
  await assert.rejects(
    () => FIM({ model, loader: batches, representation: PMatDiag, workers: 2, workerSetup: failing }),
    (e: unknown) => e instanceof InvalidArgumentError && /worker thread 1 of 1: workerSetup module .*failing-setup\.ts failed to load in the worker thread: Error: this setup module fails on purpose/.test(e.message),
  );
  // The pool survives: the next call works.
  const one = await traceOf({ workers: 1 });
  assert.ok(Math.abs((await traceOf({ workers: 2, workerSetup: SETUP })) - one) <= 1e-5 * one);
});

test("'auto' decides from the request, not the machine's load: a load average of 64 does not stop 8,192 examples from splitting", async () => {
  const os = createRequire(import.meta.url)('node:os') as typeof import('node:os');
  const realLoad = os.loadavg;
  const realCores = os.availableParallelism;
  os.loadavg = () => [64, 64, 64];
  os.availableParallelism = () => 2;
  syncBuiltinESMExports();
  const plain = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4] })] });
  const many = Array.from({ length: 16 }, () => ({ xs: tf.zeros([512, 4]) }));
  try {
    const spec = { model: plain, layerCollection: LayerCollection.fromModel(plain), loader: many, outputs: { description: 'test', needsTargets: false, cotangents: () => tf.zeros([1, 1, 1]) as tf.Tensor3D } };
    const plan = await planWorkers({ spec, representation: PMatDiag as Representation<PMatBase>, variant: 'classif_logits', workers: 'auto' });
    assert.deepEqual(plan, { threads: 2 });
    // Below the threshold of a cold or warm pool alike, and whatever the load: one thread.
    const few = await planWorkers({ spec: { ...spec, loader: many.slice(0, 1) }, representation: PMatDiag as Representation<PMatBase>, variant: 'classif_logits', workers: 'auto' });
    assert.ok('reason' in few && /auto: 2 core\(s\), 512 examples/.test(few.reason), JSON.stringify(few));
  } finally {
    os.loadavg = realLoad;
    os.availableParallelism = realCores;
    syncBuiltinESMExports();
    many.forEach((b) => b.xs.dispose());
    plain.dispose();
  }
});
