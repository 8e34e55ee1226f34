/**
 * Every statistic of src/statistics/ against the brute-force Fisher F = (1/n) Σᵢ Jᵢᵀ Hᵢ Jᵢ
 * (per-example tf.grad, test/support/reference.ts), on an MLP and a CNN over 20 batches of
 * varied inputs (past HostSum's 16-batch transfer): the diagonal, JᵀJ whole and per layer, the
 * weight–bias cross terms (entries of F), J/√n (its Gram is F), the matrix-free products
 * (tr F, F v, vᵀFv, F Rᵀ, R F Rᵀ), and the eigenbasis diagonal for *random* orthonormal bases
 * (diag(Qᵀ F_l Q), Q = U_A ⊗ U_G: a random basis, unlike an eigenbasis, tells U_A from U_G and a
 * basis from its transpose). Plus: `accumulate` releases a statistic's device tensors when the
 * pass fails, and `jointly` feeds every part from one pass.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection } from '../../src/index.js';
import type { PassSpec } from '../../src/backend/pass.js';
import { variantCotangents } from '../../src/metrics/variants.js';
import { accumulate, jointly } from '../../src/statistics/statistic.js';
import { squaredGradients } from '../../src/statistics/squared-gradients.js';
import { jacobianGram, layerJacobianGrams } from '../../src/statistics/jacobian-gram.js';
import { weightBiasCross } from '../../src/statistics/weight-bias-cross.js';
import { scaledJacobianRows } from '../../src/statistics/jacobian-rows.js';
import { gramQuadraticForm, gramRowsProduct, gramRowsQuadraticForms, gramTrace, gramVectorProduct } from '../../src/statistics/jacobian-products.js';
import { eigenbasisDiagonal, type LayerEigenbasis } from '../../src/statistics/eigenbasis-diagonal.js';
import { checkKroneckerLayers } from '../../src/statistics/kronecker-factors.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../support/models.js';
import { bruteForceFisher, relativeError } from '../support/reference.js';

const TOL = 1e-4;
const BATCHES = 20;

interface Fixture {
  name: string;
  model: tf.LayersModel;
  lc: LayerCollection;
  batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
  spec: PassSpec;
  /** Brute-force F, d×d row-major. */
  F: Float64Array;
}

const fixtures: Fixture[] = [];

before(async () => {
  await useTestBackend();
  for (const [name, make, perBatch, seed] of [['MLP', () => mlp(), 2, 41], ['CNN', () => cnn(), 1, 43]] as const) {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = randomBatches(model, BATCHES * perBatch, perBatch, seed);
    const spec: PassSpec = { model, layerCollection: lc, loader: batches, outputs: variantCotangents('classif_logits', {}) };
    fixtures.push({ name, model, lc, batches, spec, F: bruteForceFisher(model, lc, batches.map((b) => b.xs), 'classif_logits') });
  }
});

after(() => {
  for (const f of fixtures) {
    disposeBatches(f.batches);
    f.model.dispose();
  }
});

/** Entry (p, q) of F. */
const at = (f: Fixture, p: number, q: number) => f.F[p * f.lc.numel() + q]!;

/** A deterministic vector of d values (varied signs and magnitudes). */
const vector = (d: number, phase: number) => Float32Array.from({ length: d }, (_, k) => Math.sin(1.7 * k + phase) * (1 + (k % 5)));

/** A random n×n orthonormal matrix (Gram–Schmidt of a seeded matrix), float64 row-major, vectors in columns. */
function randomOrthonormal(n: number, seed: number): Float64Array {
  let s = seed;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const cols: Float64Array[] = [];
  for (let j = 0; j < n; j++) {
    const v = Float64Array.from({ length: n }, rand);
    for (const u of cols) {
      const dot = u.reduce((a, x, i) => a + x * v[i]!, 0);
      for (let i = 0; i < n; i++) v[i]! -= dot * u[i]!;
    }
    const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    cols.push(v.map((x) => x / norm));
  }
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) u[i * n + j] = cols[j]![i]!;
  return u;
}

for (const name of ['MLP', 'CNN']) {
  const fixture = () => fixtures.find((f) => f.name === name)!;

  test(`${name}: squared gradients = diag(F), Jacobian Gram = F, per-layer Grams = the diagonal blocks of F`, async () => {
    const f = fixture();
    const d = f.lc.numel();
    const { value, examples } = await accumulate(f.spec, jointly({ diag: squaredGradients(f.lc), gram: jacobianGram(f.lc), blocks: layerJacobianGrams(f.lc) }));
    assert.equal(examples, f.batches.reduce((a, b) => a + b.xs.shape[0]!, 0));
    const diag = Float64Array.from({ length: d }, (_, k) => at(f, k, k));
    assert.ok(relativeError(value.diag, diag) < TOL, `diag: ${relativeError(value.diag, diag)}`);
    assert.ok(relativeError(value.gram, f.F) < TOL, `gram: ${relativeError(value.gram, f.F)}`);
    f.lc.layers.forEach((e, i) => {
      const block = Float64Array.from({ length: e.numel * e.numel }, (_, k) => at(f, e.offset + Math.floor(k / e.numel), e.offset + (k % e.numel)));
      assert.ok(relativeError(value.blocks[i]!, block) < TOL, `block of ${e.id}: ${relativeError(value.blocks[i]!, block)}`);
    });
  });

  test(`${name}: weight–bias cross terms = F[(k, c), (K−1, c)]`, async () => {
    const f = fixture();
    const supports = checkKroneckerLayers(f.lc, 'test');
    const { value } = await accumulate(f.spec, weightBiasCross(f.lc, supports));
    f.lc.layers.forEach((e, i) => {
      const [k, c] = supports[i]!.factorSizes(e.layer);
      const expected = Float64Array.from({ length: (k - 1) * c }, (_, j) => at(f, e.offset + j, e.offset + (k - 1) * c + (j % c)));
      assert.ok(value[i], `layer ${e.id} has a bias`);
      assert.ok(relativeError(value[i]!, expected) < TOL, `cross of ${e.id}: ${relativeError(value[i]!, expected)}`);
    });
  });

  test(`${name}: (J/√n)ᵀ(J/√n) = F`, async () => {
    const f = fixture();
    const { value: j } = await accumulate(f.spec, scaledJacobianRows(f.lc));
    const gram = tf.tidy(() => tf.matMul(j, j, true, false));
    const err = relativeError(gram.dataSync(), f.F);
    tf.dispose([j, gram]);
    assert.ok(err < TOL, `JᵀJ/n: ${err}`);
  });

  test(`${name}: tr F, F v, vᵀFv, F Rᵀ and R F Rᵀ without F`, async () => {
    const f = fixture();
    const d = f.lc.numel();
    const vHost = vector(d, 0.3);
    const v = tf.tensor1d(vHost);
    const rHost = [vector(d, 1.1), vector(d, 2.9), vector(d, -0.4)];
    const r = tf.tensor2d(rHost.flatMap((x) => Array.from(x)), [3, d]);
    const Fx = (x: Float32Array) => Float64Array.from({ length: d }, (_, p) => x.reduce((a, xq, q) => a + at(f, p, q) * xq, 0));
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0);
    try {
      const { value } = await accumulate(
        f.spec,
        jointly({ trace: gramTrace(f.lc), mv: gramVectorProduct(f.lc, v), q: gramQuadraticForm(f.lc, v), rows: gramRowsProduct(f.lc, r), forms: gramRowsQuadraticForms(f.lc, r) }),
      );
      const trace = Array.from({ length: d }, (_, k) => at(f, k, k)).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(value.trace - trace) < TOL * trace, `trace ${value.trace} vs ${trace}`);
      const fv = Fx(vHost);
      // A pass of at most 16 batches leaves M v on the device (the caller's to dispose).
      const mv = value.mv instanceof tf.Tensor ? Float64Array.from(value.mv.dataSync()) : value.mv;
      if (value.mv instanceof tf.Tensor) value.mv.dispose();
      assert.ok(relativeError(mv, fv) < TOL, `F v: ${relativeError(mv, fv)}`);
      const q = dot(vHost, fv);
      assert.ok(Math.abs(value.q - q) < TOL * Math.abs(q), `vᵀFv ${value.q} vs ${q}`);
      const rows = rHost.flatMap((x) => Array.from(Fx(x)));
      assert.ok(relativeError(value.rows, rows) < TOL, `F Rᵀ: ${relativeError(value.rows, rows)}`);
      const forms = rHost.map((x) => dot(x, Fx(x)));
      assert.ok(relativeError(value.forms, forms) < TOL, `R F Rᵀ: ${relativeError(value.forms, forms)}`);
    } finally {
      tf.dispose([v, r]);
    }
  });

  test(`${name}: eigenbasis diagonal for random orthonormal U_A, U_G = diag(Qᵀ F_l Q), Q = U_A ⊗ U_G`, async () => {
    const f = fixture();
    const supports = checkKroneckerLayers(f.lc, 'test');
    const layers: LayerEigenbasis[] = f.lc.layers.map((e, i) => {
      const [k, c] = supports[i]!.factorSizes(e.layer);
      return { weights: { k, c, uA: randomOrthonormal(k, 7 + i), uG: randomOrthonormal(c, 70 + i) }, bias: null };
    });
    const { value } = await accumulate(f.spec, eigenbasisDiagonal(f.lc, layers, 'test'));
    f.lc.layers.forEach((e, i) => {
      const { k, c, uA, uG } = layers[i]!.weights;
      // Q[(r, s), (a, b)] = U_A[r, a] U_G[s, b]; D[a, b] = Σ_{p,q} Q[p, (a,b)] F_l[p, q] Q[q, (a,b)].
      const expected = new Float64Array(k * c);
      for (let a = 0; a < k; a++) {
        for (let b = 0; b < c; b++) {
          const col = Float64Array.from({ length: k * c }, (_, p) => uA[Math.floor(p / c) * k + a]! * uG[(p % c) * c + b]!);
          let s = 0;
          for (let p = 0; p < k * c; p++) for (let q = 0; q < k * c; q++) s += col[p]! * at(f, e.offset + p, e.offset + q) * col[q]!;
          expected[a * c + b] = s;
        }
      }
      assert.ok(relativeError(value[i]!, expected) < TOL, `D of ${e.id}: ${relativeError(value[i]!, expected)}`);
    });
  });
}

test('accumulate releases every tensor a statistic holds when the pass fails half-way', async () => {
  const f = fixtures[0]!;
  const supports = checkKroneckerLayers(f.lc, 'test');
  const layers: LayerEigenbasis[] = f.lc.layers.map((e, i) => {
    const [k, c] = supports[i]!.factorSizes(e.layer);
    return { weights: { k, c, uA: randomOrthonormal(k, 3), uG: randomOrthonormal(c, 5) }, bias: null };
  });
  // The fourth batch has the wrong input width: the pass throws after three batches were summed.
  const bad = { xs: tf.zeros([2, 3]), ys: tf.zeros([2], 'int32') };
  const loader = [...f.batches.slice(0, 3), bad];
  const before = tf.memory().numTensors;
  await assert.rejects(accumulate({ ...f.spec, loader }, jointly({ d: eigenbasisDiagonal(f.lc, layers, 'test'), j: scaledJacobianRows(f.lc), g: jacobianGram(f.lc) })), /input|shape/i);
  assert.equal(tf.memory().numTensors - before, 0, 'tensors left after the failed pass');
  tf.dispose([bad.xs, bad.ys]);
});
