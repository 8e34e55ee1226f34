/**
 * Worker threads: a pass split over this thread and pooled workers gives the single-thread matrix
 * (rel. 1e-5) for every mergeable representation; the pool is reused between calls, released by
 * terminateWorkers, and survives aborts and failures; ineligible requests are refused with the
 * reason.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/tf.js';
import { AbortedError, FIM, InvalidArgumentError, PMatDense, PMatDiag, PMatEKFAC, PMatImplicit, PMatKFAC, PMatLowRank, terminateWorkers, WorkerThreadError, type PMat, type Representation } from '../src/index.js';
import { workerPoolInfo } from '../src/parallel/pool.js';
import { useTestBackend } from './support/backend.js';
import { disposeBatches, mlp, randomBatches } from './support/models.js';
import { relativeError } from './support/reference.js';

before(async () => {
  await useTestBackend();
});
after(() => terminateWorkers());

const host = (t: tf.Tensor) => {
  const a = Float64Array.from(t.dataSync());
  t.dispose();
  return a;
};

test('2 threads give the single-thread matrix (1e-5): Dense, Diag, LowRank, KFAC, EKFAC', async () => {
  const model = mlp();
  const batches = randomBatches(model, 24, 4);
  // BlockDiag and QuasiDiag merges are covered by the mergePartial test (persistence).
  const reps: Array<Representation<PMat>> = [PMatDense, PMatDiag, PMatLowRank, PMatKFAC, PMatEKFAC];
  for (const rep of reps) {
    const single = await FIM({ model, loader: batches, representation: rep, workers: 1 });
    const progress: number[] = [];
    const n0 = tf.memory().numTensors;
    const parallel = await FIM({ model, loader: batches, representation: rep, workers: 2, onProgress: (p) => progress.push(p.examplesDone) });
    const err = relativeError(host(parallel.toTensor()), host(single.toTensor()));
    assert.ok(err < 1e-5, `${rep.representationName}: relative error ${err}`);
    assert.equal(progress.at(-1), 24, 'progress reaches every example');
    // The threads compute EKFAC as KFAC factors: the merged result is turned into an EKFAC
    // (equal to KFAC until updateDiag) that keeps its definition for updateDiag.
    assert.equal(parallel.constructor, single.constructor, `${rep.representationName}: the class of the result`);
    if (parallel instanceof PMatEKFAC) {
      await parallel.updateDiag(batches);
      await (single as PMatEKFAC).updateDiag(batches);
      const updated = relativeError(host(parallel.toTensor()), host(single.toTensor()));
      assert.ok(updated < 1e-5, `PMatEKFAC after updateDiag: relative error ${updated}`);
    }
    parallel.dispose();
    assert.equal(tf.memory().numTensors, n0, `${rep.representationName}: tensors`);
    single.dispose();
  }
  disposeBatches(batches);
  model.dispose();
});

test('2 threads on a loader of plain input tensors (no targets) give the single-thread matrix (1e-5)', async () => {
  const model = mlp();
  const plain = [1, 2, 3].map((k) => tf.randomNormal([4, ...(model.inputs[0]!.shape.slice(1) as number[])], 0, 1, 'float32', 40 + k));
  const single = await FIM({ model, loader: plain, representation: PMatDense, workers: 1 });
  const parallel = await FIM({ model, loader: plain, representation: PMatDense, workers: 2 });
  const err = relativeError(host(parallel.toTensor()), host(single.toTensor()));
  assert.ok(err < 1e-5, `relative error ${err}`);
  [single, parallel].forEach((m) => m.dispose());
  tf.dispose(plain);
});

test('ineligible parallel requests say why; auto falls back to this thread', async () => {
  const model = mlp();
  const batches = randomBatches(model, 8, 4);
  await assert.rejects(() => FIM({ model, loader: batches, representation: PMatImplicit, workers: 2 }), /PMatImplicit.*cannot be merged/);
  await assert.rejects(() => FIM({ model, loader: (function* () { yield* batches; })(), representation: PMatDiag, workers: 2 }), /not an array/);
  await assert.rejects(() => FIM({ model, loader: batches, representation: PMatDiag, workers: 0 }), /'workers'/);
  const auto = await FIM({ model, loader: batches, representation: PMatDiag });
  assert.ok(auto.trace() > 0);
  auto.dispose();
  disposeBatches(batches);
  model.dispose();
});

test('consecutive calls reuse the pooled thread (no new thread) and leak no tensor', async () => {
  const model = mlp();
  const batches = randomBatches(model, 16, 4);
  (await FIM({ model, loader: batches, representation: PMatDiag, workers: 2 })).dispose();
  const first = workerPoolInfo();
  assert.equal(first.size, 1, 'one pooled thread beside this one');
  const n0 = tf.memory().numTensors;
  for (const rep of [PMatKFAC, PMatDiag] as Array<Representation<PMat>>) (await FIM({ model, loader: batches, representation: rep, workers: 2 })).dispose();
  assert.equal(tf.memory().numTensors, n0, 'tensors');
  const again = workerPoolInfo();
  assert.deepEqual([again.size, again.started, again.threadIds], [first.size, first.started, first.threadIds]);
  assert.equal(again.idle, again.size, 'every thread is idle after the calls');
  disposeBatches(batches);
  model.dispose();
});

test('a pooled thread uses the new weights when the model changes between calls', async () => {
  const model = mlp();
  const batches = randomBatches(model, 16, 4);
  (await FIM({ model, loader: batches, representation: PMatDiag, workers: 2 })).dispose();
  model.setWeights(model.getWeights().map((w) => tf.mul(w, 1.5)));
  const single = await FIM({ model, loader: batches, representation: PMatDiag, workers: 1 });
  const pooled = await FIM({ model, loader: batches, representation: PMatDiag, workers: 2 });
  const err = relativeError(host(pooled.toTensor()), host(single.toTensor()));
  assert.ok(err < 1e-5, `relative error ${err}`);
  single.dispose();
  pooled.dispose();
  disposeBatches(batches);
  model.dispose();
});

test('terminateWorkers leaves no thread; the next call starts a fresh one', async () => {
  const model = mlp();
  const batches = randomBatches(model, 16, 4);
  (await FIM({ model, loader: batches, representation: PMatDiag, workers: 3 })).dispose();
  const before = workerPoolInfo();
  assert.equal(before.size, 2);
  await terminateWorkers();
  assert.deepEqual(workerPoolInfo().threadIds, []);
  (await FIM({ model, loader: batches, representation: PMatDiag, workers: 2 })).dispose();
  const after = workerPoolInfo();
  assert.equal(after.size, 1);
  assert.equal(after.started, before.started + 1);
  assert.ok(!before.threadIds.includes(after.threadIds[0]!), 'a new thread');
  disposeBatches(batches);
  model.dispose();
});

test('an abort stops this thread and the pooled ones (AbortedError, no tensor left); the pool stays usable', async () => {
  const model = mlp();
  const batches = randomBatches(model, 32, 4);
  (await FIM({ model, loader: batches, representation: PMatDiag, workers: 2 })).dispose();
  const { started } = workerPoolInfo();
  const n0 = tf.memory().numTensors;
  const controller = new AbortController();
  await assert.rejects(
    () => FIM({ model, loader: batches, representation: PMatKFAC, workers: 2, signal: controller.signal, onProgress: () => controller.abort() }),
    AbortedError,
  );
  assert.equal(tf.memory().numTensors, n0, 'tensors');
  (await FIM({ model, loader: batches, representation: PMatDiag, workers: 2 })).dispose();
  assert.equal(workerPoolInfo().started, started, 'the aborted thread was kept');
  disposeBatches(batches);
  model.dispose();
});

test('an error inside a thread reaches the caller as the library error, naming the thread', async () => {
  const model = mlp();
  const [b0, b1] = randomBatches(model, 8, 4);
  // The thread's share lacks the targets that the empirical Fisher needs; this thread's has them.
  const loader = [b0!, { xs: b1!.xs }];
  await assert.rejects(
    () => FIM({ model, loader, representation: PMatDiag, variant: 'empirical', loss: 'cross_entropy', workers: 2 }),
    (e: Error) => e instanceof InvalidArgumentError && /worker thread 1 of 1.*needs targets/.test(e.message),
  );
  disposeBatches([b0!, b1!]);
  model.dispose();
});

test('a thread that dies mid-task fails the call with WorkerThreadError and is replaced', async () => {
  const model = mlp();
  // Many batches, so that the pooled thread is still working when this thread's first batch
  // reports progress and kills it (with a few, the thread could finish first).
  const batches = randomBatches(model, 512, 4);
  (await FIM({ model, loader: batches, representation: PMatDiag, workers: 2 })).dispose();
  const { started } = workerPoolInfo();
  let killed = false;
  const kill = () => {
    if (!killed) void terminateWorkers();
    killed = true;
  };
  await assert.rejects(() => FIM({ model, loader: batches, representation: PMatDiag, workers: 2, onProgress: kill }), WorkerThreadError);
  (await FIM({ model, loader: batches, representation: PMatDiag, workers: 2 })).dispose();
  assert.equal(workerPoolInfo().started, started + 1, 'a replacement thread');
  disposeBatches(batches);
  model.dispose();
});
