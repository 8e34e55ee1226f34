/**
 * GramMatrix: K = J Jᵀ reshaped to [O, n, O, n] (rel. 1e-4), with and without centering
 * (centering = J with its per-output mean over the examples removed), on an MLP, a CNN, a Dense
 * layer on sequences and a residual model, over several uneven batches; the row-chunked block
 * assembly gives the same matrix; GramMatrix leaves only the matrix it returns, and every
 * function-space pass that fails midway releases what it held.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIMMonteCarlo, FVector, GramMatrix, Hessian, Jacobian, LayerCollection, NonFiniteError, PFMapImplicit, PMatDense, PMatImplicit, PVector } from '../../src/index.js';
import { accumulate } from '../../src/statistics/statistic.js';
import { tangentKernel } from '../../src/statistics/tangent-kernel.js';
import { jacobianOutputs } from '../../src/metrics/jacobian.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches, residual, sequenceDense } from '../support/models.js';
import { relativeError } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

/** J Jᵀ in float64 from PFMapDense, optionally with the per-output mean gradient removed. */
async function reference(model: tf.LayersModel, batches: Array<{ xs: tf.Tensor }>, centering: boolean): Promise<Float64Array> {
  const J = await Jacobian({ model, loader: batches });
  const [o, n, d] = J.data.shape;
  const j = Float64Array.from(J.data.dataSync());
  J.dispose();
  if (centering) {
    for (let a = 0; a < o; a++) {
      for (let k = 0; k < d; k++) {
        let mean = 0;
        for (let i = 0; i < n; i++) mean += j[(a * n + i) * d + k]! / n;
        for (let i = 0; i < n; i++) j[(a * n + i) * d + k]! -= mean;
      }
    }
  }
  const m = o * n;
  const K = new Float64Array(m * m);
  for (let r = 0; r < m; r++) {
    for (let c = r; c < m; c++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += j[r * d + k]! * j[c * d + k]!;
      K[r * m + c] = s;
      K[c * m + r] = s;
    }
  }
  return K;
}

const models: Array<[string, () => tf.LayersModel]> = [
  ['mlp', () => mlp()],
  ['cnn', () => cnn()],
  ['sequence dense', () => sequenceDense()],
  ['residual', () => residual()],
];

for (const [name, make] of models) {
  for (const centering of [false, true]) {
    test(`GramMatrix = J Jᵀ (rel. 1e-4): ${name}, centering ${centering}`, async (t) => {
      const model = make();
      const batches = randomBatches(model, 7, 3);
      const n0 = tf.memory().numTensors;
      const K = await GramMatrix({ model, loader: batches, centering });
      assert.equal(tf.memory().numTensors, n0 + 1, 'GramMatrix leaves only the matrix it returns');
      const outputs = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
      assert.deepEqual([K.numOutputs, K.numExamples], [outputs, 7]);
      const kt = K.toTensor();
      assert.deepEqual(kt.shape, [outputs, 7, outputs, 7]);
      kt.dispose();
      const err = relativeError(K.values(), await reference(model, batches, centering));
      t.diagnostic(`relative error ${err.toExponential(2)}`);
      assert.ok(err < 1e-4, `${name}: relative error ${err}`);
      K.dispose();
      model.dispose();
      disposeBatches(batches);
    });
  }
}

test('the row-chunked assembly equals the one-block assembly (rel. 1e-6)', async (t) => {
  const model = cnn();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 7, 4);
  const spec = { model, layerCollection: lc, loader: batches, outputs: jacobianOutputs() };
  const whole = await accumulate(spec, tangentKernel(lc));
  const n0 = tf.memory().numTensors;
  // S = 9 positions for the first convolution: chunks of 2 extended rows.
  const chunked = await accumulate(spec, tangentKernel(lc, 20));
  assert.equal(tf.memory().numTensors, n0, 'tangentKernel leaves nothing behind');
  const err = relativeError(chunked.value, whole.value);
  t.diagnostic(`relative error ${err.toExponential(2)}`);
  assert.ok(err < 1e-6, `relative error ${err}`);
  model.dispose();
  disposeBatches(batches);
});

test('a pass that fails midway (NaN in the second batch) releases its tensors: Jacobian, PFMapImplicit, GramMatrix, FIMMonteCarlo, Hessian', async () => {
  const model = cnn();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 4, 2);
  const bad = tf.mul(batches[1]!.xs, NaN);
  const loader = [batches[0]!, { xs: bad, ys: batches[1]!.ys }];
  const implicit = await Jacobian({ model, loader, representation: PFMapImplicit });
  const v = PVector.random(lc, 1);
  const f = FVector.random(3, 4, 2);
  const hessian = await Hessian({ model, loader, loss: 'cross_entropy', representation: PMatImplicit });
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['Jacobian', () => Jacobian({ model, loader })],
    ['PFMapImplicit.jvp', () => implicit.jvp(v)],
    ['PFMapImplicit.vjp', () => implicit.vjp(f)],
    ['GramMatrix', () => GramMatrix({ model, loader, centering: true })],
    ['FIMMonteCarlo', () => FIMMonteCarlo({ model, loader, representation: PMatDense, trials: 2, seed: 1 })],
    ['Hessian PMatDense', () => Hessian({ model, loader, loss: 'cross_entropy', representation: PMatDense })],
    ['PMatHessianImplicit.mv', () => hessian.mv(v)],
  ];
  for (const [name, call] of calls) {
    const n0 = tf.memory().numTensors;
    await assert.rejects(call, (e: Error) => e instanceof NonFiniteError && /NaN/.test(e.message), name);
    assert.equal(tf.memory().numTensors, n0, `${name}: tensors leaked`);
  }
  [bad, v, f].forEach((x) => x.dispose());
  model.dispose();
  disposeBatches(batches);
});
