/**
 * Laplace on a small classifier, against float64 computations from each representation's own
 * matrix M (M = F.toTensor(); EKFAC after updateDiag): Λ = n·M/T + δI. Checks the precision and
 * covariance matrices, the marginal likelihood (with the cross-entropy summed by brute force),
 * the GLM predictive (probit and bridge from brute-force Jacobians), samples, and PMatImplicit
 * (predictive by conjugate gradient; no log-determinant: a typed error).
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  InvalidArgumentError,
  Laplace,
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PVector,
  type PMat,
  type PMatBase,
  type Representation,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { perExampleJacobian } from '../support/reference.js';
import { logdetSPD, relativeMaxError, solveDense } from '../influence/float64.js';

before(async () => {
  await useTestBackend();
});

const PRIOR = 0.7;
const TEMPERATURE = 0.5;

describe('Laplace on a small classifier (MLP 5 → 7 → 4)', () => {
  let model: tf.Sequential;
  let lc: LayerCollection;
  let d: number;
  let train: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
  let n: number;
  let crossEntropy: number;
  let theta: Float64Array;
  let testX: tf.Tensor2D;
  /** Brute-force Jacobians of the 6 test inputs: [example][class] rows of d. */
  let jac: Float64Array[][];
  let logits: Float64Array[];

  before(() => {
    model = mlp();
    lc = LayerCollection.fromModel(model);
    d = lc.numel();
    train = randomBatches(model, 20, 8, 3);
    n = 20;
    crossEntropy = 0;
    for (const { xs, ys } of train) {
      crossEntropy += tf.tidy(() => tf.sum(tf.neg(tf.sum(tf.mul(tf.oneHot(tf.cast(ys, 'int32'), 4), tf.logSoftmax(model.predict(xs) as tf.Tensor)), 1))).dataSync()[0]!);
    }
    const w = PVector.fromModel(model, lc);
    theta = Float64Array.from(w.data.dataSync());
    w.dispose();
    testX = tf.randomNormal([6, 5], 0, 1.5, 'float32', 99) as tf.Tensor2D;
    jac = [];
    logits = [];
    for (let i = 0; i < 6; i++) {
      const x = tf.slice(testX, [i], [1]);
      const r = perExampleJacobian(model, lc, x);
      x.dispose();
      jac.push(r.jac);
      logits.push(r.out);
    }
  });
  after(() => {
    disposeBatches(train);
    testX.dispose();
  });

  /** Λ = n·M/T + δI from the representation's own matrix. */
  async function ownPrecision(rep: Representation<PMatBase>): Promise<Float64Array> {
    const F = (await FIM({ model, loader: train, representation: rep === PMatImplicit ? PMatDense : rep })) as unknown as PMat;
    if (F instanceof PMatEKFAC) await F.updateDiag(train);
    const t = F.toTensor();
    const m = Float64Array.from(t.dataSync(), (v) => (v * n) / TEMPERATURE);
    t.dispose();
    F.dispose();
    for (let i = 0; i < d; i++) m[i * d + i]! += PRIOR;
    return m;
  }

  const REPS: Record<string, Representation<PMatBase>> = { PMatDense, PMatDiag, PMatBlockDiag, PMatKFAC, PMatEKFAC, PMatLowRank, PMatImplicit };
  for (const [name, rep] of Object.entries(REPS)) {
    test(`${name}: predictive (probit, bridge) from diag(J Λ⁻¹ Jᵀ) with Λ = n·M/T + δI (1e-4)`, async () => {
      const lambda = await ownPrecision(rep);
      const la = await Laplace.fit({ model, loader: train, likelihood: 'classification', representation: rep, priorPrecision: PRIOR, temperature: TEMPERATURE, cg: { rtol: 1e-10, maxIter: 500 } });
      const before = tf.memory().numTensors;
      const probit = (await la.predictive(testX)) as tf.Tensor2D;
      const bridge = (await la.predictive(testX, { linkApprox: 'bridge' })) as tf.Tensor2D;
      const wantProbit: number[] = [];
      const wantBridge: number[] = [];
      for (let i = 0; i < 6; i++) {
        const v = jac[i]!.map((row) => {
          const x = solveDense(lambda, d, row, 1);
          return row.reduce((s, r, k) => s + r * x[k]!, 0);
        });
        const f = logits[i]!;
        const scaled = Array.from(f, (m, c) => m / Math.sqrt(1 + (Math.PI / 8) * v[c]!));
        const mx = Math.max(...scaled);
        const e = scaled.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        wantProbit.push(...e.map((x) => x / z));
        const sumExp = Array.from(f).reduce((s, m) => s + Math.exp(-m), 0);
        const alpha = Array.from(f, (m, c) => (1 - 2 / 4 + (Math.exp(m) * sumExp) / 16) / v[c]!);
        const za = alpha.reduce((a, b) => a + b, 0);
        wantBridge.push(...alpha.map((a) => a / za));
      }
      const e1 = relativeMaxError(probit.dataSync(), wantProbit);
      const e2 = relativeMaxError(bridge.dataSync(), wantBridge);
      tf.dispose([probit, bridge]);
      assert.equal(tf.memory().numTensors, before, 'predictive leaves no tensor');
      la.dispose();
      assert.ok(e1 < 1e-4, `probit relative error ${e1}`);
      assert.ok(e2 < 1e-4, `bridge relative error ${e2}`);
    });

    if (rep === PMatImplicit) continue;
    test(`${name}: logMarginalLikelihood = −ΣCE/T + (d/2)log δ − δ‖θ̂‖²/2 − ½ log det Λ (1e-5 relative), and samples satisfy (θ − θ̂)ᵀΛ(θ − θ̂) = ‖z‖²`, async () => {
      const lambda = await ownPrecision(rep);
      const la = await Laplace.fit({ model, loader: train, likelihood: 'classification', representation: rep, priorPrecision: PRIOR, temperature: TEMPERATURE });
      const norm2 = theta.reduce((s, v) => s + v * v, 0);
      const want = -crossEntropy / TEMPERATURE + (d / 2) * Math.log(PRIOR) - (PRIOR / 2) * norm2 - 0.5 * logdetSPD(lambda, d);
      const got = la.logMarginalLikelihood();
      assert.ok(Math.abs(got - want) / Math.abs(want) < 1e-5, `marglik ${got} vs ${want}`);
      const draws = la.sample(3, { seed: 5 });
      const z = tf.randomNormal([3, d], 0, 1, 'float32', 5);
      const zs = z.arraySync() as number[][];
      z.dispose();
      draws.forEach((w, s) => {
        const dev = Float64Array.from(w.data.dataSync(), (v, k) => v - theta[k]!);
        let q = 0;
        for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) q += dev[a]! * lambda[a * d + b]! * dev[b]!;
        const zz = zs[s]!.reduce((acc, v) => acc + v * v, 0);
        assert.ok(Math.abs(q - zz) / zz < 1e-4, `sample ${s}: ${q} vs ‖z‖² ${zz}`);
        w.dispose();
      });
      la.dispose();
    });

    if (rep === PMatLowRank) continue;
    test(`${name}: posteriorPrecision = n·M/T + δI and posteriorCovariance = its inverse (1e-4)`, async () => {
      const lambda = await ownPrecision(rep);
      const la = await Laplace.fit({ model, loader: train, likelihood: 'classification', representation: rep, priorPrecision: PRIOR, temperature: TEMPERATURE });
      const p = la.posteriorPrecision.toTensor();
      assert.ok(relativeMaxError(p.dataSync(), lambda) < 1e-4, `precision error ${relativeMaxError(p.dataSync(), lambda)}`);
      const cov = la.posteriorCovariance();
      const c = cov.toTensor();
      const eye = new Float64Array(d * d);
      for (let i = 0; i < d; i++) eye[i * d + i] = 1;
      const inv = solveDense(lambda, d, eye, d);
      assert.ok(relativeMaxError(c.dataSync(), inv) < 1e-4, `covariance error ${relativeMaxError(c.dataSync(), inv)}`);
      tf.dispose([p, c]);
      cov.dispose();
      la.dispose();
    });
  }

  test("'mc' predictive: the mean softmax over the seeded weight samples, the model's weights restored exactly", async () => {
    const la = await Laplace.fit({ model, loader: train, likelihood: 'classification', representation: PMatKFAC, priorPrecision: PRIOR });
    const w0 = PVector.fromModel(model, lc);
    const before = Float64Array.from(w0.data.dataSync());
    const probs = (await la.predictive(testX, { linkApprox: 'mc', samples: 7, seed: 3 })) as tf.Tensor2D;
    const after = PVector.fromModel(model, lc);
    assert.deepEqual(Array.from(after.data.dataSync()), Array.from(before), 'weights restored');
    // Reference: the same draws, predicted through tfjs-layers one by one.
    const draws = la.sample(7, { seed: 3 });
    const sum = new Float64Array(6 * 4);
    for (const w of draws) {
      w.copyToModel(model);
      const p = tf.tidy(() => tf.softmax(model.predict(testX) as tf.Tensor2D));
      p.dataSync().forEach((v, k) => (sum[k]! += v / 7));
      p.dispose();
      w.dispose();
    }
    w0.copyToModel(model);
    const err = relativeMaxError(probs.dataSync(), sum);
    tf.dispose([probs]);
    [w0, after].forEach((v) => v.dispose());
    la.dispose();
    assert.ok(err < 1e-5, `mc relative error ${err}`);
  });

  test('PMatImplicit: logMarginalLikelihood and sample refuse with a typed error naming the representations that can', async () => {
    const la = await Laplace.fit({ model, loader: train, likelihood: 'classification', representation: PMatImplicit });
    assert.throws(() => la.logMarginalLikelihood(), (e: Error) => e instanceof InvalidArgumentError && /PMatImplicit/.test(e.message) && /PMatKFAC/.test(e.message));
    assert.throws(() => la.sample(2), (e: Error) => e instanceof InvalidArgumentError && /PMatDense/.test(e.message));
    assert.throws(() => la.posteriorPrecision, (e: Error) => e instanceof InvalidArgumentError && /PMatEKFAC/.test(e.message));
    la.dispose();
  });
});
