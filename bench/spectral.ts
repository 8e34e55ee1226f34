/**
 * Spectral rows of `npm run bench`, as multiples of one plain forward+backward pass over the
 * same data (the unit of bench/fim-bench.ts), on the whole-model matrix-free Fisher
 * (PMatImplicit, every product one pass over the data) of the MLP 784-512-512-10:
 * - eigsh top-10 eigenpairs (default tol 1e-6), 2,048 examples: products and time;
 * - estimateTrace by Hutch++ to 1% relative error, 2,048 examples: the smallest budget in
 *   9, 15, 30, 60, 120, 240 products whose 95% interval (± 1.96 standard errors) is within 1% of
 *   the estimate, and its actual error against the exact trace (one pass);
 * - spectralDensity with 10 probes × 80 steps on the first SPECTRAL_SLQ_EXAMPLES examples
 *   (default 256: 800 passes over 2,048 examples would take the better part of an hour on one
 *   core; the ratio to the unit does not depend on n).
 * Run alone with `tsx bench/spectral.ts` (BENCH_QUICK=1: 256 examples everywhere).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, PMatImplicit, eigsh, estimateTrace, initLinalg, spectralDensity } from '../src/index.js';
import type { BenchRow } from './fim-bench.js';
import { median } from './measure.js';
import { mlp, seededData, type BenchBatch } from './workloads.js';

const WORKLOAD = 'MLP 784-512-512-10, spectral tools on PMatImplicit';

/** Median time (ms) of one plain forward+backward pass over `batches` (3 runs after a warm-up). */
function unitMs(model: tf.LayersModel, batches: BenchBatch[]): number {
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const pass = () => {
    for (const { xs, ys } of batches) {
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(ys, 10), model.apply(xs) as tf.Tensor) as tf.Scalar), vars);
      value.dataSync();
      value.dispose();
      tf.dispose(Object.values(grads));
    }
  };
  pass();
  const samples = [0, 1, 2].map(() => {
    const t0 = performance.now();
    pass();
    return performance.now() - t0;
  });
  return median(samples);
}

export async function benchSpectral(quick: boolean): Promise<BenchRow[]> {
  await initLinalg();
  const rows: BenchRow[] = [];
  const model = mlp();
  const examples = quick ? 256 : 2048;
  const slqExamples = Math.min(examples, Number(process.env.SPECTRAL_SLQ_EXAMPLES ?? 256));
  const loader = seededData(model, examples, 101);
  const params = model.countParams();
  const log = (r: BenchRow) => {
    rows.push(r);
    console.error(`  ${r.workload}: ${r.what}: ${(r.ms / 1000).toFixed(1)} s (${r.ratio.toFixed(1)} × unit)`);
  };
  try {
    const unit = unitMs(model, loader);
    log({ workload: WORKLOAD, what: `plain forward+backward, ${examples} examples (unit)`, kind: 'unit', params, examples, ms: unit, ratio: 1 });
    const F = await FIM({ model, loader, representation: PMatImplicit });

    let t0 = performance.now();
    const top = await eigsh(F, { k: 10 });
    let ms = performance.now() - t0;
    top.vectors.forEach((v) => v.dispose());
    const maxResidual = Math.max(...top.residuals) / top.values[0]!;
    log({ workload: WORKLOAD, what: `eigsh top-10: ${top.iterations} products, ${top.converged ? 'converged' : 'NOT converged'}, max residual ${maxResidual.toExponential(1)}·λ₁`, kind: 'operation', params, examples, ms, ratio: ms / unit, unitMs: unit });

    t0 = performance.now();
    const exact = await F.trace();
    const traceMs = performance.now() - t0;
    for (const samples of [9, 15, 30, 60, 120, 240]) {
      t0 = performance.now();
      const r = await estimateTrace(F, { samples, seed: 1 });
      ms = performance.now() - t0;
      if (1.96 * r.standardError <= 0.01 * Math.abs(r.value) || samples === 240) {
        const error = Math.abs(r.value - exact) / exact;
        log({ workload: WORKLOAD, what: `Hutch++ trace to 1% (95% interval): ${samples} products, error ${(100 * error).toFixed(2)}% vs exact (one pass, ${(traceMs / unit).toFixed(1)} × unit)`, kind: 'operation', params, examples, ms, ratio: ms / unit, unitMs: unit });
        break;
      }
    }
    F.dispose();

    const slqLoader = loader.slice(0, Math.ceil(slqExamples / loader[0]!.xs.shape[0]!));
    const slqUnit = unitMs(model, slqLoader);
    const G = await FIM({ model, loader: slqLoader, representation: PMatImplicit });
    t0 = performance.now();
    const slq = await spectralDensity(G, { probes: 10, steps: 80, seed: 1 });
    ms = performance.now() - t0;
    G.dispose();
    log({ workload: WORKLOAD, what: `SLQ 10 probes × 80 steps (${slq.products} products) on ${slqExamples} examples`, kind: 'operation', params, examples: slqExamples, ms, ratio: ms / slqUnit, unitMs: slqUnit });
  } finally {
    tf.dispose(loader.flatMap((b) => [b.xs, b.ys]));
    model.dispose();
  }
  return rows;
}

// Run alone: tsx bench/spectral.ts
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  await tf.setBackend(process.env.BENCH_BACKEND ?? 'wasm');
  await tf.ready();
  const rows = await benchSpectral(process.env.BENCH_QUICK === '1');
  for (const r of rows) console.log(`${r.what.padEnd(110)} ${(r.ms / 1000).toFixed(1).padStart(8)} s ${r.ratio.toFixed(1).padStart(8)} × unit`);
}
