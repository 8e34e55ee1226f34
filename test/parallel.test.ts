/**
 * Worker threads: a pass split over 2 threads gives the single-thread matrix (rel. 1e-5) for
 * every mergeable representation; ineligible requests are refused with the reason.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/tf.js';
import { FIM, PMatDiag, PMatEKFAC, PMatImplicit, PMatKFAC, PMatLowRank, type PMat, type Representation } from '../src/index.js';
import { useTestBackend } from './support/backend.js';
import { disposeBatches, mlp, randomBatches } from './support/models.js';
import { relativeError } from './support/reference.js';

before(async () => {
  await useTestBackend();
});

const host = (t: tf.Tensor) => {
  const a = Float64Array.from(t.dataSync());
  t.dispose();
  return a;
};

test('2 worker threads give the single-thread matrix (1e-5): Diag, LowRank, KFAC, EKFAC', async () => {
  const model = mlp();
  const batches = randomBatches(model, 24, 4);
  // Dense, BlockDiag and QuasiDiag merges are covered by the mergePartial test (persistence).
  const reps: Array<Representation<PMat>> = [PMatDiag, PMatLowRank, PMatKFAC, PMatEKFAC];
  for (const rep of reps) {
    const single = await FIM({ model, loader: batches, representation: rep, workers: 1 });
    const progress: number[] = [];
    const n0 = tf.memory().numTensors;
    const parallel = await FIM({ model, loader: batches, representation: rep, workers: 2, onProgress: (p) => progress.push(p.examplesDone) });
    const err = relativeError(host(parallel.toTensor()), host(single.toTensor()));
    assert.ok(err < 1e-5, `${rep.representationName}: relative error ${err}`);
    assert.equal(progress.at(-1), 24, 'progress reaches every example');
    parallel.dispose();
    assert.equal(tf.memory().numTensors, n0, `${rep.representationName}: tensors`);
    single.dispose();
  }
  disposeBatches(batches);
  model.dispose();
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
