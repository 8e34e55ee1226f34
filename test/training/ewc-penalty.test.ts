/**
 * ewcPenalty: for every stored representation, the gradient w.r.t. the weights equals
 * λ·M(θ − θ*) with M the representation's own dense matrix (toTensor, an independent float64
 * product here; rel. 1e-5) and the value equals (λ/2)·vTMv (rel. 1e-6); a finite difference of
 * the value agrees with the gradient; no tensor leaks inside tf.variableGrads; bad input is typed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM, FisherSum, InvalidArgumentError, LayerCollection, LayerCollectionMismatchError, PMatBlockDiag, PMatDense, PMatDiag, PMatEKFAC, PMatEye,
  PMatImplicit, PMatKFAC, PMatLowRank, PMatMixed, PMatQuasiDiag, PVector, ewcPenalty, type PMat,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../support/models.js';
import { flatGradient, host, relativeError } from '../support/reference.js';

const GRAD_TOL = 1e-5;
const VALUE_TOL = 1e-6;
const LAMBDA = 3;

let model: tf.LayersModel;
let lc: LayerCollection;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let anchor: PVector;
let delta: Float64Array;

before(async () => {
  await useTestBackend();
  model = cnn();
  lc = LayerCollection.fromModel(model);
  batches = randomBatches(model, 12, 4);
  anchor = PVector.fromModel(model, lc);
  // Move the weights away from the anchor: Δ = θ − θ* = 0.3·r.
  const r = PVector.random(lc, 5);
  const step = r.scale(0.3);
  step.addToModel(model);
  const theta = PVector.fromModel(model, lc);
  const d = theta.sub(anchor);
  delta = host(d.toFlat());
  [r, step, theta, d].forEach((x) => x.dispose());
});

after(() => {
  anchor.dispose();
  model.dispose();
  disposeBatches(batches);
});

/** M Δ and ΔᵀMΔ from the dense matrix, in float64. */
function denseReference(M: { toTensor(): tf.Tensor2D }): { md: Float64Array; value: number } {
  const m = host(M.toTensor());
  const d = delta.length;
  const md = new Float64Array(d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) md[i] += m[i * d + j]! * delta[j]!;
  return { md, value: md.reduce((s, x, i) => s + x * delta[i]!, 0) };
}

function checkPenalty(M: PMat | FisherSum, name: string): void {
  const { md, value } = denseReference(M);
  const before = tf.memory().numTensors;
  const grad = flatGradient(lc, () => ewcPenalty(M, anchor, { model, lambda: LAMBDA }));
  const penalty = ewcPenalty(M, anchor, { model, lambda: LAMBDA });
  const v = penalty.dataSync()[0]!;
  penalty.dispose();
  assert.equal(tf.memory().numTensors, before, `${name}: tensors leaked`);
  const err = relativeError(grad, md.map((x) => LAMBDA * x));
  assert.ok(err < GRAD_TOL, `${name}: gradient rel. error ${err}`);
  const Mdelta = PVector.fromFlat(lc, tf.tensor1d(Float32Array.from(delta)));
  const vtmv = M.vTMv(Mdelta);
  Mdelta.dispose();
  assert.ok(Math.abs(v - (LAMBDA / 2) * vtmv) <= VALUE_TOL * Math.abs(v), `${name}: value ${v} vs (λ/2)vTMv ${(LAMBDA / 2) * vtmv}`);
  // The dense float32 matrix times float32 Δ, summed in float64: the same number to rounding.
  assert.ok(Math.abs(v - (LAMBDA / 2) * value) <= 1e-5 * Math.abs(v), `${name}: value ${v} vs dense ${(LAMBDA / 2) * value}`);
}

const STORED = [PMatDiag, PMatDense, PMatBlockDiag, PMatKFAC, PMatEKFAC, PMatQuasiDiag, PMatLowRank] as const;

for (const rep of STORED) {
  test(`${rep.representationName}: ∇ ewcPenalty = λ·M(θ − θ*) (1e-5), value = (λ/2)·vTMv (1e-6), no leak`, async () => {
    const M = (await FIM({ model, loader: batches, representation: rep as typeof PMatDiag })) as unknown as PMat;
    if (M instanceof PMatEKFAC) await M.updateDiag(batches); // a diagonal that is not λ_A λ_G
    checkPenalty(M, rep.representationName);
    M.dispose();
  });
}

test('PMatEye, PMatMixed (KFAC + Diag) and a FisherSum of KFAC and Diag: same identities', async () => {
  const eye = new PMatEye(lc, 0.7);
  checkPenalty(eye, 'PMatEye');
  const mixed = await FIM({ model, loader: batches, representation: PMatMixed.fromMapping({ default: PMatKFAC, byLayerId: { [lc.layers[1]!.id]: PMatDiag } }) });
  checkPenalty(mixed, 'PMatMixed');
  const kfac = await FIM({ model, loader: batches, representation: PMatKFAC });
  const diag = await FIM({ model, loader: batches, representation: PMatDiag });
  const sum = new FisherSum([{ matrix: kfac, weight: 0.5 }, diag]);
  checkPenalty(sum, 'FisherSum');
  [eye, mixed, kfac, diag, sum].forEach((m) => m.dispose());
});

test('the gradient is the derivative of the value (central finite difference along a random direction, rel. 2e-2)', async () => {
  const kfac = await FIM({ model, loader: batches, representation: PMatKFAC });
  const grad = flatGradient(lc, () => ewcPenalty(kfac, anchor, { model, lambda: LAMBDA }));
  const dir = PVector.random(lc, 9);
  const u = host(dir.toFlat());
  const eps = 1e-2;
  const at = (s: number) => {
    const step = dir.scale(s);
    step.addToModel(model);
    const p = ewcPenalty(kfac, anchor, { model, lambda: LAMBDA });
    const v = p.dataSync()[0]!;
    p.dispose();
    const back = step.scale(-1);
    back.addToModel(model);
    [step, back].forEach((x) => x.dispose());
    return v;
  };
  // The penalty is quadratic: the central difference is exact up to float32 rounding.
  const fd = (at(eps) - at(-eps)) / (2 * eps);
  const directional = grad.reduce((s, g, i) => s + g * u[i]!, 0);
  assert.ok(Math.abs(fd - directional) < 2e-2 * Math.abs(directional), `fd ${fd} vs ∇·u ${directional}`);
  dir.dispose();
  kfac.dispose();
});

test('inside tf.variableGrads with an Adam step: no tensor leaks over several steps', async () => {
  const diag = await FIM({ model, loader: batches, representation: PMatDiag });
  const vars = lc.layers.flatMap((e) => e.layer.trainableWeights.map((w) => w.read() as tf.Variable));
  const opt = tf.train.adam(1e-3);
  // Adam's moment slots are created at the first step: count after it.
  tf.tidy(() => {
    opt.minimize(() => ewcPenalty(diag, anchor, { model }), false, vars);
  });
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(() => tf.add(ewcPenalty(diag, anchor, { model, lambda: 2 }), tf.sum(tf.square(model.apply(batches[0]!.xs) as tf.Tensor))) as tf.Scalar, vars);
    opt.applyGradients(grads as tf.NamedTensorMap & Record<string, tf.Variable>);
    value.dispose();
    tf.dispose(Object.values(grads));
  }
  assert.equal(tf.memory().numTensors, before);
  opt.dispose();
  diag.dispose();
});

test('bad input: anchor of another model, negative λ, matrix-free F, disposed anchor — typed errors, no leak', async () => {
  const diag = await FIM({ model, loader: batches, representation: PMatDiag });
  const other = mlp();
  const foreign = PVector.fromModel(other);
  const before = tf.memory().numTensors;
  assert.throws(() => ewcPenalty(diag, foreign, { model }), LayerCollectionMismatchError);
  assert.throws(() => ewcPenalty(diag, anchor, { model, lambda: -1 }), InvalidArgumentError);
  assert.throws(() => ewcPenalty(diag, anchor, { model: other }), LayerCollectionMismatchError);
  assert.throws(() => ewcPenalty(diag, anchor, { model, lamda: 1 } as never), /lambda/);
  const implicit = await FIM({ model, loader: batches, representation: PMatImplicit });
  assert.throws(() => ewcPenalty(implicit as never, anchor, { model }), InvalidArgumentError);
  implicit.dispose();
  assert.equal(tf.memory().numTensors, before);
  foreign.dispose();
  assert.throws(() => ewcPenalty(diag, foreign, { model }), /disposed/);
  other.dispose();
  diag.dispose();
});
