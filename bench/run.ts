/**
 * `npm run bench`: costs measured side by side in one run, as ratios to one plain tfjs
 * forward+backward pass over the same data (the "unit"), so that they hold on a noisy machine.
 *
 * Workload (issue 2): MLP 784-256-256-10 (relu), 1,024 examples in batches of 128, variant
 * classif_logits. Representations whose storage is d² or O·n·d (Dense, BlockDiag, LowRank) do
 * not fit for d = 269,322 and are measured on the last layer (d = 2,570) through a restricted
 * layer collection; Diag and Implicit on the whole model. Then the float64 linear algebra.
 *
 * Output: a table on stdout and JSON in bench/out/results.json.
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
  PMatImplicit,
  PMatLowRank,
  PVector,
  type PMatBase,
  type Representation,
} from '../src/index.js';
import { benchLinalg } from './linalg.js';

const REPS = Number(process.env.BENCH_REPS ?? 3);

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

const model = tf.sequential();
model.add(tf.layers.dense({ units: 256, inputShape: [784], activation: 'relu' }));
model.add(tf.layers.dense({ units: 256, activation: 'relu' }));
model.add(tf.layers.dense({ units: 10 }));
const n = 1024;
const batchSize = 128;
const loader = Array.from({ length: n / batchSize }, (_, k) => ({
  xs: tf.randomNormal([batchSize, 784], 0, 1, 'float32', k),
  ys: tf.randomUniform([batchSize], 0, 10, 'int32', 100 + k),
}));

// The unit: one plain forward+backward pass over the same data.
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
const plainPass = () => {
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
// Install the library's kernel fixes before timing the unit, so both sides use the same kernels.
const warm = await FIM({ model, loader: loader.slice(0, 1), representation: PMatDiag });
warm.dispose();
plainPass();
const unit = await time(plainPass);

const full = LayerCollection.fromModel(model);
const lastLayer = LayerCollection.fromLayers(model, [full.ids()[2]!]);
interface Row {
  what: string;
  params: number;
  ms: number;
  ratio: number;
}
const rows: Row[] = [{ what: 'plain forward+backward (unit)', params: full.numel(), ms: unit, ratio: 1 }];
const record = (what: string, params: number, ms: number) => {
  rows.push({ what, params, ms, ratio: ms / unit });
  console.error(`  ${what}: ${ms.toFixed(0)} ms`);
};

const cases: Array<[Representation<PMatBase>, LayerCollection, string]> = [
  [PMatDiag, full, 'whole model'],
  [PMatDense, lastLayer, 'last layer'],
  [PMatBlockDiag, lastLayer, 'last layer'],
  [PMatLowRank, lastLayer, 'last layer'],
];
for (const [rep, lc, scope] of cases) {
  let F: PMatBase | undefined;
  const ms = await time(async () => {
    F?.dispose();
    F = await FIM({ model, loader, representation: rep, layerCollection: lc });
  }, rep === PMatDiag ? REPS : 1);
  record(`FIM ${rep.representationName} (${scope})`, lc.numel(), ms);
  const M = F as PMatBase & { trace(): number; mv(v: PVector): PVector; solve(v: PVector, o: { regul: number }): PVector };
  const v = PVector.random(lc, 1);
  record(`  ${rep.representationName}.mv`, lc.numel(), await time(() => M.mv(v).dispose()));
  record(`  ${rep.representationName}.solve (regul 1e-3)`, lc.numel(), await time(() => M.solve(v, { regul: 1e-3 }).dispose()));
  v.dispose();
  M.dispose();
}
const implicit = await FIM({ model, loader, representation: PMatImplicit });
const v = PVector.random(full, 2);
record('PMatImplicit.trace (whole model)', full.numel(), await time(() => implicit.trace(), 1));
record('PMatImplicit.mv (whole model)', full.numel(), await time(async () => (await implicit.mv(v)).dispose(), 1));
v.dispose();

console.log(`\nFIM benchmark — MLP 784-256-256-10, n = ${n}, batch ${batchSize}, classif_logits, backend ${tf.getBackend()}`);
console.log(`unit = one plain tfjs forward+backward pass over the same data = ${unit.toFixed(0)} ms (median of ${REPS})\n`);
console.log('what'.padEnd(44) + 'params'.padStart(9) + 'ms'.padStart(10) + '× unit'.padStart(10));
for (const r of rows) console.log(r.what.padEnd(44) + String(r.params).padStart(9) + r.ms.toFixed(0).padStart(10) + r.ratio.toFixed(2).padStart(10));

console.log('\nfloat64 linear algebra (median of 3)');
const la = await benchLinalg();
console.log('n'.padStart(6) + 'impl'.padStart(14) + 'eigh ms'.padStart(10) + 'chol ms'.padStart(10) + 'solve ms'.padStart(10) + 'eig res'.padStart(10) + 'chol res'.padStart(10) + 'solve res'.padStart(10));
for (const r of la) {
  console.log(
    String(r.n).padStart(6) + r.impl.padStart(14) + r.eighMs.toFixed(0).padStart(10) + r.choleskyMs.toFixed(0).padStart(10) + r.solveMs.toFixed(0).padStart(10) +
      r.eigResidual.toExponential(1).padStart(10) + r.cholResidual.toExponential(1).padStart(10) + r.solveResidual.toExponential(1).padStart(10),
  );
}

mkdirSync('bench/out', { recursive: true });
writeFileSync('bench/out/results.json', JSON.stringify({ date: new Date().toISOString(), backend: tf.getBackend(), unitMs: unit, fim: rows, linalg: la }, null, 2));
console.log('\nJSON written to bench/out/results.json');
implicit.dispose();
