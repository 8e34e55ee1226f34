/**
 * Every representation computed over 44 batches equals the same representation computed over one
 * batch holding the same 88 examples, and the dense matrix equals the brute-force Fisher.
 *
 * Why 44: the host sums keep up to HostSum.BATCHES_PER_TRANSFER (16) batches on the device before
 * adding them into float64, so 44 batches cross two transfers and leave a remainder of 12. The
 * one-line defect this catches: an overwrite (`sum.set(v)`) instead of an add at a transfer, which
 * keeps only the last 12 batches (a relative error of order 1, against a tolerance of 1e-4). Inputs
 * differ in every batch (a seed per batch), so a dropped batch changes every statistic.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PMatMixed,
  PMatQuasiDiag,
  PVector,
  type PMat,
  type Representation,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { bruteForceFisher, host, relativeError } from '../support/reference.js';

const TOL = 1e-4;
const BATCHES = 44;
const BATCH_SIZE = 2;

let model: tf.LayersModel;
let lc: LayerCollection;
let many: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let one: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;

before(async () => {
  await useTestBackend();
  model = mlp();
  lc = LayerCollection.fromModel(model);
  many = randomBatches(model, BATCHES * BATCH_SIZE, BATCH_SIZE, 31);
  one = [{ xs: tf.concat(many.map((b) => b.xs)), ys: tf.concat(many.map((b) => b.ys)) }];
});

after(() => {
  disposeBatches(many);
  disposeBatches(one);
  model.dispose();
});

test('PMatDense over 44 batches equals the brute-force Fisher (per-example tf.grad)', async () => {
  const F = await FIM({ model, loader: many, representation: PMatDense });
  const reference = bruteForceFisher(model, lc, many.map((b) => b.xs), 'classif_logits');
  const err = relativeError(F.values(), reference);
  F.dispose();
  assert.ok(err < TOL, `relative error ${err}`);
});

/** Each stored representation, built when the test runs (the mixed mapping names a layer of the model). */
const STORED: Array<[string, () => Representation<PMat>]> = [
  ['PMatDense', () => PMatDense],
  ['PMatDiag', () => PMatDiag],
  ['PMatBlockDiag', () => PMatBlockDiag],
  ['PMatLowRank', () => PMatLowRank],
  ['PMatKFAC', () => PMatKFAC],
  ['PMatEKFAC', () => PMatEKFAC],
  ['PMatQuasiDiag', () => PMatQuasiDiag],
  ['PMatEKFACBlockDiag', () => PMatEKFACBlockDiag],
  ['PMatMixed', () => PMatMixed.fromMapping({ default: PMatDiag, byLayerId: { [lc.layers[0]!.id]: PMatEKFAC } })],
];

for (const [name, representation] of STORED) {
  test(`${name} over 44 batches equals ${name} over one batch of the same 88 examples`, async () => {
    const a = await FIM({ model, loader: many, representation: representation() });
    const b = await FIM({ model, loader: one, representation: representation() });
    if (a instanceof PMatEKFAC || a instanceof PMatMixed) {
      // The eigenbasis diagonal too (EKFAC's second pass over the data, also summed on the host).
      await a.updateDiag(many);
      await (b as typeof a).updateDiag(one);
    }
    const err = relativeError(host(a.toTensor()), host(b.toTensor()));
    a.dispose();
    b.dispose();
    assert.ok(err < TOL, `relative error ${err}`);
  });
}

test('PMatImplicit over 44 batches equals PMatDense over one batch on mv and trace', async () => {
  const implicit = await FIM({ model, loader: many, representation: PMatImplicit });
  const dense = await FIM({ model, loader: one, representation: PMatDense });
  const v = PVector.random(lc, 5);
  const mvImplicit = await implicit.mv(v);
  const mvDense = dense.mv(v);
  const errMv = relativeError(host(mvImplicit.toFlat()), host(mvDense.toFlat()));
  const errTrace = Math.abs((await implicit.trace()) - dense.trace()) / dense.trace();
  mvImplicit.dispose();
  mvDense.dispose();
  v.dispose();
  dense.dispose();
  assert.ok(errMv < TOL, `mv relative error ${errMv}`);
  assert.ok(errTrace < TOL, `trace relative error ${errTrace}`);
});
