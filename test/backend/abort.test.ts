/**
 * Cooperative abort: the pass yields to the event loop after every batch, so a timer-based
 * `AbortSignal.timeout(200)` fires during a multi-second pass and stops it at the next batch
 * (AbortedError, no tensor left), for arrays, sync and async generator loaders, the Hessian's
 * pass, and with `workers: 2` (this thread's share and the pooled thread's). Progress callbacks
 * see timers too. The assertions are on the abort being seen — the pass stopped after a small
 * fraction of its batches, and well before it could have finished — not on speed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { AbortedError, FIM, Hessian, PMatDiag, PMatKFAC, terminateWorkers, type Loader } from '../../src/index.js';
import { workerPoolInfo } from '../../src/parallel/pool.js';
import { useTestBackend } from '../support/backend.js';

const BATCHES = 2000;
let model: tf.LayersModel;
let xs: tf.Tensor;
let ys: tf.Tensor;

before(async () => {
  await useTestBackend();
  model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 128, inputShape: [64], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }),
      tf.layers.dense({ units: 128, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }),
    ],
  });
  xs = tf.randomNormal([16, 64], 0, 1, 'float32', 5);
  ys = tf.randomUniform([16], 0, 10, 'int32', 6);
});

after(async () => {
  await terminateWorkers();
  tf.dispose([xs, ys]);
  model.dispose();
});

/**
 * Runs `start(signal, onProgress)` with AbortSignal.timeout(200); asserts an AbortedError, no
 * tensor left, and that the pass stopped within a few batches of the abort: at most
 * `maxFraction` of `total` examples were done. Returns the abort-to-rejection latency in ms.
 */
async function abortedAt200ms(total: number, start: (signal: AbortSignal, onProgress: (p: { examplesDone: number }) => void) => Promise<{ dispose(): void }>, maxFraction = 0.5): Promise<number> {
  const n0 = tf.memory().numTensors;
  let done = 0;
  let abortedAt = 0;
  const signal = AbortSignal.timeout(200);
  signal.addEventListener('abort', () => (abortedAt = performance.now()));
  let doneAtAbort = -1;
  signal.addEventListener('abort', () => (doneAtAbort = done));
  await assert.rejects(
    async () => (await start(signal, (p) => (done = p.examplesDone))).dispose(),
    (e: unknown) => e instanceof AbortedError,
  );
  const latency = performance.now() - abortedAt;
  assert.ok(abortedAt > 0, 'the timer fired during the pass');
  assert.equal(tf.memory().numTensors, n0, 'tensors left after the abort');
  assert.ok(done <= maxFraction * total, `the pass went on after the abort: ${done} of ${total} examples (${doneAtAbort} when the signal fired)`);
  assert.ok(latency < 2000, `the abort took ${latency.toFixed(0)} ms to be seen`);
  return latency;
}

const fim = (loader: Loader, signal: AbortSignal, onProgress: (p: { examplesDone: number }) => void, workers = 1) =>
  FIM({ model, loader, representation: PMatDiag, signal, onProgress, workers });

test('an array of batches: AbortSignal.timeout(200) stops a multi-second pass within about a batch', async () => {
  await abortedAt200ms(BATCHES * 16, (signal, onProgress) => fim(Array.from({ length: BATCHES }, () => ({ xs, ys })), signal, onProgress));
});

test('a sync generator of batches: the abort is seen', async () => {
  function* batches() {
    for (let k = 0; k < BATCHES; k++) yield { xs, ys };
  }
  await abortedAt200ms(BATCHES * 16, (signal, onProgress) => fim(batches(), signal, onProgress));
});

test('an async generator of batches (owned tensors): the abort is seen and the generator is closed', async () => {
  let closed = false;
  async function* batches() {
    try {
      for (let k = 0; k < BATCHES; k++) yield { xs: xs.clone(), ys: ys.clone() };
    } finally {
      closed = true;
    }
  }
  // Whoever owns the clones, none may be left: the last one yielded is released here if still alive.
  const n0 = tf.memory().numTensors;
  let pending: tf.Tensor[] = [];
  async function* tracked() {
    for await (const b of batches()) {
      tf.dispose(pending);
      pending = [b.xs, b.ys];
      yield b;
    }
  }
  await assert.rejects(() => fim(tracked(), AbortSignal.timeout(200), () => undefined), AbortedError);
  tf.dispose(pending);
  assert.equal(tf.memory().numTensors, n0);
  assert.ok(closed, 'the generator was returned (its finally block ran)');
});

test('a tf.data.Dataset: the abort is seen', async () => {
  const ds = tf.data.generator(function* () {
    for (let k = 0; k < BATCHES; k++) yield { xs: xs.clone(), ys: ys.clone() };
  });
  await abortedAt200ms(BATCHES * 16, (signal, onProgress) => fim(ds as unknown as Loader, signal, onProgress));
});

test('progress callbacks and timers run during the pass (a 10 ms interval ticks between batches)', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  try {
    const F = await fim(Array.from({ length: 200 }, () => ({ xs, ys })), new AbortController().signal, () => undefined);
    F.dispose();
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks >= 2, `the interval ticked ${ticks} times during the pass`);
});

test('the Hessian pass: AbortSignal.timeout(200) stops it at the next batch', async () => {
  const small = tf.sequential({ layers: [tf.layers.dense({ units: 8, inputShape: [4], activation: 'tanh' }), tf.layers.dense({ units: 3 })] });
  const hx = tf.randomNormal([8, 4], 0, 1, 'float32', 9);
  const hy = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32');
  try {
    // About 0.2 s per batch (67 Hessian-vector products): the whole pass would take ~8 s.
    const loader = Array.from({ length: 40 }, () => ({ xs: hx, ys: hy }));
    await abortedAt200ms(40 * 8, (signal, onProgress) => Hessian({ model: small, loader, loss: 'cross_entropy', representation: PMatDiag, signal, onProgress }));
  } finally {
    tf.dispose([hx, hy]);
    small.dispose();
  }
});

test('workers: 2 — this thread checks the signal per batch and the pooled thread stops within a batch', async () => {
  // Warm the pool (thread start-up and the model) so that the aborted call starts at once.
  const warm = Array.from({ length: 8 }, () => ({ xs, ys }));
  (await FIM({ model, loader: warm, representation: PMatKFAC, workers: 2 })).dispose();
  const loader = Array.from({ length: BATCHES }, () => ({ xs, ys }));
  const t0 = performance.now();
  await abortedAt200ms(BATCHES * 16, (signal, onProgress) => FIM({ model, loader, representation: PMatKFAC, signal, onProgress, workers: 2 }));
  // The call returned only after the pooled thread replied: it is idle again, and was not killed.
  assert.equal(workerPoolInfo().idle, workerPoolInfo().size);
  assert.ok(performance.now() - t0 < 3000, 'the pooled thread stopped early');
});
