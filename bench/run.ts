/**
 * `npm run bench` (issue 6): costs measured side by side in one run, as multiples of one plain
 * tfjs forward+backward pass over the same data (the "unit"), so that they hold on a noisy
 * machine, each with its peak tfjs memory beside its formula's estimate.
 *
 * Workloads (bench/workloads.ts), batches of 128, variant classif_logits:
 * - MLP 784-512-512-10 (relu), 2,048 examples;
 * - CNN 28x28x1 → conv3x3x16 same → conv3x3x32 stride 2 → dense 10, 1,024 examples;
 * - residual CNN with BatchNormalization on 32x32x3, 512 examples;
 * each: FIM in every representation that fits (Dense, BlockDiag and LowRank on the last layer:
 * d², Σd_l², O·n·d floats do not fit for the whole model), FIMMonteCarlo with 1 trial, mv /
 * solve / trace on the result, EKFAC updateDiag, PMatImplicit trace and mv, the Jacobian and the
 * NTK of 256 examples. Then worker threads and float64 linear algebra.
 *
 * Output: the tables on stdout, progress on stderr, JSON in bench/out/results.json (schema in
 * docs/performance.md). Environment: BENCH_QUICK=1 runs 256 examples per workload and fewer
 * sizes; BENCH_REPS (default 3) repetitions of the short measurements (median); BENCH_LONG_MS
 * (default 8000): a measurement whose first run is longer is not repeated; BENCH_BACKEND (wasm);
 * BENCH_PYTORCH=0 skips the PyTorch reference (bench/pytorch.ts), which otherwise runs when a
 * Python with torch is found and adds a "÷ PyTorch" table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatKFAC,
  PMatLowRank,
  PMatMixed,
  PMatQuasiDiag,
  type PMatBase,
  type Representation,
} from '../src/index.js';
import { benchLinalg } from './linalg.js';
import { formatPytorchTable, pytorchRatios, runPytorchReference } from './pytorch.js';
import { benchWorkload, formatRows, type BenchRow, type FimCase, type Plan } from './fim-bench.js';
import { disposeWorkload, workloads, type Workload } from './workloads.js';

const started = performance.now();
const loadAtStart = loadavg();
const QUICK = process.env.BENCH_QUICK === '1';
const timing = { reps: Number(process.env.BENCH_REPS ?? 3), longMs: Number(process.env.BENCH_LONG_MS ?? 8000) };

await tf.setBackend(process.env.BENCH_BACKEND ?? 'wasm');
await tf.ready();

const rows: BenchRow[] = [];

/** KFAC and QuasiDiag where a layer has no Kronecker factors (BatchNormalization): dense blocks there. */
const KFACBlockDiag = PMatMixed.fromMapping({ default: PMatBlockDiag, kronecker: PMatKFAC }, 'PMatKFACBlockDiag');
const QuasiDiagBlockDiag = PMatMixed.fromMapping({ default: PMatBlockDiag, kronecker: PMatQuasiDiag }, 'PMatQuasiDiagBlockDiag');

/**
 * The plan of a workload: whole-model representations, and the last layer for the d²-sized ones.
 * `wideFactors`: a Kronecker factor thousands wide (the CNN's dense layer, 5,409), whose float64
 * eigendecomposition takes minutes; BENCH_QUICK=1 then skips EKFAC and KFAC.solve.
 */
function planFor(w: Workload, options: { lastLayerDense: boolean; jacobianWholeModel: boolean; wideFactors: boolean }): Plan {
  const full = LayerCollection.fromModel(w.model);
  const last = LayerCollection.fromLayers(w.model, [full.ids()[full.ids().length - 1]!]);
  const skipEigen = QUICK && options.wideFactors;
  const ops: FimCase['operations'] = ['mv', 'solve', 'trace'];
  const whole = (representation: Representation<PMatBase>, formula: FimCase['formula'], operationFormula: FimCase['formula'], extra: Partial<FimCase> = {}): FimCase => ({
    kind: 'fim', representation, layerCollection: full, scope: 'whole model', formula, operations: ops, operationFormula, ...extra,
  });
  const mixed = { formula: 'mixed', operationFormula: 'vectorKronecker' } as const;
  const fim: FimCase[] = [
    whole(PMatDiag, 'diag', 'vector'),
    // With a wide factor, KFAC.solve's first call is the factor eigendecomposition — the cost the EKFAC row shows.
    whole(PMatKFAC, 'kfac', 'vectorKronecker', { fallback: { representation: KFACBlockDiag, ...mixed }, ...(options.wideFactors ? { operations: ['mv', 'trace'] } : {}) }),
    ...(skipEigen ? [] : [whole(PMatEKFAC, 'kfac', 'vectorKronecker', { updateDiag: true, profileInTimedRun: true, fallback: { representation: PMatEKFACBlockDiag, ...mixed } })]),
    whole(PMatQuasiDiag, 'quasiDiag', 'vector', { fallback: { representation: QuasiDiagBlockDiag, ...mixed } }),
  ];
  if (options.lastLayerDense) {
    const onLast = (representation: Representation<PMatBase>, formula: FimCase['formula'], extra: Partial<FimCase> = {}): FimCase => ({
      kind: 'fim', representation, layerCollection: last, scope: 'last layer', formula, operations: ops, operationFormula: 'vector', subset: true, ...extra,
    });
    fim.push(onLast(PMatDense, 'dense'), onLast(PMatBlockDiag, 'blockDiag'), onLast(PMatLowRank, 'lowRank', { solveFormula: 'lowRankSolve', traceFormula: 'lowRankTrace' }));
  }
  fim.push(
    { kind: 'monte-carlo', representation: PMatDiag, layerCollection: full, scope: 'whole model', formula: 'diag' },
    { kind: 'monte-carlo', representation: PMatKFAC, layerCollection: full, scope: 'whole model', formula: 'kfac', fallback: { representation: KFACBlockDiag, ...mixed } },
  );
  return {
    fim,
    implicit: true,
    jacobian: options.jacobianWholeModel ? { layerCollection: full, scope: 'whole model' } : { layerCollection: last, scope: 'last layer' },
    ntk: { layerCollection: full, scope: 'whole model' },
    functionSpaceExamples: QUICK ? 128 : 256,
  };
}

const [mlp, cnn, resnet] = workloads(QUICK);
const describeWorkload = (w: Workload) => ({ name: w.name, description: w.description, examples: w.examples, batch: w.batch, params: LayerCollection.fromModel(w.model).numel() });
const workloadInfo = [mlp!, cnn!, resnet!].map(describeWorkload);

// MLP: d = 669,706; Dense / BlockDiag / LowRank and the Jacobian on the last layer (d = 5,130).
await benchWorkload(mlp!, planFor(mlp!, { lastLayerDense: true, jacobianWholeModel: false, wideFactors: false }), timing, rows);
disposeWorkload(mlp!);

// Worker threads (bench/workers.ts, `npm run bench:workers` for the full table): FIM on 1 thread and
// on 2 (this one and a pooled worker), the pool cold (first call) and warm (later calls).
{
  const { benchWorkers } = await import('./workers.js');
  for (const r of await benchWorkers({ sizes: [QUICK ? 1024 : 4096], reps: 1 })) {
    const workload = `MLP 784-512-512-10, ${r.examples} examples, worker threads`;
    rows.push({ workload, what: `FIM ${r.representation}, 1 thread (unit for these rows)`, params: r.params, ms: r.single, ratio: 1 });
    rows.push({ workload, what: `FIM ${r.representation}, ${r.threads} threads, cold pool`, params: r.params, ms: r.cold, ratio: r.cold / r.single });
    rows.push({ workload, what: `FIM ${r.representation}, ${r.threads} threads, warm pool`, params: r.params, ms: r.warm, ratio: r.warm / r.single });
  }
}

// CNN: d = 54,890, of which 54,090 in the dense layer: no d²-sized representation fits, even on the last layer.
await benchWorkload(cnn!, planFor(cnn!, { lastLayerDense: false, jacobianWholeModel: false, wideFactors: true }), timing, rows);
disposeWorkload(cnn!);

// Residual CNN: d = 7,594, the last layer 330: Dense / BlockDiag / LowRank on it, the Jacobian on the whole model.
await benchWorkload(resnet!, planFor(resnet!, { lastLayerDense: true, jacobianWholeModel: true, wideFactors: false }), timing, rows);
disposeWorkload(resnet!);

// Spectral tools (bench/spectral.ts): eigsh top-10, Hutch++ to 1%, SLQ 10×80 on the MLP's implicit Fisher.
{
  const { benchSpectral } = await import('./spectral.js');
  rows.push(...(await benchSpectral(QUICK)));
}

console.log(
  `\nFIM benchmark — batch 128, classif_logits, backend ${tf.getBackend()}; × unit = time ÷ one plain forward+backward pass over the same data; ` +
    `peak = tfjs tensor bytes above those before the call (untimed run, 2 batches unless the formula grows with n); est. = the formula (docs/performance.md)`,
);
console.log(formatRows(rows));

console.log('\nfloat64 linear algebra (median of 3)');
const la = await benchLinalg(QUICK ? [256, 512] : [256, 512, 1024, 2048]);
console.log('n'.padStart(6) + 'impl'.padStart(14) + 'eigh ms'.padStart(10) + 'chol ms'.padStart(10) + 'solve ms'.padStart(10) + 'eig res'.padStart(10) + 'chol res'.padStart(10) + 'solve res'.padStart(10));
for (const r of la) {
  console.log(
    String(r.n).padStart(6) + r.impl.padStart(14) + r.eighMs.toFixed(0).padStart(10) + r.choleskyMs.toFixed(0).padStart(10) + r.solveMs.toFixed(0).padStart(10) +
      r.eigResidual.toExponential(1).padStart(10) + r.cholResidual.toExponential(1).padStart(10) + r.solveResidual.toExponential(1).padStart(10),
  );
}

// Scale rows (bench/scale.ts), opt-in: `npm run bench -- --scale` (d ≈ 10^7), `-- --scale --huge` (also d ≈ 10^8).
if (process.argv.includes('--scale')) {
  const { benchScale } = await import('./scale.js');
  const configs = [{ width: 2048, hidden: 3, examples: QUICK ? 256 : 1024 }];
  if (process.argv.includes('--huge')) configs.push({ width: 4096, hidden: 7, examples: 256 });
  for (const r of await benchScale(configs)) rows.push({ workload: r.workload, what: `${r.what} (peak RSS ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB)`, params: r.params, ms: r.ms, ratio: r.ratio, examples: r.examples });
  console.log('\nscale rows\n' + formatRows(rows.filter((r) => r.workload.startsWith('MLP 784-2048') || r.workload.startsWith('MLP 784-4096'))));
}

// The PyTorch reference (bench/pytorch_reference.py), run last so that it does not share the CPUs with our rows.
const pytorch = process.env.BENCH_PYTORCH === '0' ? { ok: false as const, reason: 'BENCH_PYTORCH=0' } : runPytorchReference({ quick: QUICK });
if (pytorch.ok) console.log('\nside by side with PyTorch (÷ PyTorch = our time ÷ its plain forward+backward over the same workload)\n' + formatPytorchTable(rows, pytorch.reference));
else console.log(`\nPyTorch reference skipped: ${pytorch.reason}`);

const totalSeconds = (performance.now() - started) / 1000;
mkdirSync('bench/out', { recursive: true });
writeFileSync(
  'bench/out/results.json',
  JSON.stringify(
    {
      schema: 2,
      date: new Date().toISOString(),
      backend: tf.getBackend(),
      quick: QUICK,
      timing,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', loadAtStart, loadAtEnd: loadavg() },
      totalSeconds,
      workloads: workloadInfo,
      rows,
      linalg: la,
      pytorch: pytorch.ok ? { ...pytorch.reference, ratios: pytorchRatios(rows, pytorch.reference).map((r) => ({ workload: r.workload, what: r.what, ms: r.ms, pytorchMs: r.pytorchMs, pytorchRatio: r.pytorchRatio })) } : { skipped: pytorch.reason },
    },
    null,
    2,
  ),
);
console.log(`\nTotal ${totalSeconds.toFixed(0)} s (load average ${loadAtStart.map((x) => x.toFixed(1)).join(' ')} at the start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end). JSON written to bench/out/results.json`);
