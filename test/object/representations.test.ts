/**
 * The representations agree with PMatDense where they should: Diag and BlockDiag are its
 * diagonal and diagonal blocks; LowRank and Implicit equal it on trace, mv, vTMv (rel. 1e-4).
 * Solves and inverses invert (M + regul·I) (rel. 1e-3). Every call leaves no tensor behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatBlockDiag, PMatDense, PMatDiag, PMatImplicit, PMatLowRank, PVector } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../support/models.js';
import { relativeError, host } from '../support/reference.js';

const TOL = 1e-4;
const SOLVE_TOL = 1e-3;

let model: tf.LayersModel;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let lc: LayerCollection;
let dense: PMatDense;
let v: PVector;

before(async () => {
  await useTestBackend();
  model = cnn();
  lc = LayerCollection.fromModel(model);
  batches = randomBatches(model, 10, 4);
  dense = await FIM({ model, loader: batches, representation: PMatDense });
  v = PVector.random(lc, 3);
});

after(() => {
  dense.dispose();
  v.dispose();
  model.dispose();
  disposeBatches(batches);
});

function denseDiag(): Float64Array {
  const d = lc.numel();
  return Float64Array.from({ length: d }, (_, i) => dense.values()[i * d + i]!);
}

async function leakFree<T>(f: () => Promise<T> | T, keep: (r: T) => number = () => 0): Promise<T> {
  const n0 = tf.memory().numTensors;
  const r = await f();
  assert.equal(tf.memory().numTensors - n0, keep(r), 'tensor count changed');
  return r;
}

test('PMatDiag equals the diagonal of PMatDense', async () => {
  const diag = await leakFree(() => FIM({ model, loader: batches, representation: PMatDiag }), () => 1); // its diagonal, one float32 tensor
  assert.ok(relativeError(diag.values(), denseDiag()) < TOL);
  assert.ok(Math.abs(diag.trace() - dense.trace()) / dense.trace() < TOL);
  const n0 = tf.memory().numTensors;
  diag.dispose();
  assert.equal(tf.memory().numTensors, n0 - 1, 'dispose releases the diagonal tensor');
});

test('PMatBlockDiag equals the diagonal blocks of PMatDense and is zero elsewhere', async () => {
  const bd = await leakFree(() => FIM({ model, loader: batches, representation: PMatBlockDiag }), () => lc.layers.length); // one block per layer
  const d = lc.numel();
  const full = dense.values();
  const expected = new Float64Array(d * d);
  for (const e of lc.layers) {
    for (let r = 0; r < e.numel; r++) for (let c = 0; c < e.numel; c++) expected[(e.offset + r) * d + e.offset + c] = full[(e.offset + r) * d + e.offset + c]!;
  }
  assert.ok(relativeError(host(bd.toTensor()), expected) < TOL);
  assert.ok(relativeError(host(bd.getDiag()), denseDiag()) < TOL);
  bd.dispose();
});

test('PMatLowRank and PMatImplicit agree with PMatDense on trace, mv and vTMv', async () => {
  const lr = await leakFree(() => FIM({ model, loader: batches, representation: PMatLowRank }), () => 1); // holds J/√n
  const im = await FIM({ model, loader: batches, representation: PMatImplicit });
  const mvDense = dense.mv(v);
  const expectedMv = host(mvDense.toFlat());
  for (const [name, mv, vtmv, trace] of [
    ['lowrank', lr.mv(v), lr.vTMv(v), lr.trace()],
    ['implicit', await im.mv(v), await im.vTMv(v), await im.trace()],
  ] as const) {
    assert.ok(relativeError(host(mv.toFlat()), expectedMv) < TOL, `${name} mv`);
    assert.ok(Math.abs(vtmv - dense.vTMv(v)) / Math.abs(dense.vTMv(v)) < TOL, `${name} vTMv`);
    assert.ok(Math.abs(trace - dense.trace()) / dense.trace() < TOL, `${name} trace`);
    mv.dispose();
  }
  assert.ok(relativeError(host(lr.toTensor()), dense.values()) < TOL, 'lowrank toTensor');
  mvDense.dispose();
  lr.dispose();
});

test('solve(mv(v) + regul·v, { regul }) ≈ v for every representation', async () => {
  const regul = 0.05;
  const reps = [
    dense,
    await FIM({ model, loader: batches, representation: PMatDiag }),
    await FIM({ model, loader: batches, representation: PMatBlockDiag }),
    await FIM({ model, loader: batches, representation: PMatLowRank }),
  ];
  for (const M of reps) {
    const mv = M.mv(v);
    const rhs = mv.add(v.scale(regul));
    const x = await leakFree(() => M.solve(rhs, { regul }), () => 1);
    const err = relativeError(host(x.toFlat()), host(v.toFlat()));
    assert.ok(err < SOLVE_TOL, `${M.constructor.name}: solve error ${err}`);
    [mv, rhs, x].forEach((t) => t.dispose());
  }
  const im = await FIM({ model, loader: batches, representation: PMatImplicit });
  const mv = await im.mv(v);
  const rhs = mv.add(v.scale(regul));
  const x = await im.solve(rhs, { regul, rtol: 1e-7, maxIter: 500 });
  assert.ok(relativeError(host(x.toFlat()), host(v.toFlat())) < SOLVE_TOL, 'implicit CG solve');
  [mv, rhs, x].forEach((t) => t.dispose());
  reps.slice(1).forEach((m) => m.dispose());
});

test('inv({ regul }) composed with (M + regul·I) is the identity', async () => {
  const regul = 0.1;
  const d = lc.numel();
  for (const M of [dense, await FIM({ model, loader: batches, representation: PMatBlockDiag }), await FIM({ model, loader: batches, representation: PMatDiag })]) {
    const inv = M.inv({ regul });
    const a = host(M.toTensor());
    for (let i = 0; i < d; i++) a[i * d + i]! += regul;
    const b = host(inv.toTensor());
    const prod = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) for (let j = 0; j < d; j++) prod[i * d + j]! += b[i * d + k]! * a[k * d + j]!;
    const eye = Float64Array.from({ length: d * d }, (_, k) => (k % (d + 1) === 0 ? 1 : 0));
    assert.ok(relativeError(prod, eye) < SOLVE_TOL, `${M.constructor.name}: inv error ${relativeError(prod, eye)}`);
    inv.dispose();
    if (M !== dense) M.dispose();
  }
});

test('norms: fro, 2 and -2 agree between representations and with the spectrum of the dense matrix', async () => {
  const bd = await FIM({ model, loader: batches, representation: PMatBlockDiag });
  const lr = await FIM({ model, loader: batches, representation: PMatLowRank });
  const diag = await FIM({ model, loader: batches, representation: PMatDiag });
  const fro = Math.sqrt(dense.values().reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(dense.norm() - fro) / fro < 1e-12);
  assert.ok(Math.abs(lr.norm('fro') - fro) / fro < SOLVE_TOL);
  assert.ok(Math.abs(lr.norm(2) - dense.norm(2)) / dense.norm(2) < SOLVE_TOL);
  // the top eigenvalue dominates the top eigenvalue of each block (interlacing): λmax(M) ≥ λmax(block)
  assert.ok(dense.norm(2) >= bd.norm(2) * (1 - 1e-6));
  // rayleigh quotient with v never exceeds the spectral norm
  assert.ok(dense.vTMv(v) / v.dot(v) <= dense.norm(2) * (1 + 1e-6));
  const dg = diag.values();
  assert.equal(diag.norm(2), Math.max(...dg.map(Math.abs)));
  assert.ok(lr.norm(-2) >= 0 && dense.norm(-2) >= 0);
  [bd, lr, diag].forEach((m) => m.dispose());
});

test('add, sub, scale and mm match the same operations on the dense tensors', async () => {
  const a = await FIM({ model, loader: batches, representation: PMatBlockDiag });
  const b = a.scale(0.5);
  const sum = a.add(b);
  const diff = a.sub(b);
  assert.ok(relativeError(host(sum.toTensor()), host(a.toTensor()).map((x) => 1.5 * x)) < TOL);
  assert.ok(relativeError(host(diff.toTensor()), host(a.toTensor()).map((x) => 0.5 * x)) < TOL);
  const sq = dense.mm(dense);
  const d = lc.numel();
  const m = dense.values();
  const ref = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) for (let j = 0; j < d; j++) ref[i * d + j]! += m[i * d + k]! * m[k * d + j]!;
  assert.ok(relativeError(sq.values(), ref) < 1e-10);
  const lr = await FIM({ model, loader: batches, representation: PMatLowRank });
  const lr2 = lr.add(lr.scale(2));
  assert.ok(Math.abs(lr2.trace() - 3 * lr.trace()) / lr.trace() < TOL);
  [a, b, sum, diff, sq, lr, lr2].forEach((x) => x.dispose());
});

test('PMatLowRank with more rows than parameters (primal d×d path) solves and has the dense spectrum', async () => {
  const small = mlp();
  const data = randomBatches(small, 40, 20); // m = 4 outputs × 40 = 160 rows > d = 74
  // regression: full rank (the softmax Fisher is singular along logit shifts)
  const D = await FIM({ model: small, loader: data, representation: PMatDense, variant: 'regression' });
  const L = await FIM({ model: small, loader: data, representation: PMatLowRank, variant: 'regression' });
  assert.ok(L.rows > L.layerCollection.numel());
  const w = PVector.random(L.layerCollection, 4);
  for (const regul of [0.01, 0]) {
    const a = D.solve(w, { regul });
    const b = L.solve(w, { regul });
    assert.ok(relativeError(host(b.toFlat()), host(a.toFlat())) < SOLVE_TOL, `regul ${regul}: ${relativeError(host(b.toFlat()), host(a.toFlat()))}`);
    [a, b].forEach((x) => x.dispose());
  }
  assert.ok(Math.abs(L.norm(2) - D.norm(2)) / D.norm(2) < SOLVE_TOL);
  assert.ok(Math.abs(L.norm(-2) - D.norm(-2)) <= SOLVE_TOL * D.norm(2));
  assert.ok(Math.abs(L.norm('fro') - D.norm('fro')) / D.norm('fro') < SOLVE_TOL);
  [D, L, w].forEach((x) => x.dispose());
  small.dispose();
  disposeBatches(data);
});
