/**
 * Jacobian: the rows of PFMapDense are the brute-force per-example Jacobians (rel. 1e-5); J·dw
 * is the change of the outputs, exactly for a model linear in θ (1e-4) and to first order
 * otherwise (5e-3 with ‖dw‖ = 1e-3); PFMapImplicit equals PFMapDense on jvp and vjp (1e-5);
 * JᵀJ/n is the regression Fisher (1e-4). No call leaks a tensor.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, FVector, Jacobian, LayerCollection, PFMapDense, PFMapImplicit, PMatDense, PVector } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, nested, randomBatches, residual, sequenceDense } from '../support/models.js';
import { perExampleJacobian, relativeError, host } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

/** Model outputs on every batch, flattened per example and stacked as [O, n] (float64). */
function outputsON(model: tf.LayersModel, batches: Array<{ xs: tf.Tensor }>): Float64Array {
  const t = tf.tidy(() => tf.transpose(tf.concat(batches.map((b) => (model.predict(b.xs) as tf.Tensor).reshape([b.xs.shape[0]!, -1])), 0)));
  return host(t);
}

const models: Array<[string, () => tf.LayersModel]> = [
  ['mlp', () => mlp()],
  ['cnn', () => cnn()],
  ['residual', () => residual()],
  ['sequence dense', () => sequenceDense()],
  ['nested', () => nested()],
];

for (const [name, make] of models) {
  test(`PFMapDense rows = brute-force per-example Jacobians (rel. 1e-5): ${name}`, async (t) => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = randomBatches(model, 7, 4);
    const n0 = tf.memory().numTensors;
    const J = await Jacobian({ model, loader: batches });
    assert.equal(tf.memory().numTensors, n0 + 1, 'Jacobian returns one tensor');
    const [o, n, d] = J.data.shape;
    assert.deepEqual([n, d], [7, lc.numel()]);
    const got = host(J.toTensor());
    const ref = new Float64Array(o * n * d);
    let i = 0;
    for (const b of batches) {
      for (let k = 0; k < b.xs.shape[0]!; k++, i++) {
        const xi = tf.slice(b.xs, [k], [1]);
        const { jac } = perExampleJacobian(model, lc, xi);
        xi.dispose();
        jac.forEach((row, c) => ref.set(row, (c * n + i) * d));
      }
    }
    const err = relativeError(got, ref);
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    assert.ok(err < 1e-5, `${name}: relative error ${err}`);
    J.dispose();
    model.dispose();
    disposeBatches(batches);
  });
}

test('J·dw = f(θ+dw) − f(θ) exactly for a model linear in θ (rel. 1e-4)', async (t) => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4], biasInitializer: 'randomNormal' })] });
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 9, 4);
  const J = await Jacobian({ model, loader: batches });
  const dw = PVector.random(lc, 5);
  const jdw = J.jvp(dw);
  const f0 = outputsON(model, batches);
  dw.addToModel(model);
  const f1 = outputsON(model, batches);
  const err = relativeError(host(jdw.toTensor()), f1.map((v, k) => v - f0[k]!));
  t.diagnostic(`relative error ${err.toExponential(2)}`);
  assert.ok(err < 1e-4, `relative error ${err}`);
  [J, dw, jdw].forEach((x) => x.dispose());
  model.dispose();
  disposeBatches(batches);
});

for (const [name, make] of models) {
  test(`J·dw ≈ f(θ+dw) − f(θ) with ‖dw‖ = 1e-3 (rel. 5e-3): ${name}`, async (t) => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = randomBatches(model, 8, 4);
    const J = await Jacobian({ model, loader: batches });
    const direction = PVector.random(lc, 11);
    const dw = direction.scale(1e-3 / direction.norm());
    const jdw = J.jvp(dw);
    const f0 = outputsON(model, batches);
    dw.addToModel(model);
    const f1 = outputsON(model, batches);
    const err = relativeError(host(jdw.toTensor()), f1.map((v, k) => v - f0[k]!));
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    assert.ok(err < 5e-3, `${name}: relative error ${err}`);
    [J, direction, dw, jdw].forEach((x) => x.dispose());
    model.dispose();
    disposeBatches(batches);
  });
}

test('PFMapImplicit = PFMapDense on jvp and vjp (rel. 1e-5), with no leak', async (t) => {
  for (const make of [() => cnn(), () => sequenceDense()]) {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = randomBatches(model, 7, 3);
    const dense = await Jacobian({ model, loader: batches, representation: PFMapDense });
    const implicit = await Jacobian({ model, loader: batches, representation: PFMapImplicit });
    const v = PVector.random(lc, 2);
    const f = FVector.random(dense.numOutputs, dense.numExamples, 3);
    const n0 = tf.memory().numTensors;
    const [jvI, vjI] = [await implicit.jvp(v), await implicit.vjp(f)];
    assert.equal(tf.memory().numTensors, n0 + 2, 'implicit jvp and vjp return one tensor each');
    const [jvD, vjD] = [dense.jvp(v), dense.vjp(f)];
    const e1 = relativeError(host(jvI.toTensor()), host(jvD.toTensor()));
    const e2 = relativeError(host(vjI.toFlat()), host(vjD.toFlat()));
    t.diagnostic(`jvp ${e1.toExponential(2)}, vjp ${e2.toExponential(2)}`);
    assert.ok(e1 < 1e-5, `jvp relative error ${e1}`);
    assert.ok(e2 < 1e-5, `vjp relative error ${e2}`);
    [dense, v, f, jvI, vjI, jvD, vjD].forEach((x) => x.dispose());
    model.dispose();
    disposeBatches(batches);
  }
});

test('vjp is the adjoint of jvp: ⟨J v, f⟩ = ⟨v, Jᵀ f⟩ (rel. 1e-5)', async (t) => {
  const model = residual();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 6, 4);
  const J = await Jacobian({ model, loader: batches });
  const v = PVector.random(lc, 4);
  const f = FVector.random(J.numOutputs, J.numExamples, 5);
  const jv = J.jvp(v);
  const jtf = J.vjp(f);
  const a = jv.dot(f);
  const b = v.dot(jtf);
  t.diagnostic(`relative gap ${(Math.abs(a - b) / Math.abs(b)).toExponential(2)}`);
  assert.ok(Math.abs(a - b) / Math.abs(b) < 1e-5, `${a} vs ${b}`);
  [J, v, f, jv, jtf].forEach((x) => x.dispose());
  model.dispose();
  disposeBatches(batches);
});

test("FIM(variant 'regression') as PMatDense = JᵀJ/n from PFMapDense (rel. 1e-4)", async (t) => {
  const model = cnn();
  const batches = randomBatches(model, 7, 4);
  const J = await Jacobian({ model, loader: batches });
  const F = await FIM({ model, loader: batches, representation: PMatDense, variant: 'regression' });
  const jtj = host(tf.tidy(() => {
    const rows = J.rows();
    return tf.div(tf.matMul(tf.transpose(rows), rows), J.numExamples);
  }));
  const err = relativeError(F.values(), jtj);
  t.diagnostic(`relative error ${err.toExponential(2)}`);
  assert.ok(err < 1e-4, `relative error ${err}`);
  J.dispose();
  F.dispose();
  model.dispose();
  disposeBatches(batches);
});
