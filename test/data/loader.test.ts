/**
 * Every accepted loader form gives the same matrix: a tf.data.Dataset of {xs, ys} or [xs, ys],
 * an array, a sync or async iterable, one batch, or a bare tensor. Dataset tensors are released
 * by the library; the user's own tensors are never disposed. Progress is reported per batch.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, PMatDiag, type Loader } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { relativeError } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

test('all loader forms give the same diagonal Fisher (1e-5) and leave the user tensors alive', async () => {
  const model = mlp();
  const batches = randomBatches(model, 12, 4);
  const reference = await FIM({ model, loader: batches, representation: PMatDiag });
  const xsAll = tf.concat(batches.map((b) => b.xs));
  const ysAll = tf.concat(batches.map((b) => b.ys));
  const forms: Array<[string, Loader]> = [
    ['single {xs, ys} batch', { xs: xsAll, ys: ysAll }],
    ['bare tensor', xsAll],
    ['array of [xs, ys]', batches.map((b) => [b.xs, b.ys] as [tf.Tensor, tf.Tensor])],
    ['sync iterable', (function* () { yield* batches; })()],
    ['async iterable', (async function* () { yield* batches; })()],
    ['tf.data.Dataset of {xs, ys}', tf.data.array(batches.map((_, k) => k)).map((k) => ({ xs: batches[k as number]!.xs.clone(), ys: batches[k as number]!.ys.clone() }))],
    ['tf.data.Dataset batched from tensors', tf.data.zip({ xs: tf.data.array(tf.unstack(xsAll)), ys: tf.data.array(tf.unstack(ysAll)) }).batch(5)],
  ];
  for (const [name, loader] of forms) {
    const n0 = tf.memory().numTensors;
    const F = await FIM({ model, loader, representation: PMatDiag });
    assert.ok(relativeError(F.values(), reference.values()) < 1e-5, `${name}: ${relativeError(F.values(), reference.values())}`);
    F.dispose();
    if (!name.startsWith('tf.data.Dataset batched')) assert.equal(tf.memory().numTensors, n0, `${name}: tensor count changed`);
  }
  assert.ok(!xsAll.isDisposed && !batches[0]!.xs.isDisposed, 'user tensors must not be disposed');
  reference.dispose();
  tf.dispose([xsAll, ysAll]);
  disposeBatches(batches);
  model.dispose();
});

test('onProgress reports the examples done after each batch', async () => {
  const model = mlp();
  const batches = randomBatches(model, 10, 4);
  const seen: Array<[number, number | undefined]> = [];
  const F = await FIM({ model, loader: batches, representation: PMatDiag, onProgress: (p) => seen.push([p.examplesDone, p.examplesTotal]) });
  assert.deepEqual(seen, [[4, 10], [8, 10], [10, 10]]);
  F.dispose();
  disposeBatches(batches);
  model.dispose();
});

test('a generator consumed by a first pass gives an error that says why and what to pass instead', async () => {
  const model = mlp();
  const batches = randomBatches(model, 4, 4);
  const { PMatImplicit, EmptyLoaderError } = await import('../../src/index.js');
  const F = await FIM({ model, loader: (function* () { yield* batches; })(), representation: PMatImplicit });
  await F.trace();
  await assert.rejects(() => F.trace(), (e: Error) => e instanceof EmptyLoaderError && /one-shot iterator/.test(e.message));
  disposeBatches(batches);
  model.dispose();
});

test('an AbortSignal stops the pass with AbortedError and releases every tensor', async () => {
  const { AbortedError, PMatDense, PMatKFAC } = await import('../../src/index.js');
  type Rep = import('../../src/index.js').Representation<import('../../src/index.js').PMatBase>;
  const model = mlp();
  const batches = randomBatches(model, 12, 4);
  for (const representation of [PMatDiag, PMatDense, PMatKFAC] as Rep[]) {
    const controller = new AbortController();
    const n0 = tf.memory().numTensors;
    await assert.rejects(
      () => FIM({ model, loader: batches, representation, signal: controller.signal, onProgress: (p) => p.examplesDone >= 4 && controller.abort('user stop') }),
      (e: Error) => e instanceof AbortedError && /user stop/.test(e.message),
    );
    assert.equal(tf.memory().numTensors, n0, `${representation.representationName}: tensors released`);
  }
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(() => FIM({ model, loader: batches, representation: PMatDiag, signal: aborted.signal }), AbortedError);
  await assert.rejects(() => FIM({ model, loader: batches, representation: PMatDiag, signal: {} as never }), /AbortSignal/);
  disposeBatches(batches);
  model.dispose();
});
