/**
 * PMatQuasiDiag, PMatEye, PMatMixed and PMatEKFACBlockDiag against the dense truth (issue 3).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatEye,
  PMatMixed,
  PMatQuasiDiag,
  PVector,
} from '../../src/index.js';
import { cholesky, choleskySolve, eighSym } from '../../src/linalg/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../support/models.js';
import { relativeError, host } from '../support/reference.js';

const TOL = 1e-4;
const SOLVE_TOL = 1e-3;

before(async () => {
  await useTestBackend();
});

test("QuasiDiag: the dense matrix's diagonal and weight–bias strips, zero elsewhere; exact solve; arrowhead norms", async () => {
  for (const model of [mlp(), mlp({ bias: false }), cnn()]) {
    const batches = randomBatches(model, 8, 4);
    const dense = await FIM({ model, loader: batches, representation: PMatDense });
    const q = await FIM({ model, loader: batches, representation: PMatQuasiDiag });
    const d = q.layerCollection.numel();
    const full = dense.values();
    const expected = new Float64Array(d * d);
    for (const e of q.layerCollection.layers) {
      const hasBias = e.layer.trainableWeights.length === 2;
      const c = e.parameters[0]!.shape[e.parameters[0]!.shape.length - 1]!;
      for (let j = 0; j < e.numel; j++) expected[(e.offset + j) * d + e.offset + j] = full[(e.offset + j) * d + e.offset + j]!;
      if (!hasBias) continue;
      const biasRow = e.numel - c;
      for (let j = 0; j < biasRow; j++) {
        const w = e.offset + j;
        const b = e.offset + biasRow + (j % c);
        expected[w * d + b] = full[w * d + b]!;
        expected[b * d + w] = full[b * d + w]!;
      }
    }
    const ours = host(q.toTensor());
    assert.ok(relativeError(ours, expected) < TOL, `toTensor: ${relativeError(ours, expected)}`);
    // solve against a float64 eigendecomposition solve of the same matrix (it may be indefinite)
    const v = PVector.random(q.layerCollection, 4);
    const regul = 1e-3 * q.norm(2);
    const eig = eighSym(expected, d);
    const xv0 = host(v.toFlat());
    const ref = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      let p = 0;
      for (let i = 0; i < d; i++) p += eig.vectors[i * d + j]! * xv0[i]!;
      p /= eig.values[j]! + regul;
      for (let i = 0; i < d; i++) ref[i]! += eig.vectors[i * d + j]! * p;
    }
    const x = q.solve(v, { regul });
    assert.ok(relativeError(host(x.toFlat()), ref) < SOLVE_TOL, `solve: ${relativeError(host(x.toFlat()), ref)}`);
    const singular = Array.from(eig.values, Math.abs).sort((x, y) => x - y);
    assert.ok(Math.abs(q.norm(2) - singular[d - 1]!) / singular[d - 1]! < SOLVE_TOL, 'norm 2');
    assert.ok(Math.abs(q.norm(-2) - singular[0]!) <= SOLVE_TOL * singular[d - 1]!, 'norm -2');
    const fro = Math.sqrt(expected.reduce((s, t) => s + t * t, 0));
    assert.ok(Math.abs(q.norm() - fro) / fro < TOL, 'fro');
    const mv = q.mv(v);
    const mvRef = new Float64Array(d);
    const xv = host(v.toFlat());
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) mvRef[i]! += expected[i * d + j]! * xv[j]!;
    assert.ok(relativeError(host(mv.toFlat()), mvRef) < TOL, 'mv');
    assert.ok(Math.abs(q.trace() - dense.trace()) / dense.trace() < TOL, 'trace');
    [dense, q, v, x, mv].forEach((o) => o.dispose());
    disposeBatches(batches);
    model.dispose();
  }
});

test('PMatEye: s·I in every method', () => {
  const model = mlp();
  const eye = new PMatEye(PVector.zeros(LayerCollectionOf(model)).layerCollection, 2.5);
  const v = PVector.random(eye.layerCollection, 1);
  const d = eye.layerCollection.numel();
  assert.equal(eye.trace(), 2.5 * d);
  assert.ok(Math.abs(eye.vTMv(v) - 2.5 * v.dot(v)) < 1e-4 * eye.vTMv(v));
  const s = eye.solve(v, { regul: 0.5 });
  assert.ok(relativeError(host(s.toFlat()), host(v.toFlat()).map((x) => x / 3)) < 1e-6);
  assert.equal(eye.inv({ regul: 0.5 }).scaling, 1 / 3);
  assert.ok(Math.abs(eye.logdet() - d * Math.log(2.5)) < 1e-9);
  assert.equal(eye.pow(2).scaling, 6.25);
  assert.equal(eye.norm(), 2.5 * Math.sqrt(d));
  [v, s].forEach((o) => o.dispose());
  model.dispose();
});

function LayerCollectionOf(model: tf.LayersModel) {
  return PVector.fromModel(model).layerCollection;
}

test('PMatMixed: each layer group equals its own representation and cross-group terms are zero', async () => {
  const model = cnn();
  const batches = randomBatches(model, 8, 4);
  const mixed = await FIM({ model, loader: batches, representation: PMatMixed.fromMapping({ default: PMatBlockDiag, byLayerKind: { dense: PMatDiag } }) });
  const bd = await FIM({ model, loader: batches, representation: PMatBlockDiag });
  const diag = await FIM({ model, loader: batches, representation: PMatDiag });
  const lc = mixed.layerCollection;
  const d = lc.numel();
  const B = host(bd.toTensor());
  const D = diag.values();
  const expected = new Float64Array(d * d);
  for (const e of lc.layers) {
    for (let i = 0; i < e.numel; i++) {
      const r = e.offset + i;
      if (e.kind.name === 'dense') expected[r * d + r] = D[r]!;
      else for (let j = 0; j < e.numel; j++) expected[r * d + e.offset + j] = B[r * d + e.offset + j]!;
    }
  }
  assert.ok(relativeError(host(mixed.toTensor()), expected) < TOL, 'toTensor');
  const v = PVector.random(lc, 8);
  const mv = mixed.mv(v);
  const xv = host(v.toFlat());
  const mvRef = new Float64Array(d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) mvRef[i]! += expected[i * d + j]! * xv[j]!;
  assert.ok(relativeError(host(mv.toFlat()), mvRef) < TOL, 'mv');
  assert.ok(Math.abs(mixed.trace() - expected.reduce((s, x, k) => s + (k % (d + 1) === 0 ? x : 0), 0)) / mixed.trace() < TOL, 'trace');
  assert.ok(relativeError(host(mixed.getDiag()), Float64Array.from({ length: d }, (_, i) => expected[i * d + i]!)) < TOL, 'getDiag');
  const regul = 0.01;
  const a = Float64Array.from(expected);
  for (let i = 0; i < d; i++) a[i * d + i]! += regul;
  const sol = mixed.solve(v, { regul });
  assert.ok(relativeError(host(sol.toFlat()), choleskySolve(cholesky(a, d), d, xv, 1)) < SOLVE_TOL, 'solve');
  const inv = mixed.inv({ regul });
  const viaInv = inv.mv(v);
  assert.ok(relativeError(host(viaInv.toFlat()), host(sol.toFlat())) < SOLVE_TOL, 'inv');
  [mixed, bd, diag, v, mv, sol, inv, viaInv].forEach((o) => o.dispose());
  disposeBatches(batches);
  model.dispose();
});

test('PMatEKFACBlockDiag equals PMatEKFAC on layers with Kronecker factors, also after updateDiag', async () => {
  const model = cnn();
  const batches = randomBatches(model, 8, 4);
  const mixed = await FIM({ model, loader: batches, representation: PMatEKFACBlockDiag });
  const ekfac = await FIM({ model, loader: batches, representation: PMatEKFAC });
  assert.ok(relativeError(host(mixed.toTensor()), host(ekfac.toTensor())) < TOL, 'before update');
  await mixed.updateDiag(batches);
  await ekfac.updateDiag(batches);
  assert.ok(relativeError(host(mixed.toTensor()), host(ekfac.toTensor())) < TOL, 'after update');
  assert.ok(Math.abs(mixed.logdet({ regul: 0.1 }) - ekfac.logdet({ regul: 0.1 })) < 1e-6 * Math.abs(ekfac.logdet({ regul: 0.1 })));
  [mixed, ekfac].forEach((o) => o.dispose());
  disposeBatches(batches);
  model.dispose();
});

test('PMatMixed refuses a matrix-free group and a mapping entry that is not a representation', async () => {
  const { PMatImplicit } = await import('../../src/index.js');
  const model = mlp();
  const batches = randomBatches(model, 4, 4);
  const n0 = tf.memory().numTensors;
  await assert.rejects(() => FIM({ model, loader: batches, representation: PMatMixed.fromMapping({ default: PMatDiag, byLayerKind: { dense: PMatImplicit as never } }) }), /matrix-free/);
  assert.equal(tf.memory().numTensors, n0);
  assert.throws(() => PMatMixed.fromMapping({ default: 42 as never }), /representation/);
  disposeBatches(batches);
  model.dispose();
});
