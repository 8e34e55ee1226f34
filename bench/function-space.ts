/**
 * Function-space and second-order benchmark (issue 5), as ratios to one plain tfjs
 * forward+backward pass over the same data (the "unit": tf.variableGrads of the summed
 * cross-entropy of each batch, measured in the same run), so that the ratios hold on a noisy
 * machine.
 *
 * Workload: MLP 784-256-256-10 (relu), 256 examples in batches of 128.
 * - Jacobian, PFMapDense: O·n·d = 690 M floats for the whole model does not fit, so it is
 *   measured on the last layer (d = 2,570) through a restricted layer collection; PFMapImplicit
 *   jvp / vjp on the whole model.
 * - GramMatrix (empirical NTK, [10, 256, 10, 256]) on the whole model, from per-layer kernels.
 * - FIMMonteCarlo with 1 trial, PMatDiag and PMatKFAC on the whole model (1 backward pass per
 *   batch instead of O = 10 for FIM).
 * - One Hessian-vector product of the mean cross-entropy on the whole model (PMatHessianImplicit.mv).
 *
 * `npx tsx bench/function-space.ts` prints a table; `npm run bench` can call `benchFunctionSpace`
 * (the caller selects the tfjs backend).
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  FIMMonteCarlo,
  FVector,
  GramMatrix,
  Hessian,
  Jacobian,
  LayerCollection,
  PFMapImplicit,
  PMatDiag,
  PMatImplicit,
  PMatKFAC,
  PVector,
  type PMatBase,
  type Representation,
} from '../src/index.js';

/** One measurement: median milliseconds and the ratio to the unit of the same workload. */
export interface FunctionSpaceBenchRow {
  what: string;
  /** Number of parameters in the layer collection measured. */
  params: number;
  ms: number;
  /** ms / unit (one plain forward+backward pass over the same 256 examples). */
  ratio: number;
}

const N = 256;
const BATCH = 128;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(f: () => Promise<unknown> | unknown, reps: number): Promise<number> {
  const out: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return median(out);
}

/**
 * Runs the benchmark on the current tfjs backend and returns its rows, the unit first.
 * `reps` repetitions (median) for the cheap measurements, one for the expensive ones.
 */
export async function benchFunctionSpace(reps = Number(process.env.BENCH_REPS ?? 3)): Promise<FunctionSpaceBenchRow[]> {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 256, inputShape: [784], activation: 'relu' }));
  model.add(tf.layers.dense({ units: 256, activation: 'relu' }));
  model.add(tf.layers.dense({ units: 10 }));
  const loader = Array.from({ length: N / BATCH }, (_, k) => ({
    xs: tf.randomNormal([BATCH, 784], 0, 1, 'float32', k + 1), // tfjs treats seed 0 as "no seed"
    ys: tf.randomUniform([BATCH], 0, 10, 'int32', 100 + k),
  }));
  const full = LayerCollection.fromModel(model);
  const lastLayer = LayerCollection.fromLayers(model, [full.ids()[2]!]);
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
  // Warm-up: installs the library's kernel fixes, so that the unit uses the same kernels.
  (await FIMMonteCarlo({ model, loader: loader.slice(0, 1), representation: PMatDiag, seed: 0 })).dispose();
  plainPass();
  const unit = await time(plainPass, reps);
  const rows: FunctionSpaceBenchRow[] = [{ what: 'plain forward+backward (unit)', params: full.numel(), ms: unit, ratio: 1 }];
  const record = (what: string, params: number, ms: number) => {
    rows.push({ what, params, ms, ratio: ms / unit });
    console.error(`  ${what}: ${ms.toFixed(0)} ms`);
  };
  try {
    record('Jacobian PFMapDense (last layer)', lastLayer.numel(), await time(async () => (await Jacobian({ model, loader, layerCollection: lastLayer })).dispose(), reps));
    const implicit = await Jacobian({ model, loader, representation: PFMapImplicit });
    const v = PVector.random(full, 1);
    const f = FVector.random(10, N, 2);
    record('PFMapImplicit.jvp (whole model)', full.numel(), await time(async () => (await implicit.jvp(v)).dispose(), reps));
    record('PFMapImplicit.vjp (whole model)', full.numel(), await time(async () => (await implicit.vjp(f)).dispose(), reps));
    f.dispose();
    record('GramMatrix FMatDense [10,256,10,256] (whole model)', full.numel(), await time(async () => (await GramMatrix({ model, loader })).dispose(), 1));
    for (const rep of [PMatDiag, PMatKFAC] as Array<Representation<PMatBase>>) {
      const ms = await time(async () => (await FIMMonteCarlo({ model, loader, representation: rep, trials: 1, seed: 3 })).dispose(), reps);
      record(`FIMMonteCarlo 1 trial ${rep.representationName} (whole model)`, full.numel(), ms);
    }
    const H = await Hessian({ model, loader, loss: 'cross_entropy', representation: PMatImplicit });
    record('Hessian-vector product (whole model)', full.numel(), await time(async () => (await H.mv(v)).dispose(), reps));
    v.dispose();
  } finally {
    model.dispose();
    loader.forEach(({ xs, ys }) => tf.dispose([xs, ys]));
  }
  return rows;
}

/** The rows as a fixed-width table. */
export function formatFunctionSpaceTable(rows: FunctionSpaceBenchRow[]): string {
  const head = 'what'.padEnd(52) + 'params'.padStart(9) + 'ms'.padStart(10) + '× unit'.padStart(10);
  return [head, ...rows.map((r) => r.what.padEnd(52) + String(r.params).padStart(9) + r.ms.toFixed(0).padStart(10) + r.ratio.toFixed(2).padStart(10))].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tf.setBackend(process.env.BENCH_BACKEND ?? 'wasm');
  await tf.ready();
  const rows = await benchFunctionSpace();
  console.log(`\nFunction space — MLP 784-256-256-10, n = ${N}, batch ${BATCH}, backend ${tf.getBackend()}`);
  console.log(`unit = one plain tfjs forward+backward pass over the same data = ${rows[0]!.ms.toFixed(0)} ms\n`);
  console.log(formatFunctionSpaceTable(rows));
}
