/**
 * The statistics of the per-example maps and kernels against brute force (per-example
 * `tf.variableGrads` through tfjs-layers' own forward, test/support/reference.ts), on an MLP
 * (4 outputs) and a CNN (3 outputs) over 20 batches of 1 to 3 examples whose inputs are scaled
 * differently batch by batch: the Jacobian J[o, i, :] (outputJacobian), J v and Jᵀ f, the
 * tangent kernel J Jᵀ (whole and in row chunks), the per-example loss gradients (outputRows over
 * the loss), and H v of the mean loss (hessianVectorMean) on a model linear in θ, where the
 * Hessian of the softmax cross-entropy is the brute-force Fisher. Plus: computeInOnePass serves
 * several computations from one pass over a one-shot loader; J v, Jᵀ f and the kernel leave no
 * tensor behind, also when Jᵀ f is given too few examples.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection, ShapeMismatchError } from '../../src/index.js';
import type { PassSpec } from '../../src/backend/pass.js';
import { jacobianOutputs } from '../../src/metrics/jacobian.js';
import { variantCotangents } from '../../src/metrics/variants.js';
import { batchLoss } from '../../src/metrics/hessian-losses.js';
import { accumulate } from '../../src/statistics/statistic.js';
import { outputJacobian } from '../../src/statistics/jacobian.js';
import { jacobianTransposeProduct, jacobianVectorProducts } from '../../src/statistics/jacobian-vector-products.js';
import { tangentKernel } from '../../src/statistics/tangent-kernel.js';
import { hessianVectorMean } from '../../src/statistics/hessian-vector-mean.js';
import { computeInOnePass } from '../../src/statistics/shared-pass.js';
import { squaredGradients } from '../../src/statistics/squared-gradients.js';
import { forEachLossGradientBatch } from '../../src/influence/loss-gradients.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp } from '../support/models.js';
import { bruteForceFisher, flatGradient, perExampleJacobian, relativeError } from '../support/reference.js';

const TOL = 1e-4;
const BATCHES = 20;

type Batches = Array<{ xs: tf.Tensor; ys: tf.Tensor }>;

/** 20 batches of 1, 2, 3, 1, … examples, batch k's inputs scaled by 0.3 + 0.6·(k mod 5). */
function variedBatches(model: tf.LayersModel, seed: number): Batches {
  const shape = model.inputs[0]!.shape.slice(1) as number[];
  const classes = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  return Array.from({ length: BATCHES }, (_, k) => {
    const b = 1 + (k % 3);
    return {
      xs: tf.tidy(() => tf.mul(tf.randomNormal([b, ...shape], 0, 1, 'float32', seed + k), 0.3 + 0.6 * (k % 5))),
      ys: tf.randomUniform([b], 0, classes, 'int32', seed + 100 + k),
    };
  });
}

/** Every example of the batches as its own [1, ...] tensor (caller disposes). */
function examples(batches: Batches): tf.Tensor[] {
  return batches.flatMap((b) => Array.from({ length: b.xs.shape[0]! }, (_, i) => tf.slice(b.xs, [i], [1])));
}

interface Fixture {
  name: string;
  model: tf.LayersModel;
  lc: LayerCollection;
  batches: Batches;
  /** The raw outputs' pass (Jacobian, kernel). */
  spec: PassSpec;
  /** Brute-force rows: ref[o][i] = ∇θ f_o(x_i), float64 [d]. */
  ref: Float64Array[][];
  outputs: number;
  n: number;
}

const fixtures: Fixture[] = [];

before(async () => {
  await useTestBackend();
  for (const [name, make, seed] of [['MLP', () => mlp(), 61], ['CNN', () => cnn(), 67]] as const) {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = variedBatches(model, seed);
    const xs = examples(batches);
    const rows = xs.map((x) => perExampleJacobian(model, lc, x).jac);
    tf.dispose(xs);
    const outputs = rows[0]!.length;
    const ref = Array.from({ length: outputs }, (_, o) => rows.map((r) => r[o]!));
    const spec: PassSpec = { model, layerCollection: lc, loader: batches, outputs: jacobianOutputs() };
    fixtures.push({ name, model, lc, batches, spec, ref, outputs, n: rows.length });
  }
});

after(() => {
  for (const f of fixtures) {
    disposeBatches(f.batches);
    f.model.dispose();
  }
});

/** A deterministic vector of `size` values (varied signs and magnitudes). */
const vector = (size: number, phase: number) => Float32Array.from({ length: size }, (_, k) => Math.sin(1.7 * k + phase) * (1 + (k % 5)));

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
};

for (const name of ['MLP', 'CNN']) {
  const fx = () => fixtures.find((f) => f.name === name)!;

  test(`${name}: outputJacobian is J[o, i, :] = ∇θ f_o(x_i) in loader order, outputs kept apart (rel. ${TOL})`, async (t) => {
    const { spec, lc, ref, outputs, n } = fx();
    const { value: j } = await accumulate(spec, outputJacobian(lc));
    assert.deepEqual(j.shape, [outputs, n, lc.numel()]);
    const err = relativeError(j.dataSync(), ref.flatMap((perOutput) => perOutput.flatMap((r) => Array.from(r))));
    j.dispose();
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    assert.ok(err < TOL, `relative error ${err}`);
  });

  test(`${name}: jacobianVectorProducts is (J v)[o, i] = ⟨∇θ f_o(x_i), v⟩ (rel. ${TOL}), leaving no tensor`, async (t) => {
    const { spec, lc, ref, outputs, n } = fx();
    const v = tf.tensor1d(vector(lc.numel(), 0.4));
    const n0 = tf.memory().numTensors;
    const { value: jv } = await accumulate(spec, jacobianVectorProducts(lc, v));
    assert.equal(tf.memory().numTensors, n0 + 1, 'only the result is left');
    assert.deepEqual(jv.shape, [outputs, n]);
    const vs = v.dataSync();
    const err = relativeError(jv.dataSync(), ref.flatMap((perOutput) => perOutput.map((r) => dot(r, vs))));
    tf.dispose([jv, v]);
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    assert.ok(err < TOL, `relative error ${err}`);
  });

  test(`${name}: jacobianTransposeProduct is Jᵀ f = Σ_o Σ_i f_oi ∇θ f_o(x_i), past the 16-batch transfer (rel. ${TOL})`, async (t) => {
    const { spec, lc, ref, outputs, n } = fx();
    const fv = vector(outputs * n, 1.1);
    const f = tf.tensor2d(fv, [outputs, n]);
    const n0 = tf.memory().numTensors;
    const { value, examples: seen } = await accumulate(spec, jacobianTransposeProduct(lc, f, 'f'));
    assert.equal(tf.memory().numTensors, n0);
    assert.equal(seen, n);
    const expected = new Float64Array(lc.numel());
    ref.forEach((perOutput, o) => perOutput.forEach((r, i) => r.forEach((x, k) => (expected[k]! += fv[o * n + i]! * x))));
    const err = relativeError(value, expected);
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    assert.ok(err < TOL, `relative error ${err}`);
    // Too few examples: a typed error naming f once the pass passes its end, nothing left.
    const short = tf.slice(f, [0, 0], [outputs, n - 2]) as tf.Tensor2D;
    const n1 = tf.memory().numTensors;
    await assert.rejects(accumulate(spec, jacobianTransposeProduct(lc, short, 'f')), (e: unknown) => e instanceof ShapeMismatchError && /f has \d+ examples but the loader yields more/.test(e.message));
    assert.equal(tf.memory().numTensors, n1);
    tf.dispose([f, short]);
  });

  test(`${name}: tangentKernel is K[(o,i),(o',j)] = ⟨∇θ f_o(x_i), ∇θ f_o'(x_j)⟩, whole and in row chunks (rel. ${TOL}), leaving no tensor`, async (t) => {
    const { spec, lc, ref, outputs, n } = fx();
    const rows = ref.flat();
    const expected = new Float64Array((outputs * n) ** 2);
    for (let r = 0; r < rows.length; r++) for (let c = 0; c < rows.length; c++) expected[r * rows.length + c] = dot(rows[r]!, rows[c]!);
    const n0 = tf.memory().numTensors;
    for (const chunk of [undefined, 5]) {
      const { value, outputs: o, examples: m } = await accumulate(spec, tangentKernel(lc, chunk));
      assert.equal(tf.memory().numTensors, n0, 'the captured batches are released');
      assert.deepEqual([o, m], [outputs, n]);
      const err = relativeError(value, expected);
      t.diagnostic(`chunk ${chunk ?? 'default'}: relative error ${err.toExponential(2)}`);
      assert.ok(err < TOL, `chunk ${chunk}: relative error ${err}`);
    }
  });

  test(`${name}: the per-example loss gradients (outputRows over the loss) are ∇θ ℓ(f(x_i), y_i) batch by batch (rel. ${TOL})`, async (t) => {
    const { model, lc, batches } = fx();
    const got: number[] = [];
    const starts: number[] = [];
    const spec = { model, layerCollection: lc, variant: 'classif_logits' as const, sigma2: 1, loaderName: 'loader', where: 'test' };
    const n0 = tf.memory().numTensors;
    const total = await forEachLossGradientBatch(spec, batches, (g, start) => {
      starts.push(start);
      got.push(...g.dataSync());
    });
    assert.equal(tf.memory().numTensors, n0);
    const expected: number[] = [];
    const expectedStarts: number[] = [];
    let at = 0;
    for (const b of batches) {
      expectedStarts.push(at);
      const labels = b.ys.dataSync();
      for (let i = 0; i < b.xs.shape[0]!; i++) {
        const xi = tf.slice(b.xs, [i], [1]);
        const y = labels[i]!;
        // ℓ = −log softmax(f(x_i))[y_i], differentiated by tfjs through model.apply.
        const g = flatGradient(lc, () => tf.tidy(() => tf.neg(tf.logSoftmax((model.apply(xi) as tf.Tensor).reshape([1, -1])).gather([y], 1).sum()) as tf.Scalar));
        xi.dispose();
        expected.push(...g);
      }
      at += b.xs.shape[0]!;
    }
    assert.equal(total, at);
    assert.deepEqual(starts, expectedStarts);
    const err = relativeError(got, expected);
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    assert.ok(err < TOL, `relative error ${err}`);
  });
}

test(`hessianVectorMean: on a model linear in θ, H v of the mean cross-entropy is the brute-force Fisher times v, over 20 batches (rel. ${TOL})`, async (t) => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [5], kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }), biasInitializer: tf.initializers.randomNormal({ seed: 4 }) })] });
  const lc = LayerCollection.fromModel(model);
  const batches = variedBatches(model, 71);
  const d = lc.numel();
  const vs = vector(d, 0.9);
  const v = tf.tensor1d(vs);
  const n0 = tf.memory().numTensors;
  const hv = await hessianVectorMean({ model, layerCollection: lc, loader: batches, loss: batchLoss('cross_entropy'), checkLoss: false }, v);
  assert.equal(tf.memory().numTensors, n0);
  // H = (1/n) Σ J_iᵀ (diag p_i − p_i p_iᵀ) J_i exactly when f is linear in θ.
  const F = bruteForceFisher(model, lc, batches.map((b) => b.xs), 'classif_logits');
  const expected = Float64Array.from({ length: d }, (_, p) => dot(F.subarray(p * d, (p + 1) * d), vs));
  const err = relativeError(hv, expected);
  t.diagnostic(`relative error ${err.toExponential(2)}`);
  assert.ok(err < TOL, `relative error ${err}`);
  v.dispose();
  disposeBatches(batches);
  model.dispose();
});

test('computeInOnePass: several computations share one pass over a one-shot loader and equal their own passes (rel. 1e-6)', async () => {
  const { model, lc, batches } = fixtures.find((f) => f.name === 'MLP')!;
  let drawn = 0;
  async function* once() {
    for (const b of batches) {
      drawn++;
      yield b;
    }
  }
  const spec: PassSpec = { model, layerCollection: lc, loader: once(), outputs: variantCotangents('classif_logits', {}) };
  const ids = lc.ids();
  const subs = ids.map((id) => LayerCollection.fromLayers(model, [id]));
  const settled = await computeInOnePass(
    spec,
    subs.map((sub) => async (shared: PassSpec) => (await accumulate({ ...shared, layerCollection: sub }, squaredGradients(sub))).value),
  );
  assert.equal(drawn, BATCHES, 'the loader is iterated once for all the computations');
  for (const [k, sub] of subs.entries()) {
    const r = settled[k]!;
    assert.equal(r.status, 'fulfilled', `computation ${k}`);
    const own = await accumulate({ model, layerCollection: sub, loader: batches, outputs: variantCotangents('classif_logits', {}) }, squaredGradients(sub));
    const err = relativeError((r as PromiseFulfilledResult<Float64Array>).value, own.value);
    assert.ok(err < 1e-6, `layer ${ids[k]}: relative error ${err}`);
  }
});
