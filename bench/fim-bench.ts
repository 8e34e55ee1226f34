/**
 * One workload of `npm run bench`: the unit (a plain tfjs forward+backward pass over the same
 * data), then every planned measurement as a multiple of it, each with its peak tfjs memory
 * (measured in a separate untimed run, bench/measure.ts) beside the estimate of its formula
 * (bench/memory.ts). The schema of the rows is documented in docs/performance.md.
 */
import * as tf from '@tensorflow/tfjs';
import {
  FIM,
  FIMMonteCarlo,
  GramMatrix,
  Jacobian,
  LayerCollection,
  PMatDiag,
  PMatImplicit,
  PVector,
  setSimdThreads,
  simdKernelsInfo,
  UnsupportedLayerError,
  type PMatBase,
  type Representation,
} from '../src/index.js';
import { estimateBytes, sizesOf, FORMULAS, type FormulaKey } from './memory.js';
import { median, peakBytes, time, type TimingOptions } from './measure.js';
import type { BenchBatch, Workload } from './workloads.js';

/** One row of the table and of `rows` in bench/out/results.json. */
export interface BenchRow {
  workload: string;
  what: string;
  /** Parameters of the layer collection measured. */
  params: number;
  /** Median time, ms. */
  ms: number;
  /** ms ÷ unitMs. */
  ratio: number;
  kind?: 'unit' | 'fim' | 'monte-carlo' | 'operation' | 'jacobian' | 'ntk';
  /** Examples the timed runs used. */
  examples?: number;
  /** Timed runs (1 for a long measurement); `samples` holds each. */
  reps?: number;
  samples?: number[];
  /** The unit this row is divided by (plain forward+backward over the same examples). */
  unitMs?: number;
  /** Measured peak tfjs tensor bytes above the bytes before the call (untimed run). */
  peakBytes?: number;
  /** Examples of the profiled run (2 batches where the peak does not grow with n). */
  peakExamples?: number;
  /** The formula and its estimate in bytes for the profiled run's sizes. */
  formula?: string;
  estimateBytes?: number;
}

/** An operation measured on a computed matrix. */
type Operation = 'mv' | 'solve' | 'trace';

/** A planned FIM measurement. */
export interface FimCase {
  kind: 'fim' | 'monte-carlo';
  representation: Representation<PMatBase>;
  /** Used when `representation` refuses a layer (e.g. KFAC on BatchNormalization). */
  fallback?: { representation: Representation<PMatBase>; formula: FormulaKey; operationFormula: FormulaKey };
  layerCollection: LayerCollection;
  scope: string;
  formula: FormulaKey;
  /** Operations on the result and their formula; none for Monte-Carlo rows. */
  operations?: Operation[];
  operationFormula?: FormulaKey;
  /** Formulas of solve and trace where they differ from `operationFormula` / none (LowRank). */
  solveFormula?: FormulaKey;
  traceFormula?: FormulaKey;
  updateDiag?: boolean;
  /**
   * Profile the first timed run instead of a separate one: for EKFAC, whose cost is dominated by
   * float64 eigendecompositions on the host (n³ in the widest factor, 88 s for the CNN's
   * 5,409-wide one), which a separate run would repeat. tf.profile's bookkeeping (one record per
   * kernel) is small beside them.
   */
  profileInTimedRun?: boolean;
  /**
   * Measure on the first `functionSpaceExamples` examples against their own unit (rows whose
   * cost is n·O·d² on the last layer: Dense, BlockDiag, LowRank), to keep the run short; the
   * ratio to the unit of the same data is what the bench reports.
   */
  subset?: boolean;
}

/** Everything planned for one workload. */
export interface Plan {
  fim: FimCase[];
  /** PMatImplicit trace and mv on the whole model. */
  implicit: boolean;
  /** Jacobian (PFMapDense) on this collection, over `functionSpaceExamples`. */
  jacobian: { layerCollection: LayerCollection; scope: string };
  /** GramMatrix (NTK) on this collection. */
  ntk: { layerCollection: LayerCollection; scope: string };
  /** Examples of the Jacobian and NTK rows (the first batches of the data). */
  functionSpaceExamples: number;
}

type Matrix = PMatBase & {
  mv(v: PVector): PVector | Promise<PVector>;
  solve?: (v: PVector, o: { regul: number }) => PVector;
  trace(): number | Promise<number>;
  updateDiag?: (loader: BenchBatch[]) => Promise<unknown>;
};

/** Batches of the first `examples` examples (without copying). */
function firstExamples(loader: BenchBatch[], examples: number): BenchBatch[] {
  const out: BenchBatch[] = [];
  let n = 0;
  for (const b of loader) {
    if (n >= examples) break;
    out.push(b);
    n += b.xs.shape[0]!;
  }
  return out;
}

const count = (loader: BenchBatch[]) => loader.reduce((a, b) => a + b.xs.shape[0]!, 0);

/** Runs the plan of one workload; rows are appended to `rows` as they are measured. */
export async function benchWorkload(w: Workload, plan: Plan, timing: TimingOptions, rows: BenchRow[]): Promise<void> {
  const { model, loader } = w;
  const full = LayerCollection.fromModel(model);
  const profiled = firstExamples(loader, 2 * w.batch);
  const functionSpace = firstExamples(loader, plan.functionSpaceExamples);
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const plainPass = (batches: BenchBatch[]) => () => {
    for (const { xs, ys } of batches) {
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

  const sizes = (lc: LayerCollection, n: number, O = 10) => sizesOf(model, lc, w.batch, n, O);
  const record = (row: Omit<BenchRow, 'workload' | 'ratio'> & { unitMs: number }) => {
    const r: BenchRow = { workload: w.name, ...row, ratio: row.ms / row.unitMs };
    rows.push(r);
    const mem = r.peakBytes === undefined ? '' : `, peak ${mb(r.peakBytes)} MB (estimate ${mb(r.estimateBytes ?? 0)} MB)`;
    console.error(`  ${w.name}: ${r.what}: ${r.ms.toFixed(0)} ms (${r.ratio.toFixed(2)} × unit)${mem}`);
  };
  /** Profiles `f` (untimed) and returns the memory fields of a row. */
  const memory = async (f: () => Promise<unknown> | unknown, key: FormulaKey, lc: LayerCollection, n: number, O = 10) => ({
    peakBytes: await peakBytes(f),
    peakExamples: n,
    formula: FORMULAS[key].text,
    estimateBytes: estimateBytes(key, sizes(lc, n, O)),
  });

  // The units: over all the data and over the Jacobian/NTK examples.
  const unitMemory = await memory(plainPass(profiled), 'unit', full, count(profiled));
  const unit = await time(plainPass(loader), { ...timing, reps: Math.max(timing.reps, 3), longMs: Infinity });
  record({ what: 'plain forward+backward (unit)', kind: 'unit', params: full.numel(), examples: w.examples, ms: unit.ms, reps: unit.samples.length, samples: unit.samples, unitMs: unit.ms, ...unitMemory });
  // The same step with the SIMD kernels on one thread: what the helper threads gain.
  const threads = simdKernelsInfo().threadsRunning;
  if (threads > 1) {
    setSimdThreads(1);
    const single = await time(plainPass(loader), { ...timing, reps: Math.max(timing.reps, 3), longMs: Infinity });
    setSimdThreads(threads);
    await simdThreadsRunning(threads);
    record({ what: 'plain forward+backward, SIMD kernels on 1 thread', kind: 'operation', params: full.numel(), examples: w.examples, ms: single.ms, reps: single.samples.length, samples: single.samples, unitMs: unit.ms });
  }
  plainPass(functionSpace)();
  const unitFs = await time(plainPass(functionSpace), { ...timing, reps: Math.max(timing.reps, 3), longMs: Infinity });
  const nFs = count(functionSpace);
  record({ what: `plain forward+backward, ${nFs} examples (unit of the Jacobian and NTK rows)`, kind: 'unit', params: full.numel(), examples: nFs, ms: unitFs.ms, reps: unitFs.samples.length, samples: unitFs.samples, unitMs: unitFs.ms });

  for (const c of plan.fim) await fimCase(c);

  if (plan.implicit) {
    const v = PVector.random(full, 2);
    const implicit = await FIM({ model, loader, representation: PMatImplicit });
    const small = await FIM({ model, loader: profiled, representation: PMatImplicit });
    const n = count(profiled);
    for (const [op, f, g] of [
      ['trace', () => implicit.trace(), () => small.trace()],
      ['mv', async () => (await implicit.mv(v)).dispose(), async () => (await small.mv(v)).dispose()],
    ] as const) {
      const mem = await memory(g, 'implicit', full, n);
      const t = await time(f, timing);
      record({ what: `PMatImplicit.${op} (whole model)`, kind: 'operation', params: full.numel(), examples: w.examples, ms: t.ms, reps: t.samples.length, samples: t.samples, unitMs: unit.ms, ...mem });
    }
    v.dispose();
    implicit.dispose();
    small.dispose();
  }

  {
    const { layerCollection: lc, scope } = plan.jacobian;
    const run = async () => (await Jacobian({ model, loader: functionSpace, layerCollection: lc })).dispose();
    const mem = await memory(run, 'jacobian', lc, nFs);
    const t = await time(run, timing);
    record({ what: `Jacobian PFMapDense (${scope})`, kind: 'jacobian', params: lc.numel(), examples: nFs, ms: t.ms, reps: t.samples.length, samples: t.samples, unitMs: unitFs.ms, ...mem });
  }
  {
    const { layerCollection: lc, scope } = plan.ntk;
    const run = async () => (await GramMatrix({ model, loader: functionSpace, layerCollection: lc })).dispose();
    const mem = await memory(run, 'gram', lc, nFs);
    const t = await time(run, timing);
    record({ what: `NTK GramMatrix [10,${nFs},10,${nFs}] (${scope})`, kind: 'ntk', params: lc.numel(), examples: nFs, ms: t.ms, reps: t.samples.length, samples: t.samples, unitMs: unitFs.ms, ...mem });
  }

  async function fimCase(c: FimCase): Promise<void> {
    const O = c.kind === 'monte-carlo' ? 1 : 10;
    const data = c.subset ? functionSpace : loader;
    const unitMs = c.subset ? unitFs.ms : unit.ms;
    const examples = count(data);
    let representation = c.representation;
    let timed: { samples: number[] };
    let formula = c.formula;
    let operationFormula = c.operationFormula ?? 'vector';
    const compute = (batches: BenchBatch[]) =>
      c.kind === 'monte-carlo'
        ? FIMMonteCarlo({ model, loader: batches, representation, layerCollection: c.layerCollection, trials: 1, seed: 3 })
        : FIM({ model, loader: batches, representation, layerCollection: c.layerCollection });
    const memoryData = () => (FORMULAS[formula].growsWithN ? data : profiled);
    const sizesNow = () => count(c.profileInTimedRun ? data : memoryData());
    let mem: Awaited<ReturnType<typeof memory>> | undefined;
    try {
      if (!c.profileInTimedRun) mem = await memory(async () => (await compute(memoryData())).dispose(), formula, c.layerCollection, sizesNow(), O);
      else await FIM({ model, loader: loader.slice(0, 1), representation, layerCollection: c.layerCollection }).then((m) => m.dispose(), (e: unknown) => { if (e instanceof UnsupportedLayerError) throw e; });
    } catch (e) {
      if (!(e instanceof UnsupportedLayerError) || !c.fallback) throw e;
      console.error(`  ${w.name}: ${representation.representationName} refused (${e.message.slice(0, 100)}…); using ${c.fallback.representation.representationName}`);
      ({ representation, formula, operationFormula } = c.fallback);
      if (!c.profileInTimedRun) mem = await memory(async () => (await compute(memoryData())).dispose(), formula, c.layerCollection, sizesNow(), O);
    }
    let F: Matrix | undefined;
    const run = async () => {
      F?.dispose();
      F = (await compute(data)) as Matrix;
    };
    if (c.profileInTimedRun) {
      const t0 = performance.now();
      mem = await memory(run, formula, c.layerCollection, sizesNow(), O);
      const first = performance.now() - t0;
      const rest = first > timing.longMs ? { samples: [] as number[] } : await time(run, { ...timing, reps: timing.reps - 1 });
      timed = { samples: [first, ...rest.samples] };
    } else {
      timed = await time(run, timing);
    }
    const t = { ms: median(timed.samples), samples: timed.samples };
    const name = representation.representationName;
    const label = c.kind === 'monte-carlo' ? `FIMMonteCarlo 1 trial ${name} (${c.scope})` : `FIM ${name} (${c.scope})`;
    const params = c.layerCollection.numel();
    record({ what: c.subset ? `${label}, ${examples} examples` : label, kind: c.kind, params, examples, ms: t.ms, reps: t.samples.length, samples: t.samples, unitMs, ...mem });
    const M = F!;
    try {
      const v = PVector.random(c.layerCollection, 1);
      for (const op of c.operations ?? []) {
        const f =
          op === 'mv' ? async () => (await M.mv(v)).dispose() : op === 'solve' ? () => M.solve!(v, { regul: 1e-3 }).dispose() : () => M.trace();
        if (op === 'solve' && !M.solve) continue;
        // The first call may cache (KFAC's eigendecompositions for solve): the profiled run is also the warm-up.
        const key = op === 'trace' ? (c.traceFormula ?? 'none') : op === 'solve' ? (c.solveFormula ?? operationFormula) : operationFormula;
        const opMem = await memory(f, key, c.layerCollection, examples, O);
        const ot = await time(f, timing);
        record({ what: `  ${name}.${op === 'solve' ? 'solve (regul 1e-3)' : op}`, kind: 'operation', params, examples, ms: ot.ms, reps: ot.samples.length, samples: ot.samples, unitMs, ...opMem });
      }
      v.dispose();
      if (c.updateDiag && M.updateDiag) {
        const upMem = await memory(() => M.updateDiag!(profiled), 'updateDiag', c.layerCollection, count(profiled), O);
        const ut = await time(() => M.updateDiag!(data), timing);
        record({ what: `  ${name}.updateDiag`, kind: 'operation', params, examples, ms: ut.ms, reps: ut.samples.length, samples: ut.samples, unitMs, ...upMem });
      }
    } finally {
      M.dispose();
    }
  }
}

export const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 2 : 0);

/** The rows as a fixed-width table, one block per workload. */
export function formatRows(rows: BenchRow[]): string {
  const out: string[] = [];
  let last = '';
  for (const r of rows) {
    if (r.workload !== last) {
      out.push(
        `\n${r.workload}\n` +
          'what'.padEnd(58) + 'params'.padStart(9) + 'reps'.padStart(5) + 'ms'.padStart(9) + '× unit'.padStart(9) +
          'peak MB'.padStart(10) + 'est. MB'.padStart(10) + 'peak/est'.padStart(9) + '  formula',
      );
      last = r.workload;
    }
    const peak = r.peakBytes === undefined ? '' : mb(r.peakBytes);
    const est = r.estimateBytes === undefined ? '' : mb(r.estimateBytes);
    const q = r.peakBytes !== undefined && r.estimateBytes ? (r.peakBytes / r.estimateBytes).toFixed(2) : '';
    out.push(
      r.what.padEnd(58) + String(r.params).padStart(9) + String(r.reps ?? '').padStart(5) + r.ms.toFixed(0).padStart(9) + r.ratio.toFixed(2).padStart(9) +
        peak.padStart(10) + est.padStart(10) + q.padStart(9) + (r.formula ? `  ${r.formula}${r.peakExamples ? ` (n=${r.peakExamples})` : ''}` : ''),
    );
  }
  return out.join('\n');
}

/** Waits (up to 10 s) until the SIMD kernels run on `threads` threads again after setSimdThreads. */
export async function simdThreadsRunning(threads: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (simdKernelsInfo().threadsRunning < threads && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
