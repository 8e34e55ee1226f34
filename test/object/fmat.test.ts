/**
 * FMatDense algebra against float64 host computations on the matrix's own entries: mv, vTMv,
 * trace, norms (rel. 1e-5), add/sub/scale (exact in float64), the top-k eigenpairs (K u = λ u
 * with residual ≤ 1e-3·λ_max, descending, matching the full spectrum) and damped solves
 * ((K + λI) x = f, rel. 1e-3). Every call leaves nothing but what it returns; bad inputs get
 * typed errors naming the argument.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FMatDense, FVector, GramMatrix, InvalidArgumentError, NotPositiveDefiniteError, ShapeMismatchError } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { relativeError } from '../support/reference.js';

let model: tf.LayersModel;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let K: FMatDense;
let f: FVector;
let size: number;

before(async () => {
  await useTestBackend();
  model = mlp();
  batches = randomBatches(model, 6, 4);
  K = await GramMatrix({ model, loader: batches });
  f = FVector.random(K.numOutputs, K.numExamples, 3);
  size = K.numOutputs * K.numExamples;
});

after(() => {
  [K, f].forEach((x) => x.dispose());
  model.dispose();
  disposeBatches(batches);
});

const hostF = (v: FVector): Float64Array => {
  const t = v.toTensor();
  const a = Float64Array.from(t.dataSync());
  t.dispose();
  return a;
};

function matvec(a: Float64Array, x: Float64Array): Float64Array {
  const n = x.length;
  return Float64Array.from({ length: n }, (_, r) => {
    let s = 0;
    for (let c = 0; c < n; c++) s += a[r * n + c]! * x[c]!;
    return s;
  });
}

async function leakFree<T>(fn: () => T, returned: number): Promise<T> {
  const n0 = tf.memory().numTensors;
  const r = fn();
  assert.equal(tf.memory().numTensors - n0, returned, 'tensor count changed');
  return r;
}

test('mv, vTMv, trace and norms equal the host computation (rel. 1e-5)', async () => {
  const k = K.values();
  const x = hostF(f);
  const kx = matvec(k, x);
  const mv = await leakFree(() => K.mv(f), 1);
  assert.ok(relativeError(hostF(mv), kx) < 1e-5);
  mv.dispose();
  const quad = await leakFree(() => K.vTMv(f), 0);
  const ref = x.reduce((s, v, i) => s + v * kx[i]!, 0);
  assert.ok(Math.abs(quad - ref) / Math.abs(ref) < 1e-5, `vTMv ${quad} vs ${ref}`);
  let tr = 0;
  for (let i = 0; i < size; i++) tr += k[i * size + i]!;
  assert.ok(Math.abs(K.trace() - tr) < 1e-12 * Math.abs(tr));
  assert.ok(Math.abs(K.norm() - Math.sqrt(k.reduce((s, v) => s + v * v, 0))) < 1e-12 * K.norm());
  const { values, vectors } = K.eigendecomposition({ k: 1 });
  vectors.dispose();
  assert.ok(Math.abs(K.norm(2) - values[0]!) < 1e-9 * values[0]!);
});

test('add, sub and scale are exact float64 combinations', async () => {
  const k = K.values();
  const sum = await leakFree(() => K.add(K), 1);
  const zero = await leakFree(() => K.sub(K), 1);
  const scaled = await leakFree(() => K.scale(-0.5), 1);
  assert.deepEqual(Array.from(sum.values()), Array.from(k, (v) => 2 * v));
  assert.ok(zero.values().every((v) => v === 0));
  assert.deepEqual(Array.from(scaled.values()), Array.from(k, (v) => -0.5 * v));
  [sum, zero, scaled].forEach((m) => m.dispose());
  const t = K.toTensor();
  const copy = FMatDense.fromTensor(K.layerCollection, t);
  t.dispose();
  assert.ok(relativeError(copy.values(), k) < 1e-7);
  copy.dispose();
});

test('top-k eigenpairs: K u = λ u, descending, equal to the head of the full spectrum (1e-3)', async () => {
  const full = await leakFree(() => K.eigendecomposition(), 1);
  const top = await leakFree(() => K.eigendecomposition({ k: 3 }), 1);
  assert.deepEqual(top.vectors.shape, [3, K.numOutputs, K.numExamples]);
  assert.deepEqual(full.vectors.shape, [size, K.numOutputs, K.numExamples]);
  const lmax = full.values[0]!;
  for (let t = 1; t < size; t++) assert.ok(full.values[t - 1]! >= full.values[t]!, 'descending');
  const u = Float64Array.from(top.vectors.dataSync());
  const k = K.values();
  for (let t = 0; t < 3; t++) {
    assert.ok(Math.abs(top.values[t]! - full.values[t]!) <= 1e-9 * lmax);
    const ut = u.subarray(t * size, (t + 1) * size);
    const ku = matvec(k, Float64Array.from(ut));
    const res = Math.sqrt(ku.reduce((s, v, i) => s + (v - top.values[t]! * ut[i]!) ** 2, 0));
    assert.ok(res <= 1e-3 * lmax, `eigenpair ${t}: residual ${res}`);
  }
  tf.dispose([full.vectors, top.vectors]);
});

test('solve(f, { regul }) solves (K + regul·I) x = f (rel. 1e-3)', async () => {
  const regul = 0.1;
  const x = await leakFree(() => K.solve(f, { regul }), 1);
  const hx = hostF(x);
  const back = matvec(K.values(), hx).map((v, i) => v + regul * hx[i]!);
  const err = relativeError(back, hostF(f));
  assert.ok(err < 1e-3, `residual ${err}`);
  x.dispose();
});

test('bad inputs: FVector shapes, negative regul, k out of range, non-boolean centering, singular solve', async () => {
  const wrong = FVector.random(K.numOutputs, K.numExamples + 1, 1);
  const n0 = tf.memory().numTensors;
  assert.throws(() => K.mv(wrong), (e: Error) => e instanceof ShapeMismatchError && /FMatDense\.mv/.test(e.message));
  assert.throws(() => K.solve(wrong, { regul: 1 }), (e: Error) => e instanceof ShapeMismatchError && /FMatDense\.solve/.test(e.message));
  assert.throws(() => K.solve(f, { regul: -1 }), (e: Error) => e instanceof InvalidArgumentError && /'regul'.*-1/.test(e.message));
  assert.throws(() => K.eigendecomposition({ k: 0 }), (e: Error) => e instanceof InvalidArgumentError && /'k'/.test(e.message));
  assert.throws(() => K.eigendecomposition({ k: size + 1 }), InvalidArgumentError);
  assert.throws(() => K.norm(-2 as never), (e: Error) => e instanceof InvalidArgumentError && /'ord'/.test(e.message));
  assert.throws(() => K.scale(NaN), InvalidArgumentError);
  // n = 6 examples, O = 4 outputs, d = 74 > 24: K is positive definite here, so make it singular.
  const singular = K.sub(K);
  assert.throws(() => singular.solve(f), NotPositiveDefiniteError);
  singular.dispose();
  await assert.rejects(() => GramMatrix({ model, loader: batches, centering: 'yes' as never }), (e: Error) => e instanceof InvalidArgumentError && /'centering'/.test(e.message));
  assert.equal(tf.memory().numTensors, n0, 'errors leave nothing behind');
  wrong.dispose();
});
