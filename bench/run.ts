/**
 * `npm run bench`: costs measured side by side in one run, as ratios to one plain tfjs
 * forward+backward pass over the same data (the "unit"), so that they hold on a noisy machine.
 *
 * Workloads:
 * - MLP 784-256-256-10 (relu), 1,024 examples in batches of 128, variant classif_logits. Dense,
 *   BlockDiag and LowRank need d², Σd_l², O·n·d floats, which do not fit for d = 269,322: they
 *   are measured on the last layer (d = 2,570) through a restricted layer collection.
 * - CNN 28x28x1 → conv3x3x16 same → conv3x3x32 stride 2 → dense 10, 1,024 examples.
 * - float64 linear algebra at n = 256, 512, 1024, 2048.
 *
 * Output: a table on stdout and JSON in bench/out/results.json. BENCH_REPS sets the repetitions
 * of the cheap measurements (median), BENCH_QUICK=1 runs a smaller workload.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  FIM,
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PMatQuasiDiag,
  PVector,
  type PMatBase,
  type Representation,
} from '../src/index.js';
import { benchLinalg } from './linalg.js';
import { benchFunctionSpace, formatFunctionSpaceTable } from './function-space.js';

const REPS = Number(process.env.BENCH_REPS ?? 3);
const QUICK = process.env.BENCH_QUICK === '1';
const N = QUICK ? 256 : 1024;
const BATCH = 128;

await tf.setBackend(process.env.BENCH_BACKEND ?? 'wasm');
await tf.ready();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(f: () => Promise<unknown> | unknown, reps = REPS): Promise<number> {
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return median(out);
}

interface Row {
  workload: string;
  what: string;
  params: number;
  ms: number;
  ratio: number;
}
const rows: Row[] = [];

/** Seeded data of the model's input shape with integer labels. */
function dataFor(model: tf.LayersModel): Array<{ xs: tf.Tensor; ys: tf.Tensor }> {
  const shape = model.inputs[0]!.shape.slice(1) as number[];
  return Array.from({ length: N / BATCH }, (_, k) => ({
    xs: tf.randomNormal([BATCH, ...shape], 0, 1, 'float32', k + 1), // tfjs treats seed 0 as "no seed"
    ys: tf.randomUniform([BATCH], 0, 10, 'int32', 100 + k),
  }));
}

/** One plain forward+backward pass over the data (the unit), measured after a warm-up. */
async function unitOf(model: tf.LayersModel, loader: Array<{ xs: tf.Tensor; ys: tf.Tensor }>): Promise<number> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const pass = () => {
    for (const { xs, ys } of loader) {
      const { value, grads } = tf.variableGrads(
        () => tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(ys, 10), model.apply(xs) as tf.Tensor) as tf.Scalar),
        vars,
      );
      value.dataSync();
      value.dispose();
      tf.dispose(Object.values(grads));
    }
  };
  // The library installs its kernel fixes on first use: do that before timing the unit.
  (await FIM({ model, loader: loader.slice(0, 1), representation: PMatDiag })).dispose();
  pass();
  return time(pass);
}

async function workload(
  name: string,
  model: tf.LayersModel,
  cases: Array<[Representation<PMatBase>, LayerCollection, string]>,
  withImplicit: boolean,
): Promise<void> {
  const loader = dataFor(model);
  const unit = await unitOf(model, loader);
  const full = LayerCollection.fromModel(model);
  const record = (what: string, params: number, ms: number) => {
    rows.push({ workload: name, what, params, ms, ratio: ms / unit });
    console.error(`  ${name}: ${what}: ${ms.toFixed(0)} ms`);
  };
  record('plain forward+backward (unit)', full.numel(), unit);
  for (const [rep, lc, scope] of cases) {
    let F: PMatBase | undefined;
    const ms = await time(async () => {
      F?.dispose();
      F = await FIM({ model, loader, representation: rep, layerCollection: lc });
    }, rep === PMatDiag ? REPS : 1);
    record(`FIM ${rep.representationName} (${scope})`, lc.numel(), ms);
    const M = F as PMatBase & {
      mv(v: PVector): PVector;
      solve(v: PVector, o: { regul: number }): PVector;
      updateDiag?: (l: unknown) => Promise<unknown>;
    };
    const v = PVector.random(lc, 1);
    record(`  ${rep.representationName}.mv`, lc.numel(), await time(() => M.mv(v).dispose()));
    record(`  ${rep.representationName}.solve (regul 1e-3)`, lc.numel(), await time(() => M.solve(v, { regul: 1e-3 }).dispose()));
    if (M.updateDiag) record(`  ${rep.representationName}.updateDiag`, lc.numel(), await time(() => M.updateDiag!(loader), 1));
    v.dispose();
    M.dispose();
  }
  if (withImplicit) {
    const implicit = await FIM({ model, loader, representation: PMatImplicit });
    const v = PVector.random(full, 2);
    record('PMatImplicit.trace (whole model)', full.numel(), await time(() => implicit.trace(), 1));
    record('PMatImplicit.mv (whole model)', full.numel(), await time(async () => (await implicit.mv(v)).dispose(), 1));
    v.dispose();
  }
  loader.forEach((b) => tf.dispose([b.xs, b.ys]));
}

const mlp = tf.sequential();
mlp.add(tf.layers.dense({ units: 256, inputShape: [784], activation: 'relu' }));
mlp.add(tf.layers.dense({ units: 256, activation: 'relu' }));
mlp.add(tf.layers.dense({ units: 10 }));
const mlpFull = LayerCollection.fromModel(mlp);
const mlpLast = LayerCollection.fromLayers(mlp, [mlpFull.ids()[2]!]);
await workload(
  'MLP 784-256-256-10',
  mlp,
  [
    [PMatDiag, mlpFull, 'whole model'],
    [PMatKFAC, mlpFull, 'whole model'],
    [PMatEKFAC, mlpFull, 'whole model'],
    [PMatQuasiDiag, mlpFull, 'whole model'],
    [PMatDense, mlpLast, 'last layer'],
    [PMatBlockDiag, mlpLast, 'last layer'],
    [PMatLowRank, mlpLast, 'last layer'],
  ],
  true,
);

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

const cnn = tf.sequential();
cnn.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [28, 28, 1] }));
cnn.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, activation: 'relu' }));
cnn.add(tf.layers.flatten());
cnn.add(tf.layers.dense({ units: 10 }));
const cnnFull = LayerCollection.fromModel(cnn);
await workload(
  'CNN 28x28x1-c16-c32s2-10',
  cnn,
  [
    [PMatDiag, cnnFull, 'whole model'],
    [PMatKFAC, cnnFull, 'whole model'],
    [PMatEKFAC, cnnFull, 'whole model'],
  ],
  false,
);

console.log(`\nFIM benchmark — n = ${N}, batch ${BATCH}, classif_logits, backend ${tf.getBackend()}; ratio = time ÷ one plain forward+backward pass over the same data`);
let last = '';
for (const r of rows) {
  if (r.workload !== last) {
    console.log(`\n${r.workload}\n` + 'what'.padEnd(44) + 'params'.padStart(9) + 'ms'.padStart(10) + '× unit'.padStart(10));
    last = r.workload;
  }
  console.log(r.what.padEnd(44) + String(r.params).padStart(9) + r.ms.toFixed(0).padStart(10) + r.ratio.toFixed(2).padStart(10));
}

console.log('\nFunction space and other metrics — MLP 784-256-256-10, n = 256 (unit: a plain forward+backward pass over those 256)');
const functionSpace = await benchFunctionSpace();
console.log(formatFunctionSpaceTable(functionSpace));

console.log('\nfloat64 linear algebra (median of 3)');
const la = await benchLinalg(QUICK ? [256, 512] : [256, 512, 1024, 2048]);
console.log('n'.padStart(6) + 'impl'.padStart(14) + 'eigh ms'.padStart(10) + 'chol ms'.padStart(10) + 'solve ms'.padStart(10) + 'eig res'.padStart(10) + 'chol res'.padStart(10) + 'solve res'.padStart(10));
for (const r of la) {
  console.log(
    String(r.n).padStart(6) + r.impl.padStart(14) + r.eighMs.toFixed(0).padStart(10) + r.choleskyMs.toFixed(0).padStart(10) + r.solveMs.toFixed(0).padStart(10) +
      r.eigResidual.toExponential(1).padStart(10) + r.cholResidual.toExponential(1).padStart(10) + r.solveResidual.toExponential(1).padStart(10),
  );
}

mkdirSync('bench/out', { recursive: true });
writeFileSync('bench/out/results.json', JSON.stringify({ date: new Date().toISOString(), backend: tf.getBackend(), examples: N, fim: rows, functionSpace, linalg: la }, null, 2));
console.log('\nJSON written to bench/out/results.json');
