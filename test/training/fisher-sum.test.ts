/**
 * Online EWC sums: onlineFisher(old, new, { gamma }) equals γ·old + new entrywise on the dense
 * matrices (rel. 1e-6) for every representation whose sum keeps its structure, leaves the
 * inputs untouched, and refuses KFAC / EKFAC with a typed error naming FisherSum; FisherSum's
 * products equal the weighted dense sum.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM, FisherSum, InvalidArgumentError, LayerCollection, PMatBlockDiag, PMatDense, PMatDiag, PMatEKFAC, PMatEye, PMatKFAC, PMatLowRank,
  PMatQuasiDiag, PVector, onlineFisher, type PMat,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { host, relativeError } from '../support/reference.js';

let model: tf.LayersModel;
let lc: LayerCollection;
let taskA: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let taskB: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;

before(async () => {
  await useTestBackend();
  model = mlp();
  lc = LayerCollection.fromModel(model);
  taskA = randomBatches(model, 8, 4, 3000);
  taskB = randomBatches(model, 8, 4, 3100);
});

after(() => {
  [taskA, taskB].forEach(disposeBatches);
  model.dispose();
});

const GAMMA = 0.6;

for (const rep of [PMatDiag, PMatDense, PMatBlockDiag, PMatQuasiDiag, PMatLowRank] as const) {
  test(`${rep.representationName}: onlineFisher = γ·F_old + F_new (rel. 1e-6), inputs untouched, same class`, async () => {
    const old = (await FIM({ model, loader: taskA, representation: rep as typeof PMatDiag })) as unknown as PMat;
    const next = (await FIM({ model, loader: taskB, representation: rep as typeof PMatDiag })) as unknown as PMat;
    const a = host(old.toTensor());
    const b = host(next.toTensor());
    const sum = onlineFisher(old, next, { gamma: GAMMA });
    assert.equal(sum.constructor, old.constructor);
    assert.ok(relativeError(host(sum.toTensor()), a.map((x, i) => GAMMA * x + b[i]!)) < 1e-6);
    assert.deepEqual(host(old.toTensor()), a, 'old untouched');
    [old, next, sum].forEach((m) => m.dispose());
  });
}

test('PMatEye: γ·s₁I + s₂I', () => {
  const sum = onlineFisher(new PMatEye(lc, 2), new PMatEye(lc, 3), { gamma: 0.5 });
  assert.equal((sum as PMatEye).scaling, 4);
});

test('KFAC and EKFAC are refused with a typed error naming FisherSum; FisherSum is the exact weighted sum (rel. 1e-6)', async () => {
  for (const rep of [PMatKFAC, PMatEKFAC]) {
    const old = (await FIM({ model, loader: taskA, representation: rep as typeof PMatKFAC })) as PMat;
    const next = (await FIM({ model, loader: taskB, representation: rep as typeof PMatKFAC })) as PMat;
    assert.throws(() => onlineFisher(old, next, { gamma: GAMMA }), (e: Error) => e instanceof InvalidArgumentError && /FisherSum/.test(e.message) && /PMatDiag/.test(e.message));
    const sum = new FisherSum([{ matrix: old, weight: GAMMA }, next]);
    const b = host(next.toTensor());
    const want = host(old.toTensor()).map((x, i) => GAMMA * x + b[i]!);
    assert.ok(relativeError(host(sum.toTensor()), want) < 1e-6);
    const v = PVector.random(lc, 1);
    const mv = sum.mv(v);
    const d = lc.numel();
    const x = host(v.toFlat());
    const ref = new Float64Array(d).map((_, i) => want.slice(i * d, (i + 1) * d).reduce((s, m, j) => s + m * x[j]!, 0));
    assert.ok(relativeError(host(mv.toFlat()), ref) < 1e-5);
    assert.ok(Math.abs(sum.trace() - (GAMMA * old.trace() + next.trace())) < 1e-9 * sum.trace());
    [old, next, v, mv, sum].forEach((m) => m.dispose());
  }
});

test('bad input: different representations, γ outside [0, 1], empty FisherSum — typed errors', async () => {
  const diag = await FIM({ model, loader: taskA, representation: PMatDiag });
  const dense = await FIM({ model, loader: taskA, representation: PMatDense });
  assert.throws(() => onlineFisher(diag as PMat, dense as PMat), /same representation/);
  assert.throws(() => onlineFisher(diag, diag, { gamma: 1.5 }), InvalidArgumentError);
  assert.throws(() => new FisherSum([]), InvalidArgumentError);
  assert.throws(() => new FisherSum([{ matrix: diag, weight: -1 }]), /weight/);
  [diag, dense].forEach((m) => m.dispose());
});
