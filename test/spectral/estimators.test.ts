/**
 * The trace and diagonal estimators against the exact trace and diagonal of the float64 dense
 * Fisher of a small MLP (d = 74) on inputs of decaying scale (a decaying spectrum). Statistical tests are seeded; bounds are
 * stated in units of the estimators' own standard errors (3σ), so a correct estimator fails
 * them with probability < 0.3%, and the seeds are fixed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatDense, PMatImplicit, estimateDiag, estimateTrace, initLinalg, type TraceMethod } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';

let model: tf.Sequential;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let F: PMatDense;
let exactTrace: number;
let exactDiag: Float64Array;
let d: number;

before(async () => {
  await useTestBackend();
  await initLinalg();
  model = mlp();
  // Input features of decaying scale give a Fisher with a decaying spectrum (most of its trace
  // in a few directions), the case Hutch++, XTrace and XDiag are built for.
  const featureScale = tf.tensor1d([3, 1, 0.3, 0.1, 0.03]);
  batches = randomBatches(model, 64, 16).map((b) => {
    const xs = tf.mul(b.xs, featureScale);
    b.xs.dispose();
    return { xs, ys: b.ys };
  });
  featureScale.dispose();
  F = await FIM({ model, loader: batches, representation: PMatDense });
  d = LayerCollection.fromModel(model).numel();
  const values = F.values();
  exactDiag = Float64Array.from({ length: d }, (_, i) => values[i * d + i]!);
  // The operator multiplies by the float32 copy of the matrix: its exact trace is that copy's.
  exactDiag = Float64Array.from(exactDiag, (x) => Math.fround(x));
  exactTrace = exactDiag.reduce((a, b) => a + b, 0);
});
after(() => {
  F.dispose();
  disposeBatches(batches);
  model.dispose();
});

function stats(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, std: Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) };
}

async function runs(method: TraceMethod, count: number, samples: number, distribution: 'rademacher' | 'normal' = 'rademacher') {
  const out: Array<{ value: number; standardError: number }> = [];
  for (let seed = 1; seed <= count; seed++) out.push(await estimateTrace(F, { method, samples, seed, distribution }));
  return out;
}

test('Hutchinson is unbiased and its standard error matches the empirical spread (200 seeded estimates)', async () => {
  for (const distribution of ['rademacher', 'normal'] as const) {
    const r = await runs('hutchinson', 200, 10, distribution);
    const { mean, std } = stats(r.map((x) => x.value));
    assert.ok(Math.abs(mean - exactTrace) <= (3 * std) / Math.sqrt(200), `${distribution}: mean ${mean} vs ${exactTrace} (σ/√200 = ${std / Math.sqrt(200)})`);
    const reported = r.reduce((a, x) => a + x.standardError, 0) / r.length;
    assert.ok(Math.abs(reported / std - 1) <= 0.3, `${distribution}: reported SE ${reported} vs empirical ${std}`);
  }
});

test('Hutch++ and XTrace: unbiased, with a variance several times below Hutchinson at 30 products', async () => {
  const count = 100;
  const h = stats((await runs('hutchinson', count, 30)).map((x) => x.value));
  const ratios: Record<string, number> = {};
  for (const method of ['hutch++', 'xtrace'] as const) {
    const r = await runs(method, count, 30);
    const s = stats(r.map((x) => x.value));
    assert.ok(Math.abs(s.mean - exactTrace) <= (3 * s.std) / Math.sqrt(count), `${method}: mean ${s.mean} vs ${exactTrace}`);
    ratios[method] = (h.std / s.std) ** 2;
    assert.ok(ratios[method]! >= 3, `${method}: variance ratio ${ratios[method]}`);
    const reported = r.reduce((a, x) => a + x.standardError, 0) / r.length;
    assert.ok(reported / s.std > 0.5 && reported / s.std < 2, `${method}: reported SE ${reported} vs empirical ${s.std}`);
  }
  console.log(`variance(Hutchinson)/variance(method) at 30 products: ${JSON.stringify(ratios)}`);
});

test('XDiag: unbiased per entry, with a mean squared error several times below Hutchinson’s diagonal', async () => {
  const count = 40;
  const mse: Record<string, number> = {};
  for (const method of ['hutchinson', 'xdiag'] as const) {
    const sum = new Float64Array(d);
    const sq = new Float64Array(d);
    const totals: number[] = [];
    for (let seed = 1; seed <= count; seed++) {
      const v = await estimateDiag(F, { method, samples: 30, seed });
      const x = v.data.dataSync();
      v.dispose();
      totals.push(Array.from(x).reduce((a, b) => a + b, 0));
      for (let j = 0; j < d; j++) {
        sum[j]! += x[j]!;
        sq[j]! += (x[j]! - exactDiag[j]!) ** 2;
      }
    }
    // Σ_j (mean_j − M_jj)² has expectation Σ_j MSE_j / count: allow 3 times that (χ² with d dof).
    const meanErr = sum.reduce((a, s, j) => a + (s / count - exactDiag[j]!) ** 2, 0);
    const totalMse = sq.reduce((a, b) => a + b, 0) / count;
    assert.ok(meanErr <= (3 * totalMse) / count, `${method}: bias² ${meanErr} vs variance/count ${totalMse / count}`);
    // Summed over entries the bias adds up while the noise partly cancels: Σ_j of the estimate is
    // an unbiased trace estimate, within 3 of its standard errors of tr(M).
    const t = stats(totals);
    assert.ok(Math.abs(t.mean - exactTrace) <= (3 * t.std) / Math.sqrt(count), `${method}: Σ diag ${t.mean} ± ${t.std / Math.sqrt(count)} vs tr ${exactTrace}`);
    mse[method] = totalMse;
  }
  assert.ok(mse.hutchinson! / mse.xdiag! >= 3, `MSE ratio ${mse.hutchinson! / mse.xdiag!}`);
  console.log(`MSE(Hutchinson diag)/MSE(XDiag) at 30 products: ${(mse.hutchinson! / mse.xdiag!).toFixed(1)}`);
});

test('on the matrix-free PMatImplicit: Hutch++ within 3 standard errors of its exact trace, XDiag of its diagonal', async () => {
  const M = await FIM({ model, loader: batches, representation: PMatImplicit });
  const exact = await M.trace();
  const r = await estimateTrace(M, { samples: 30, seed: 5 });
  assert.equal(r.samples, 30);
  assert.ok(Math.abs(r.value - exact) <= 3 * r.standardError, `${r.value} ± ${r.standardError} vs ${exact}`);
  const diag = await estimateDiag(M, { samples: 40, seed: 2 });
  const x = diag.data.dataSync();
  diag.dispose();
  let err = 0;
  let ref = 0;
  for (let j = 0; j < d; j++) {
    err += (x[j]! - exactDiag[j]!) ** 2;
    ref += exactDiag[j]! ** 2;
  }
  assert.ok(Math.sqrt(err / ref) < 0.25, `relative error ${Math.sqrt(err / ref)}`);
  M.dispose();
});

test('the same seed gives the same estimate; another seed another one', async () => {
  for (const method of ['hutchinson', 'hutch++', 'xtrace'] as const) {
    const a = await estimateTrace(F, { method, samples: 12, seed: 9 });
    const b = await estimateTrace(F, { method, samples: 12, seed: 9 });
    const c = await estimateTrace(F, { method, samples: 12, seed: 10 });
    assert.equal(a.value, b.value);
    assert.notEqual(a.value, c.value);
  }
});
