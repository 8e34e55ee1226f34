/**
 * Exactness on Bayesian linear regression, where the Laplace approximation is the posterior:
 * one Dense layer (no activation), variant 'regression', y = X̃θ + ε, ε ~ N(0, σ²), prior
 * N(0, δ⁻¹I), X̃ = [X, 1]. At the exact MAP θ̂ = (X̃ᵀX̃/σ² + δI)⁻¹X̃ᵀy/σ² (float64, set as the
 * weights), the evidence is log N(y; 0, σ²I + X̃X̃ᵀ/δ) and the predictive at x̃ is
 * N(x̃ᵀθ̂, x̃ᵀΛ⁻¹x̃ + σ²), Λ = X̃ᵀX̃/σ² + δI — all computed here in float64 by Gaussian
 * elimination, independent of the library.
 */
import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { Laplace, PMatBlockDiag, PMatDense, PMatDiag, PMatEKFAC, PMatKFAC, PMatLowRank, pairwiseInfluence, type PMatBase, type Representation } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { logdetSPD, solveDense } from '../influence/float64.js';

before(async () => {
  await useTestBackend();
});

const N = 64;
const P = 3;
const D = P + 1;
const SIGMA2 = 0.5;
const PRIOR = 2;

/** A seeded uniform stream (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-300)) * Math.cos(2 * Math.PI * r());
}

interface Problem {
  /** X̃ rows [N][D] and targets. */
  x: Float64Array[];
  y: Float64Array;
  /** Float64 MAP θ̂ (kernel then bias). */
  theta: Float64Array;
  /** Λ = X̃ᵀX̃/σ² + δI. */
  lambda: Float64Array;
}

/** Random Gaussian design, or a diagonal one (Walsh columns: X̃ᵀX̃ diagonal). */
function problem(design: 'random' | 'diagonal'): Problem {
  const r = rng(design === 'random' ? 3 : 5);
  const scales = [1, 0.5, 2];
  const x = Array.from({ length: N }, (_, i) => {
    const row = new Float64Array(D);
    for (let j = 0; j < P; j++) row[j] = design === 'random' ? gaussian(r) : scales[j]! * ((i >> j) & 1 ? -1 : 1);
    row[P] = 1;
    return row;
  });
  const truth = [0.7, -1.2, 0.4, 0.3];
  const y = Float64Array.from(x, (row) => row.reduce((s, v, j) => s + v * truth[j]!, 0) + Math.sqrt(SIGMA2) * gaussian(r));
  const lambda = new Float64Array(D * D);
  const rhs = new Float64Array(D);
  for (const [i, row] of x.entries()) {
    for (let a = 0; a < D; a++) {
      rhs[a]! += (row[a]! * y[i]!) / SIGMA2;
      for (let b = 0; b < D; b++) lambda[a * D + b]! += (row[a]! * row[b]!) / SIGMA2;
    }
  }
  for (let a = 0; a < D; a++) lambda[a * D + a]! += PRIOR;
  return { x, y, theta: solveDense(lambda, D, rhs, 1), lambda };
}

function linearModel(theta: Float64Array): tf.Sequential {
  const m = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [P] })] });
  m.layers[0]!.setWeights([tf.tensor2d(Float32Array.from(theta.subarray(0, P)), [P, 1]), tf.tensor1d(Float32Array.from(theta.subarray(P)))]);
  return m;
}

/** Three batches of different sizes. */
function batches(pr: Problem): Array<{ xs: tf.Tensor; ys: tf.Tensor }> {
  const cuts = [0, 30, 60, N];
  return cuts.slice(1).map((end, k) => {
    const rows = pr.x.slice(cuts[k], end);
    return {
      xs: tf.tensor2d(Float32Array.from(rows.flatMap((r) => Array.from(r.subarray(0, P)))), [rows.length, P]),
      ys: tf.tensor2d(Float32Array.from(pr.y.subarray(cuts[k], end)), [rows.length, 1]),
    };
  });
}

/** log N(y; 0, σ²I + X̃X̃ᵀ/δ) with the given δ, σ² (float64). */
function evidence(pr: Problem, prior: number, sigma2: number): number {
  const c = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) c[i * N + j] = pr.x[i]!.reduce((s, v, k) => s + v * pr.x[j]![k]!, 0) / prior + (i === j ? sigma2 : 0);
  }
  const alpha = solveDense(c, N, pr.y, 1);
  return -0.5 * pr.y.reduce((s, v, i) => s + v * alpha[i]!, 0) - 0.5 * logdetSPD(c, N) - (N / 2) * Math.log(2 * Math.PI);
}

/** The Laplace evidence at the fixed θ̂ for other (δ, σ²), float64, from its definition. */
function laplaceEvidence(pr: Problem, prior: number, sigma2: number): number {
  const sse = pr.x.reduce((s, row, i) => s + (row.reduce((t, v, k) => t + v * pr.theta[k]!, 0) - pr.y[i]!) ** 2, 0);
  const lam = new Float64Array(D * D);
  for (const row of pr.x) for (let a = 0; a < D; a++) for (let b = 0; b < D; b++) lam[a * D + b]! += (row[a]! * row[b]!) / sigma2;
  for (let a = 0; a < D; a++) lam[a * D + a]! += prior;
  const norm2 = pr.theta.reduce((s, v) => s + v * v, 0);
  return -sse / (2 * sigma2) - (N / 2) * Math.log(2 * Math.PI * sigma2) + (D / 2) * Math.log(prior) - (prior / 2) * norm2 - 0.5 * logdetSPD(lam, D);
}

/** argmax of a unimodal function on [lo, hi] by golden-section search. */
function golden(f: (x: number) => number, lo: number, hi: number): number {
  const g = (Math.sqrt(5) - 1) / 2;
  let a = lo;
  let b = hi;
  while (b - a > 1e-12) {
    const c = b - g * (b - a);
    const d = a + g * (b - a);
    if (f(c) > f(d)) b = d;
    else a = c;
  }
  return (a + b) / 2;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

const CASES: Array<[string, Representation<PMatBase>, 'random' | 'diagonal']> = [
  ['PMatDense', PMatDense, 'random'],
  ['PMatKFAC', PMatKFAC, 'random'],
  ['PMatEKFAC', PMatEKFAC, 'random'],
  ['PMatBlockDiag', PMatBlockDiag, 'random'],
  ['PMatLowRank', PMatLowRank, 'random'],
  ['PMatDiag (diagonal design)', PMatDiag, 'diagonal'],
];

for (const [name, representation, design] of CASES) {
  describe(`Bayesian linear regression, ${name}`, () => {
    test('logMarginalLikelihood equals log N(y; 0, σ²I + X̃X̃ᵀ/δ) (1e-5 relative)', async () => {
      const pr = problem(design);
      const model = linearModel(pr.theta);
      const data = batches(pr);
      const before = tf.memory().numTensors;
      const la = await Laplace.fit({ model, loader: data, likelihood: 'regression', representation, priorPrecision: PRIOR, sigma2: SIGMA2 });
      const got = la.logMarginalLikelihood();
      const want = evidence(pr, PRIOR, SIGMA2);
      assert.ok(rel(got, want) < 1e-5, `marglik ${got} vs closed form ${want}`);
      // Other hyperparameters from the cached spectrum: the Laplace evidence at the same θ̂.
      for (const [prior, sigma2] of [[0.1, 2], [10, 0.2]] as const) {
        const other = la.logMarginalLikelihood({ priorPrecision: prior, sigma2 });
        assert.ok(rel(other, laplaceEvidence(pr, prior, sigma2)) < 1e-5, `δ=${prior}, σ²=${sigma2}: ${other} vs ${laplaceEvidence(pr, prior, sigma2)}`);
      }
      la.dispose();
      assert.equal(tf.memory().numTensors, before);
      data.forEach((b) => tf.dispose([b.xs, b.ys]));
      model.dispose();
    });

    test('predictive equals N(x̃ᵀθ̂, x̃ᵀΛ⁻¹x̃ + σ²) (1e-5 relative)', async () => {
      const pr = problem(design);
      const model = linearModel(pr.theta);
      const data = batches(pr);
      const la = await Laplace.fit({ model, loader: data, likelihood: 'regression', representation, priorPrecision: PRIOR, sigma2: SIGMA2 });
      const r = rng(9);
      const xs = Array.from({ length: 6 }, () => Float64Array.from({ length: P }, () => 2 * gaussian(r)));
      const xT = tf.tensor2d(Float32Array.from(xs.flatMap((x) => Array.from(x))), [6, P]);
      const before = tf.memory().numTensors;
      const { mean, variance } = (await la.predictive(xT)) as { mean: tf.Tensor2D; variance: tf.Tensor2D };
      assert.deepEqual(variance.shape, [6, 1]);
      const m = mean.dataSync();
      const v = variance.dataSync();
      xs.forEach((x, i) => {
        const xt = Float64Array.of(...x, 1);
        const wantMean = xt.reduce((s, val, k) => s + val * pr.theta[k]!, 0);
        const sol = solveDense(pr.lambda, D, xt, 1);
        const wantVar = xt.reduce((s, val, k) => s + val * sol[k]!, 0) + SIGMA2;
        assert.ok(Math.abs(m[i]! - wantMean) < 1e-5 * Math.max(1, Math.abs(wantMean)), `mean ${m[i]} vs ${wantMean}`);
        assert.ok(rel(v[i]!, wantVar) < 1e-5, `variance ${v[i]} vs ${wantVar}`);
      });
      tf.dispose([mean, variance]);
      assert.equal(tf.memory().numTensors, before);
      la.dispose();
      xT.dispose();
      data.forEach((b) => tf.dispose([b.xs, b.ys]));
      model.dispose();
    });
  });
}

test("optimizePriorPrecision('marglik') finds the maximiser of the closed-form evidence in (δ, σ²) (1e-3 relative)", async () => {
  const pr = problem('random');
  const model = linearModel(pr.theta);
  const data = batches(pr);
  const la = await Laplace.fit({ model, loader: data, likelihood: 'regression', representation: PMatKFAC, priorPrecision: PRIOR, sigma2: SIGMA2 });
  const prior = await la.optimizePriorPrecision();
  // Float64 reference: nested golden-section searches in log δ and log σ².
  const bestPrior = (ls: number) => golden((lp) => laplaceEvidence(pr, Math.exp(lp), Math.exp(ls)), -12, 12);
  const logSigma2 = golden((ls) => laplaceEvidence(pr, Math.exp(bestPrior(ls)), Math.exp(ls)), -8, 8);
  const wantSigma2 = Math.exp(logSigma2);
  const wantPrior = Math.exp(bestPrior(logSigma2));
  assert.ok(rel(prior, wantPrior) < 1e-3, `δ ${prior} vs ${wantPrior}`);
  assert.ok(rel(la.sigma2, wantSigma2) < 1e-3, `σ² ${la.sigma2} vs ${wantSigma2}`);
  assert.equal(la.priorPrecision, prior);
  // The predictive follows the new hyperparameters: x̃ᵀ(X̃ᵀX̃/σ² + δI)⁻¹x̃ + σ² with the optimised (δ, σ²).
  const x = Float64Array.of(1, -0.5, 2, 1);
  const lam = new Float64Array(D * D);
  for (const row of pr.x) for (let a = 0; a < D; a++) for (let b = 0; b < D; b++) lam[a * D + b]! += (row[a]! * row[b]!) / la.sigma2;
  for (let a = 0; a < D; a++) lam[a * D + a]! += prior;
  const sol = solveDense(lam, D, x, 1);
  const wantVar = x.reduce((s, v, k) => s + v * sol[k]!, 0) + la.sigma2;
  const xT = tf.tensor2d([[1, -0.5, 2]]);
  const { mean, variance } = (await la.predictive(xT)) as { mean: tf.Tensor2D; variance: tf.Tensor2D };
  assert.ok(rel(variance.dataSync()[0]!, wantVar) < 1e-5, `variance ${variance.dataSync()[0]} vs ${wantVar}`);
  tf.dispose([xT, mean, variance]);
  la.dispose();
  data.forEach((b) => tf.dispose([b.xs, b.ys]));
  model.dispose();
});

test('pairwiseInfluence equals ∇ℓ_qᵀ(X̃ᵀX̃/n/σ² + λI)⁻¹∇ℓ_t, ∇ℓ = x̃(f − y)/σ² (1e-5 relative)', async () => {
  const pr = problem('random');
  const model = linearModel(pr.theta);
  const data = batches(pr);
  const query = { xs: tf.tensor2d([[0.5, -1, 2], [1, 1, 1], [-2, 0.3, 0]]), ys: tf.tensor2d([[1], [-0.5], [2]]) };
  const damping = 0.3;
  for (const representation of [PMatDense, PMatKFAC, PMatEKFAC] as Array<Representation<PMatBase>>) {
    const scores = await pairwiseInfluence({ model, trainLoader: data, queryLoader: query, representation, damping, variant: 'regression', sigma2: SIGMA2 });
    const m = new Float64Array(D * D);
    for (const row of pr.x) for (let a = 0; a < D; a++) for (let b = 0; b < D; b++) m[a * D + b]! += (row[a]! * row[b]!) / N / SIGMA2;
    for (let a = 0; a < D; a++) m[a * D + a]! += damping;
    const grad = (x: Float64Array, y: number) => {
      const f = x.reduce((s, v, k) => s + v * pr.theta[k]!, 0);
      return x.map((v) => (v * (f - y)) / SIGMA2);
    };
    const qx = [[0.5, -1, 2, 1], [1, 1, 1, 1], [-2, 0.3, 0, 1]].map((r) => Float64Array.from(r));
    const qy = [1, -0.5, 2];
    const s = scores.dataSync();
    let worst = 0;
    let scale = 0;
    qx.forEach((x, q) => {
      const pre = solveDense(m, D, grad(x, qy[q]!), 1);
      pr.x.forEach((row, t) => {
        const want = grad(row, pr.y[t]!).reduce((acc, v, k) => acc + v * pre[k]!, 0);
        worst = Math.max(worst, Math.abs(s[q * N + t]! - want));
        scale = Math.max(scale, Math.abs(want));
      });
    });
    scores.dispose();
    assert.ok(worst / scale < 1e-5, `${(representation as { representationName: string }).representationName}: relative error ${worst / scale}`);
  }
  tf.dispose([query.xs, query.ys]);
  data.forEach((b) => tf.dispose([b.xs, b.ys]));
  model.dispose();
});
