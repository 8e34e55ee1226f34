/**
 * `npm run bench` (issue 6): costs measured side by side in one run, as multiples of one plain
 * tfjs forward+backward pass over the same data (the "unit"), so that they hold on a noisy
 * machine, each with its peak tfjs memory beside its formula's estimate.
 *
 * Workloads (bench/workloads.ts), batches of 128, variant classif_logits:
 * - MLP 784-512-512-10 (relu), 2,048 examples;
 * - CNN 28x28x1 → conv3x3x16 same → conv3x3x32 stride 2 → dense 10, 1,024 examples;
 * - residual CNN with BatchNormalization on 32x32x3, 512 examples;
 * - CNN 32x32x3 (conv3x3x16 same, 32 s2 valid, 64 s2 valid, relu, global average pooling, dense
 *   10), 1,024 examples, whose rows are also set against the NNGeometry / PyTorch times at which
 *   the convolution work was filed (ISSUE_ANCHORS) and timed with two worker threads;
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
 * Python with torch is found and adds a "÷ PyTorch" table. BENCH_ONLY=name[,name]: only the
 * workloads whose names start with one of these (e.g. BENCH_ONLY='CNN 32x32x3'), without the
 * worker-thread, spectral and linear-algebra sections. BENCH_WORKERS=0 skips the CNN 32x32x3's
 * two-thread rows. When the CNN 32x32x3 ran and torch is found, NNGeometry's KFAC, Diag and
 * EKFAC update_diag passes on it are reproduced and timed in PyTorch in the same run
 * (bench/pytorch_reference.py --nngeometry-cnn32) for a "÷ NNGeometry now" column beside
 * "÷ anchor"; BENCH_NNGEOMETRY=0 skips them (BENCH_PYTORCH=0 skips them too).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  FIM,
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
  simdKernelsInfo,
  type PMatBase,
  type Representation,
} from '../src/index.js';
import { benchLinalg } from './linalg.js';
import { formatPytorchTable, pytorchRatios, runNngeometryCnnReference, runPytorchReference, type NngeometryCnnReference } from './pytorch.js';
import { benchWorkload, formatRows, type BenchRow, type FimCase, type Plan } from './fim-bench.js';
import { median } from './measure.js';
import { workerPoolInfo } from '../src/parallel/pool.js';
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
 * The CNN 32x32x3's times when the convolution work was filed (PyTorch 1.13 with OpenBLAS and
 * NNGeometry on it, 2 threads, this 2-core machine idle), and the targets set then: our time ÷
 * the anchor at most `target`. `measured`: the same operation in the NNGeometry reproduction
 * run beside ours (bench/pytorch_reference.py --nngeometry-cnn32), for the "÷ NNGeometry now" column.
 */
const ISSUE_ANCHORS = {
  workload: 'CNN 32x32x3',
  examples: 1024,
  rows: [
    { what: 'plain forward+backward (unit)', anchor: 'PyTorch plain step', anchorMs: 149, target: 1.0, measured: 'plainMs' },
    { what: 'FIM PMatKFAC (whole model)', anchor: 'NNGeometry KFAC', anchorMs: 2160, target: 1.0, measured: 'kfacMs' },
    { what: 'FIM PMatDiag (whole model)', anchor: 'NNGeometry Diag', anchorMs: 4090, target: 1.0, measured: 'diagMs' },
    { what: '  PMatEKFAC.updateDiag', anchor: 'NNGeometry EKFAC.updateDiag', anchorMs: 11400, target: 0.4, measured: 'updateDiagMs' },
    { what: 'FIM PMatKFAC (whole model), workers: 2, warm pool', anchor: 'NNGeometry KFAC', anchorMs: 2160, target: 1.0, measured: 'kfacMs' },
    { what: 'FIM PMatDiag (whole model), workers: 2, warm pool', anchor: 'NNGeometry Diag', anchorMs: 4090, target: 1.0, measured: 'diagMs' },
  ],
} as const;

/**
 * Our anchored rows ÷ their anchors, ÷ PyTorch's plain step measured in this run (`torchStepMs`),
 * and ÷ the same operation of the NNGeometry reproduction measured in this run (`nngeometry`).
 */
function anchorRows(all: BenchRow[], torchStepMs: number | undefined, nngeometry: NngeometryCnnReference | undefined) {
  return ISSUE_ANCHORS.rows.flatMap((a) => {
    const r = all.find((row) => row.workload === ISSUE_ANCHORS.workload && row.what === a.what && row.examples === ISSUE_ANCHORS.examples);
    const nngeometryMs = nngeometry?.[a.measured];
    return r
      ? [{
          ...a, ms: r.ms, ratio: r.ms / a.anchorMs,
          ...(torchStepMs ? { torchStepMs, torchStepRatio: r.ms / torchStepMs } : {}),
          ...(nngeometryMs ? { nngeometryMs, nngeometryRatio: r.ms / nngeometryMs } : {}),
        }]
      : [];
  });
}

/**
 * The plan of a workload: whole-model representations, and the last layer for the d²-sized ones.
 * `wideFactors`: a Kronecker factor thousands wide (the CNN's dense layer, 5,409), whose float64
 * eigendecomposition takes minutes; BENCH_QUICK=1 then skips EKFAC and KFAC.solve.
 */
function planFor(w: Workload, options: { lastLayerDense: boolean; jacobianWholeModel: boolean; wideFactors: boolean; compact?: boolean }): Plan {
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
    ...(options.compact ? [] : [whole(PMatQuasiDiag, 'quasiDiag', 'vector', { fallback: { representation: QuasiDiagBlockDiag, ...mixed } })]),
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
    implicit: !options.compact,
    jacobian: options.jacobianWholeModel ? { layerCollection: full, scope: 'whole model' } : { layerCollection: last, scope: 'last layer' },
    ntk: options.compact ? { layerCollection: last, scope: 'last layer' } : { layerCollection: full, scope: 'whole model' },
    functionSpaceExamples: QUICK ? 128 : 256,
  };
}

const all = workloads(QUICK);
const [mlp, cnn, resnet, cnn32] = all;
const describeWorkload = (w: Workload) => ({ name: w.name, description: w.description, examples: w.examples, batch: w.batch, params: LayerCollection.fromModel(w.model).numel() });
const workloadInfo = all.map(describeWorkload);
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').map((x) => x.trim()).filter((x) => x.length > 0);
const wanted = (w: Workload) => ONLY.length === 0 || ONLY.some((prefix) => w.name.startsWith(prefix));
const everything = ONLY.length === 0;
/** Which rows ran on worker threads: FIM's default `workers: 'auto'` splits passes of ≥ 1,024 examples when the pool is warm. */
const poolNote = (w: Workload) => {
  const pool = workerPoolInfo();
  console.error(`  ${w.name}: worker pool before the workload: ${pool.size} thread(s), ${pool.idle} idle (FIM's workers: 'auto' splits passes of ≥ 1,024 examples over a warm pool, ≥ 8,192 over a cold one)`);
  return pool;
};

// MLP: d = 669,706; Dense / BlockDiag / LowRank and the Jacobian on the last layer (d = 5,130).
if (wanted(mlp!)) {
  poolNote(mlp!);
  await benchWorkload(mlp!, planFor(mlp!, { lastLayerDense: true, jacobianWholeModel: false, wideFactors: false }), timing, rows);
}
disposeWorkload(mlp!);

// Worker threads (bench/workers.ts, `npm run bench:workers` for the full table): FIM on 1 thread and
// on 2 (this one and a pooled worker), the pool cold (first call) and warm (later calls).
if (everything) {
  const { benchWorkers } = await import('./workers.js');
  for (const r of await benchWorkers({ sizes: [QUICK ? 1024 : 4096], reps: 1 })) {
    const workload = `MLP 784-512-512-10, ${r.examples} examples, worker threads`;
    rows.push({ workload, what: `FIM ${r.representation}, 1 thread (unit for these rows)`, params: r.params, ms: r.single, ratio: 1 });
    rows.push({ workload, what: `FIM ${r.representation}, ${r.threads} threads, cold pool`, params: r.params, ms: r.cold, ratio: r.cold / r.single });
    rows.push({ workload, what: `FIM ${r.representation}, ${r.threads} threads, warm pool`, params: r.params, ms: r.warm, ratio: r.warm / r.single });
  }
}

// CNN: d = 54,890, of which 54,090 in the dense layer: no d²-sized representation fits, even on the last layer.
if (wanted(cnn!)) {
  poolNote(cnn!);
  await benchWorkload(cnn!, planFor(cnn!, { lastLayerDense: false, jacobianWholeModel: false, wideFactors: true }), timing, rows);
}
disposeWorkload(cnn!);

// Residual CNN: d = 7,594, the last layer 330: Dense / BlockDiag / LowRank on it, the Jacobian on the whole model.
if (wanted(resnet!)) {
  poolNote(resnet!);
  await benchWorkload(resnet!, planFor(resnet!, { lastLayerDense: true, jacobianWholeModel: true, wideFactors: false }), timing, rows);
}
disposeWorkload(resnet!);

// CNN 32x32x3 (d = 24,234): the rows the issue's NNGeometry times anchor (KFAC, Diag, EKFAC.updateDiag)
// and the plain step against PyTorch's; Dense / BlockDiag / LowRank on its last layer (d = 650).
if (wanted(cnn32!)) {
  const pool = poolNote(cnn32!);
  await benchWorkload(cnn32!, planFor(cnn32!, { lastLayerDense: true, jacobianWholeModel: false, wideFactors: false, compact: true }), timing, rows);
  const unitMs = rows.find((r) => r.workload === cnn32!.name && r.kind === 'unit')!.ms;
  if (pool.idle > 0) console.error(`  ${cnn32!.name}: the FIM rows above ran on ${pool.idle + 1} threads (warm pool, workers: 'auto')`);
  // The same passes on two threads (this one and a pooled worker), the pool warmed by a first call.
  for (const representation of process.env.BENCH_WORKERS === '0' ? [] : [PMatDiag, PMatKFAC]) {
    const run = async () => (await FIM({ model: cnn32!.model, loader: cnn32!.loader, representation, workers: 2 })).dispose();
    await run();
    const samples: number[] = [];
    for (let r = 0; r < Math.max(timing.reps, 1); r++) {
      const t0 = performance.now();
      await run();
      samples.push(performance.now() - t0);
    }
    const ms = median(samples);
    const what = `FIM ${representation.representationName} (whole model), workers: 2, warm pool`;
    rows.push({ workload: cnn32!.name, what, kind: 'fim', params: LayerCollection.fromModel(cnn32!.model).numel(), examples: cnn32!.examples, ms, reps: samples.length, samples, unitMs, ratio: ms / unitMs });
    console.error(`  ${cnn32!.name}: ${what}: ${ms.toFixed(0)} ms (${(ms / unitMs).toFixed(2)} × unit)`);
  }
}
disposeWorkload(cnn32!);

// Spectral tools (bench/spectral.ts): eigsh top-10, Hutch++ to 1%, SLQ 10×80 on the MLP's implicit Fisher.
if (everything) {
  const { benchSpectral } = await import('./spectral.js');
  rows.push(...(await benchSpectral(QUICK)));
}

console.log(
  `\nFIM benchmark — batch 128, classif_logits, backend ${tf.getBackend()}; × unit = time ÷ one plain forward+backward pass over the same data; ` +
    `peak = tfjs tensor bytes above those before the call (untimed run, 2 batches unless the formula grows with n); est. = the formula (docs/performance.md); ` +
    `SIMD kernels on ${simdKernelsInfo().threads} thread(s) (setSimdThreads; the "SIMD kernels on 1 thread" rows are the plain step without the helpers)`,
);
console.log(formatRows(rows));

if (everything) console.log('\nfloat64 linear algebra (median of 3)');
const la = everything ? await benchLinalg(QUICK ? [256, 512] : [256, 512, 1024, 2048]) : [];
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
const pytorch = process.env.BENCH_PYTORCH === '0' ? { ok: false as const, reason: 'BENCH_PYTORCH=0' } : runPytorchReference({ quick: QUICK, ...(everything ? {} : { eigh: [] }) });
if (pytorch.ok) console.log('\nside by side with PyTorch (÷ PyTorch = our time ÷ its plain forward+backward over the same workload)\n' + formatPytorchTable(rows, pytorch.reference));
else console.log(`\nPyTorch reference skipped: ${pytorch.reason}`);

// NNGeometry's CNN 32x32x3 passes reproduced in PyTorch (bench/nngeometry_classif_logits.py), run
// after our rows and the plain-step reference: the "÷ NNGeometry now" column. BENCH_NNGEOMETRY=0 skips it.
const ranCnn32 = rows.some((r) => r.workload === ISSUE_ANCHORS.workload && r.examples === ISSUE_ANCHORS.examples);
const nngeometry = !ranCnn32
  ? { ok: false as const, reason: `the ${ISSUE_ANCHORS.workload} rows did not run on ${ISSUE_ANCHORS.examples} examples` }
  : process.env.BENCH_PYTORCH === '0' || process.env.BENCH_NNGEOMETRY === '0'
    ? { ok: false as const, reason: process.env.BENCH_PYTORCH === '0' ? 'BENCH_PYTORCH=0' : 'BENCH_NNGEOMETRY=0' }
    : runNngeometryCnnReference(Math.max(timing.reps, 1));
if (nngeometry.ok) {
  const n = nngeometry.reference;
  console.log(
    `\nNNGeometry 0.3 reproduced in PyTorch ${n.torch} (${n.threads} threads, BLAS ${n.blas.find((b) => /blas/i.test(b)) ?? 'unknown'}), ${n.workload}, ${n.examples} examples, median of ${Math.max(timing.reps, 1)}: ` +
      `plain step ${n.plainMs.toFixed(0)} ms, FIM PMatKFAC ${n.kfacMs.toFixed(0)} ms (${n.overPlain.kfac.toFixed(1)} × its plain step), FIM PMatDiag ${n.diagMs.toFixed(0)} ms (${n.overPlain.diag.toFixed(1)}), ` +
      `PMatEKFAC.update_diag ${n.updateDiagMs.toFixed(0)} ms (${n.overPlain.updateDiag.toFixed(1)}); at filing 14.5, 27 and 77`,
  );
} else if (ranCnn32) console.log(`\nNNGeometry reference skipped: ${nngeometry.reason}`);

const anchors = anchorRows(
  rows,
  pytorch.ok ? pytorch.reference.rows.find((r) => r.workload === ISSUE_ANCHORS.workload && r.examples === ISSUE_ANCHORS.examples)?.ms : undefined,
  nngeometry.ok ? nngeometry.reference : undefined,
);
if (anchors.length > 0) {
  console.log(`\n${ISSUE_ANCHORS.workload}, ${ISSUE_ANCHORS.examples} examples, against the times at which the convolution work was filed (PyTorch 1.13 + NNGeometry, 2 threads, idle machine), against PyTorch's plain step measured in this run, and against the same operation of NNGeometry (reproduced in PyTorch) measured in this run`);
  console.log('ours'.padEnd(58) + 'ms'.padStart(9) + 'anchor'.padEnd(32).padStart(34) + 'ms'.padStart(8) + '÷ anchor'.padStart(10) + 'target'.padStart(8) + '÷ torch step now'.padStart(18) + 'NNGeometry now ms'.padStart(19) + '÷ NNGeometry now'.padStart(18));
  for (const a of anchors) {
    console.log(a.what.padEnd(58) + a.ms.toFixed(0).padStart(9) + '  ' + a.anchor.padEnd(32) + a.anchorMs.toFixed(0).padStart(8) + a.ratio.toFixed(2).padStart(10) +
      a.target.toFixed(1).padStart(8) + (a.torchStepRatio === undefined ? '' : a.torchStepRatio.toFixed(2)).padStart(18) +
      (a.nngeometryMs === undefined ? '' : a.nngeometryMs.toFixed(0)).padStart(19) + (a.nngeometryRatio === undefined ? '' : a.nngeometryRatio.toFixed(2)).padStart(18));
  }
}

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
      simdThreads: simdKernelsInfo().threads,
      totalSeconds,
      workloads: workloadInfo,
      rows,
      linalg: la,
      anchors,
      nngeometry: nngeometry.ok ? nngeometry.reference : { skipped: nngeometry.reason },
      pytorch: pytorch.ok ? { ...pytorch.reference, ratios: pytorchRatios(rows, pytorch.reference).map((r) => ({ workload: r.workload, what: r.what, ms: r.ms, pytorchMs: r.pytorchMs, pytorchRatio: r.pytorchRatio })) } : { skipped: pytorch.reason },
    },
    null,
    2,
  ),
);
console.log(`\nTotal ${totalSeconds.toFixed(0)} s (load average ${loadAtStart.map((x) => x.toFixed(1)).join(' ')} at the start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end). JSON written to bench/out/results.json`);

