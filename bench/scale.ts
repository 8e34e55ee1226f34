/**
 * Scale rows (`npm run bench:scale`, or `npm run bench -- --scale`): wide MLPs as multiples of
 * one plain forward+backward pass over the same data, with the process's peak RSS after each
 * row (process.resourceUsage().maxRSS, monotone: a row's value includes every earlier row).
 *   - d ≈ 10^7: 784 → 2048×3 → 10 (relu), 1,024 examples;
 *   - d ≈ 10^8: 784 → 4096×7 → 10 (relu), 256 examples (`--huge`; about 5 GiB of memory).
 * Rows: FIMMonteCarlo 1 trial Diag, FIM Diag, FIM KFAC, PMatImplicit mv, KFAC solve (regul 1e-3).
 * Batches of 128, N(0, 1) inputs, labels uniform in 0..9, classif_logits, backend wasm.
 *
 * `npx tsx bench/scale.ts [--huge]` prints a table and writes bench/out/scale.json;
 * BENCH_SCALE_ONLY=kfac measures the unit, FIM KFAC and KFAC solve only.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, FIMMonteCarlo, LayerCollection, PMatDiag, PMatImplicit, PMatKFAC, PVector, type PMatBase } from '../src/index.js';
import { seededData, type BenchBatch } from './workloads.js';

interface ScaleRow {
  workload: string;
  what: string;
  params: number;
  examples: number;
  ms: number;
  ratio: number;
  /** Peak resident set size of the process so far, bytes. */
  peakRssBytes: number;
}

function wideMlp(width: number, hidden: number): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: width, inputShape: [784], activation: 'relu' }));
  for (let i = 1; i < hidden; i++) m.add(tf.layers.dense({ units: width, activation: 'relu' }));
  m.add(tf.layers.dense({ units: 10 }));
  return m;
}

/** BENCH_SCALE_ONLY=kfac: the unit, FIM KFAC and its solve only. */
const kfacOnly = process.env.BENCH_SCALE_ONLY === 'kfac';
const peakRss = () => process.resourceUsage().maxRSS * 1024;

async function timed<T>(f: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await f();
  return { ms: performance.now() - t0, value };
}

export async function benchScale(configs: Array<{ width: number; hidden: number; examples: number }>): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  for (const { width, hidden, examples } of configs) {
    const model = wideMlp(width, hidden);
    const loader: BenchBatch[] = seededData(model, examples, 300);
    const lc = LayerCollection.fromModel(model);
    const params = lc.numel();
    const workload = `MLP 784-${width}x${hidden}-10, ${examples} examples`;
    const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
    const plain = () => {
      for (const { xs, ys } of loader) {
        const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(ys, 10), model.apply(xs) as tf.Tensor) as tf.Scalar), vars);
        value.dataSync();
        value.dispose();
        tf.dispose(Object.values(grads));
      }
    };
    (await FIM({ model, loader: loader.slice(0, 1), representation: PMatDiag })).dispose(); // kernel set-up
    plain();
    const unit = (await timed(plain)).ms;
    const record = (what: string, ms: number) => {
      const r = { workload, what, params, examples, ms, ratio: ms / unit, peakRssBytes: peakRss() };
      rows.push(r);
      console.error(`  ${workload}: ${what}: ${ms.toFixed(0)} ms (${r.ratio.toFixed(2)} × unit), peak RSS ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB`);
    };
    record('plain forward+backward (unit)', unit);
    const once = async (what: string, make: () => Promise<PMatBase>) => {
      const t = await timed(make);
      record(what, t.ms);
      return t.value;
    };
    if (!kfacOnly) {
      (await once('FIMMonteCarlo 1 trial PMatDiag', () => FIMMonteCarlo({ model, loader, representation: PMatDiag, trials: 1, seed: 3 }))).dispose();
      (await once('FIM PMatDiag', () => FIM({ model, loader, representation: PMatDiag }))).dispose();
    }
    const kfac = (await once('FIM PMatKFAC', () => FIM({ model, loader, representation: PMatKFAC }))) as PMatKFAC;
    const v = PVector.random(lc, 5);
    const solve = await timed(() => kfac.solve(v, { regul: 1e-3 }));
    solve.value.dispose();
    record('  PMatKFAC.solve (regul 1e-3)', solve.ms);
    kfac.dispose();
    if (!kfacOnly) {
      const implicit = await FIM({ model, loader, representation: PMatImplicit });
      const mv = await timed(() => implicit.mv(v));
      record('PMatImplicit.mv', mv.ms);
      mv.value.dispose();
      implicit.dispose();
    }
    v.dispose();
    loader.forEach((b) => tf.dispose([b.xs, b.ys]));
    model.dispose();
  }
  return rows;
}

const isMain = import.meta.url === new URL(`file://${process.argv[1] ?? ''}`).href;
if (isMain) {
  await tf.setBackend(process.env.BENCH_BACKEND ?? 'wasm');
  await tf.ready();
  const configs = [{ width: 2048, hidden: 3, examples: 1024 }];
  if (process.argv.includes('--huge')) configs.push({ width: 4096, hidden: 7, examples: 256 });
  const load = loadavg();
  const rows = await benchScale(configs);
  console.log(`scale rows (backend ${tf.getBackend()}, load average ${load.map((x) => x.toFixed(1)).join(' ')} at the start)`);
  console.log('workload'.padEnd(40) + 'what'.padEnd(34) + 'params'.padStart(12) + 'ms'.padStart(9) + '× unit'.padStart(9) + 'peak RSS GiB'.padStart(14));
  for (const r of rows) console.log(r.workload.padEnd(40) + r.what.padEnd(34) + String(r.params).padStart(12) + r.ms.toFixed(0).padStart(9) + r.ratio.toFixed(2).padStart(9) + (r.peakRssBytes / 2 ** 30).toFixed(2).padStart(14));
  mkdirSync('bench/out', { recursive: true });
  writeFileSync('bench/out/scale.json', JSON.stringify({ date: new Date().toISOString(), loadAtStart: load, rows }, null, 2));
}
