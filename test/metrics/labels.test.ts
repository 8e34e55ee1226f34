/**
 * Labels read as class indices (the empirical Fisher and the Hessian with loss 'cross_entropy',
 * targets [B] or [B, 1]) must be integers in [0, C): 9, −1 or 2.7 for a 4-class model is a
 * LabelError naming the example's index in the whole pass, the value and C — on one thread and
 * with worker threads — instead of a silently different matrix (tf.oneHot maps them to a zero
 * row, tf.cast truncates 2.7 to 2). Valid integer labels (int32 or float32) and one-hot targets
 * still work, and nothing leaks on the error path.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, Hessian, InvalidArgumentError, LabelError, PMatDense, PMatDiag, PMatImplicit, PMatKFAC, terminateWorkers } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { mlp } from '../support/models.js';

let model: tf.LayersModel; // 5 → 7 → 4 classes
before(async () => {
  await useTestBackend();
  model = mlp();
});

/** Three batches of 3 examples; example `at` (index in the pass) gets label `bad`. */
function batchesWithLabel(bad: number | null, at: number, dtype: 'float32' | 'int32' = 'float32'): Array<{ xs: tf.Tensor; ys: tf.Tensor }> {
  return [0, 1, 2].map((k) => {
    const labels = [0, 1, 2].map((i) => (k * 3 + i === at && bad !== null ? bad : (k * 3 + i) % 4));
    return { xs: tf.randomNormal([3, 5], 0, 1, 'float32', 40 + k), ys: tf.tensor1d(labels, dtype) };
  });
}
const release = (bs: Array<{ xs: tf.Tensor; ys: tf.Tensor }>) => bs.forEach((b) => tf.dispose([b.xs, b.ys]));

const empirical = (loader: Array<{ xs: tf.Tensor; ys: tf.Tensor }>, extra: Record<string, unknown> = {}) =>
  FIM({ model, loader, representation: PMatDiag, variant: 'empirical', loss: 'cross_entropy', workers: 1, ...extra });
const hessian = (loader: Array<{ xs: tf.Tensor; ys: tf.Tensor }>) => Hessian({ model, loader, loss: 'cross_entropy', representation: PMatDiag });

async function expectLabelError(run: () => Promise<unknown>, example: number, value: string): Promise<void> {
  const before = tf.memory().numTensors;
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof LabelError, `expected LabelError, got ${String(e)}`);
    assert.ok(e instanceof InvalidArgumentError);
    assert.match((e as Error).message, new RegExp(`label ${value} of example ${example} is not a class index in \\[0, 4\\)`));
    return true;
  });
  assert.equal(tf.memory().numTensors, before, 'tensors leaked on the label error');
}

for (const [bad, shown] of [[9, '9'], [4, '4'], [-1, '-1'], [2.7, '2.7'], [NaN, 'NaN']] as const) {
  test(`empirical FIM: label ${shown} in the second batch is a LabelError naming example 4`, async () => {
    const bs = batchesWithLabel(bad, 4);
    try {
      await expectLabelError(() => empirical(bs), 4, shown.replace('.', '\\.'));
    } finally {
      release(bs);
    }
  });
}

test('empirical FIM: an out-of-range int32 label in the last example of the pass is caught (last index, last batch)', async () => {
  const bs = batchesWithLabel(7, 8, 'int32');
  try {
    await expectLabelError(() => empirical(bs, { representation: PMatKFAC }), 8, '7');
  } finally {
    release(bs);
  }
});

test('empirical FIM: labels [B, 1] are class indices too (label −1)', async () => {
  const bs = batchesWithLabel(-1, 0).map((b) => ({ xs: b.xs, ys: b.ys.reshape([3, 1]) }));
  try {
    await expectLabelError(() => empirical(bs), 0, '-1');
  } finally {
    release(bs);
  }
});

test('empirical FIM: a matrix-free representation checks the labels at its first product', async () => {
  const bs = batchesWithLabel(9, 5);
  try {
    const F = await FIM({ model, loader: bs, representation: PMatImplicit, variant: 'empirical', loss: 'cross_entropy', workers: 1 });
    await expectLabelError(() => F.trace(), 5, '9');
    F.dispose();
  } finally {
    release(bs);
  }
});

test('empirical FIM with 2 worker threads: the error names the example in the whole pass (not in its thread share)', async () => {
  const bs = batchesWithLabel(9, 7);
  try {
    await expectLabelError(() => empirical(bs, { workers: 2 }), 7, '9');
  } finally {
    release(bs);
    await terminateWorkers();
  }
});

for (const [bad, shown] of [[9, '9'], [-1, '-1'], [2.5, '2.5']] as const) {
  test(`Hessian cross_entropy: label ${shown} in the third batch is a LabelError naming example 7`, async () => {
    const bs = batchesWithLabel(bad, 7);
    try {
      await expectLabelError(() => hessian(bs), 7, shown.replace('.', '\\.'));
    } finally {
      release(bs);
    }
  });
}

test('valid labels: float32 and int32 class indices and their one-hot targets give the same empirical FIM and Hessian (rel. 1e-6)', async () => {
  const asFloat = batchesWithLabel(null, 0, 'float32');
  const asInt = asFloat.map((b) => ({ xs: b.xs, ys: tf.cast(b.ys, 'int32') }));
  const oneHot = asFloat.map((b) => ({ xs: b.xs, ys: tf.oneHot(tf.cast(b.ys, 'int32'), 4).toFloat() }));
  try {
    const before = tf.memory().numTensors;
    const traces: number[] = [];
    for (const loader of [asFloat, asInt, oneHot]) {
      const F = await FIM({ model, loader, representation: PMatDense, variant: 'empirical', loss: 'cross_entropy', workers: 1 });
      const H = await hessian(loader);
      traces.push(F.trace(), H.trace());
      F.dispose();
      H.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
    assert.ok(traces[0]! > 1e-3 && traces[1]! > 1e-3, `traces ${traces}`);
    for (let k = 2; k < 6; k++) assert.ok(Math.abs(traces[k]! - traces[k % 2]!) <= 1e-6 * Math.abs(traces[k % 2]!), `trace ${k}: ${traces[k]} vs ${traces[k % 2]}`);
  } finally {
    release(asFloat);
    asInt.forEach((b) => b.ys.dispose());
    oneHot.forEach((b) => b.ys.dispose());
  }
});

test('the mse loss does not read targets as class indices (targets 9 and 2.7 are regression values)', async () => {
  const bs = [{ xs: tf.randomNormal([2, 5], 0, 1, 'float32', 3), ys: tf.tensor2d([[9, 2.7, -1, 0], [0, 0, 0, 0]]) }];
  try {
    const F = await FIM({ model, loader: bs, representation: PMatDiag, variant: 'empirical', loss: 'mse', workers: 1 });
    assert.ok(F.trace() > 0);
    F.dispose();
  } finally {
    release(bs);
  }
});
