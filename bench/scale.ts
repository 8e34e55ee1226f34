/**
 * Scale rows (`npm run bench:scale`, or `npm run bench -- --scale`): wide MLPs as multiples of
 * one plain forward+backward pass over the same data, each with its own peak memory.
 *   - d ≈ 10^7: 784 → 2048×3 → 10 (relu), 1,024 examples;
 *   - d ≈ 10^8: 784 → 4096×7 → 10 (relu), 256 examples (`--huge`).
 * Rows: FIMMonteCarlo 1 trial Diag, FIM Diag, FIM KFAC, KFAC solve (regul 1e-3), PMatImplicit mv.
 * Batches of 128, N(0, 1) inputs, labels uniform in 0..9, classif_logits, backend wasm.
 *
 * Every row runs in a child process of its own (process.resourceUsage().maxRSS never goes down,
 * so one process would charge each row with every earlier one): the child builds the model,
 * times the plain step (the row's unit, measured side by side with the row), warms the row's
 * operation up on one batch (not PMatImplicit.mv, a whole pass), then times it on all the data. The peak RSS of a row is the child's
 * maximum resident set over all of that — the model, the plain step and the operation — and
 * "wasm heap" is the size the WebAssembly memory grew to (it never shrinks: tfjs's device
 * high-water mark). KFAC solve runs in the FIM KFAC child, after it, so its peak includes the
 * KFAC matrix it solves with. The child times the plain step once more at its end ("again"), so
 * that a change of load during the row shows.
 *
 * `npx tsx bench/scale.ts [--huge]` prints a table and writes bench/out/scale.json;
 * BENCH_SCALE_ONLY=kfac (or a comma list of mc-diag, diag, implicit, kfac) limits the rows;
 * BENCH_SCALE_TIMEOUT_S=s kills a row's child after s seconds (what it measured before stays);
 * `--huge-only` measures d ≈ 10^8 alone.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, FIMMonteCarlo, LayerCollection, PMatDiag, PMatImplicit, PMatKFAC, PVector, type PMatBase } from '../src/index.js';
import { ensureKernelFixes } from '../src/backend/substrate.js';
import { runPytorchKfacReference, type PytorchKfacReference } from './pytorch.js';
import { seededData, type BenchBatch } from './workloads.js';

export interface ScaleRow {
  workload: string;
  what: string;
  params: number;
  examples: number;
  ms: number;
  /** ms ÷ the plain step timed in the same process. */
  ratio: number;
  /** Peak resident set size of the row's process (model, plain step and the operation), bytes. */
  peakRssBytes: number;
  /** Size of the WebAssembly memory (tfjs-wasm's device high-water mark) at the row's end, bytes. */
  wasmHeapBytes: number;
}

interface Config {
  width: number;
  hidden: number;
  examples: number;
}

/** The rows, each measured in a child process of its own. */
const ROW_KEYS = ['mc-diag', 'diag', 'implicit', 'kfac'] as const;
type RowKey = (typeof ROW_KEYS)[number];

function wideMlp(width: number, hidden: number): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: width, inputShape: [784], activation: 'relu' }));
  for (let i = 1; i < hidden; i++) m.add(tf.layers.dense({ units: width, activation: 'relu' }));
  m.add(tf.layers.dense({ units: 10 }));
  return m;
}

const peakRss = () => process.resourceUsage().maxRSS * 1024;
const wasmHeap = () => (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.buffer.byteLength ?? 0;

async function timed<T>(f: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await f();
  return { ms: performance.now() - t0, value };
}

/** One row's measurements in this process (the child side). */
async function measureRow({ width, hidden, examples }: Config, key: RowKey): Promise<ScaleRow[]> {
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
  // The library's wasm kernels (installed on its first use) serve the plain step too, as in
  // bench/workloads.ts; without them tfjs's stock kernels make the unit many times slower.
  ensureKernelFixes();
  plain(); // kernel set-up
  const unit = (await timed(plain)).ms;
  const rows: ScaleRow[] = [];
  const record = (what: string, ms: number) => {
    const r = { workload, what, params, examples, ms, ratio: ms / unit, peakRssBytes: peakRss(), wasmHeapBytes: wasmHeap() };
    rows.push(r);
    console.log('SCALE_ROW ' + JSON.stringify(r));
    console.error(`  ${workload}: ${what}: ${ms.toFixed(0)} ms (${r.ratio.toFixed(2)} × unit), peak RSS ${(r.peakRssBytes / 2 ** 30).toFixed(2)} GiB, wasm heap ${(r.wasmHeapBytes / 2 ** 30).toFixed(2)} GiB`);
  };
  record('plain forward+backward (unit)', unit);
  /** Warms `make` up on one batch, then times it on all the data. */
  const once = async (what: string, make: (data: BenchBatch[]) => Promise<PMatBase>) => {
    (await make(loader.slice(0, 1))).dispose();
    const t = await timed(() => make(loader));
    record(what, t.ms);
    return t.value;
  };
  const v = PVector.random(lc, 5);
  if (key === 'mc-diag') (await once('FIMMonteCarlo 1 trial PMatDiag', (data) => FIMMonteCarlo({ model, loader: data, representation: PMatDiag, trials: 1, seed: 3 }))).dispose();
  if (key === 'diag') (await once('FIM PMatDiag', (data) => FIM({ model, loader: data, representation: PMatDiag }))).dispose();
  if (key === 'kfac') {
    const kfac = (await once('FIM PMatKFAC', (data) => FIM({ model, loader: data, representation: PMatKFAC }))) as PMatKFAC;
    const solve = await timed(() => kfac.solve(v, { regul: 1e-3 }));
    solve.value.dispose();
    record('  PMatKFAC.solve (regul 1e-3)', solve.ms);
    kfac.dispose();
  }
  if (key === 'implicit') {
    const implicit = await FIM({ model, loader, representation: PMatImplicit });
    // Not warmed up: one mv is a whole pass over the data, and a warm-up would double the row's
    // time for nothing (its kernels are the plain step's, already warm).
    const mv = await timed(() => implicit.mv(v));
    record('PMatImplicit.mv', mv.ms);
    mv.value.dispose();
    implicit.dispose();
  }
  // The plain step again, after the row: on a shared machine the load can change between the
  // unit and the row, and the two units bracket the multiples (its ratio is to the first unit).
  record('plain forward+backward (again)', (await timed(plain)).ms);
  // What the machine charges for fresh memory (last, so that its 8·d bytes are in no row's
  // peak): a float64 array of d values, first touch of every page (this VM: 3.5 ms per MiB,
  // idle). A row that returned its result as such an array would pay at least this; the
  // diagonal and M v of a pass of at most 16 batches stay on the device and do not.
  const touch = await timed(() => {
    const a = new Float64Array(params);
    for (let i = 0; i < a.length; i += 512) a[i] = 1;
    return a.length;
  });
  record('fresh float64[d], first touch of its pages', touch.ms);
  v.dispose();
  loader.forEach((b) => tf.dispose([b.xs, b.ys]));
  model.dispose();
  return rows;
}

/** The rows of `configs`, each row in a child process (see the file's documentation). */
export async function benchScale(configs: Config[], only: readonly RowKey[] = selectedRows()): Promise<ScaleRow[]> {
  const rows: ScaleRow[] = [];
  const self = fileURLToPath(import.meta.url);
  for (const config of configs) {
    for (const key of only) {
      const child = spawnSync(process.execPath, [...process.execArgv, self, '--row', key, '--config', JSON.stringify(config)], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        env: process.env,
        maxBuffer: 1 << 20,
        ...(timeoutS > 0 ? { timeout: timeoutS * 1000, killSignal: 'SIGKILL' as const } : {}),
      });
      const got = (child.stdout ?? '').split('\n').filter((l) => l.startsWith('SCALE_ROW ')).map((l) => JSON.parse(l.slice('SCALE_ROW '.length)) as ScaleRow);
      rows.push(...got);
      if (child.status !== 0) {
        // A row killed at BENCH_SCALE_TIMEOUT_S keeps what it measured before; the rest is reported as not measured.
        const why = child.error && 'code' in child.error && child.error.code === 'ETIMEDOUT' ? `killed after ${timeoutS} s` : `exit ${child.status}, signal ${child.signal}`;
        console.error(`  the '${key}' row of ${JSON.stringify(config)} did not finish (${why})`);
        rows.push({ workload: got[0]?.workload ?? JSON.stringify(config), what: `${key}: not finished (${why})`, params: got[0]?.params ?? 0, examples: config.examples, ms: NaN, ratio: NaN, peakRssBytes: NaN, wasmHeapBytes: NaN });
      }
    }
  }
  return rows;
}

/** BENCH_SCALE_TIMEOUT_S: a row's child is killed past this many seconds (0, the default: never). */
const timeoutS = Number(process.env.BENCH_SCALE_TIMEOUT_S ?? 0);

function selectedRows(): RowKey[] {
  const only = process.env.BENCH_SCALE_ONLY;
  if (!only) return [...ROW_KEYS];
  const keys = only.split(',').map((s) => s.trim());
  for (const k of keys) if (!(ROW_KEYS as readonly string[]).includes(k)) throw new Error(`BENCH_SCALE_ONLY: '${k}' is not one of ${ROW_KEYS.join(', ')}`);
  return keys as RowKey[];
}

const isMain = import.meta.url === new URL(`file://${process.argv[1] ?? ''}`).href;
if (isMain) {
  await tf.setBackend(process.env.BENCH_BACKEND ?? 'wasm');
  await tf.ready();
  const rowAt = process.argv.indexOf('--row');
  if (rowAt >= 0) {
    const key = process.argv[rowAt + 1] as RowKey;
    const config = JSON.parse(process.argv[process.argv.indexOf('--config') + 1]!) as Config;
    await measureRow(config, key);
  } else {
    const configs: Config[] = [{ width: 2048, hidden: 3, examples: 1024 }];
    if (process.argv.includes('--huge')) configs.push({ width: 4096, hidden: 7, examples: 256 });
    if (process.argv.includes('--huge-only')) configs.splice(0, 1, { width: 4096, hidden: 7, examples: 256 });
    const load = loadavg();
    const rows = await benchScale(configs);
    const loadAtEnd = loadavg();
    const gib = (b: number) => (b / 2 ** 30).toFixed(2);
    console.log(`scale rows (backend ${tf.getBackend()}, load average ${load.map((x) => x.toFixed(1)).join(' ')} at the start, ${loadAtEnd.map((x) => x.toFixed(1)).join(' ')} at the end)`);
    console.log('workload'.padEnd(40) + 'what'.padEnd(34) + 'params'.padStart(12) + 'ms'.padStart(9) + '× unit'.padStart(9) + 'peak RSS GiB'.padStart(14) + 'wasm heap GiB'.padStart(15));
    for (const r of rows) console.log(r.workload.padEnd(40) + r.what.padEnd(34) + String(r.params).padStart(12) + r.ms.toFixed(0).padStart(9) + r.ratio.toFixed(2).padStart(9) + gib(r.peakRssBytes).padStart(14) + gib(r.wasmHeapBytes).padStart(15));
    // PyTorch doing NNGeometry's KFAC pass on the same MLP: its multiple of its own plain step,
    // beside our FIM PMatKFAC row (BENCH_PYTORCH=0 skips it).
    const pytorch: PytorchKfacReference[] = [];
    if (selectedRows().includes('kfac') && process.env.BENCH_PYTORCH !== '0') {
      for (const c of configs) {
        const ref = runPytorchKfacReference(c.width, c.hidden, c.examples);
        if (!ref.ok) {
          console.log(`PyTorch KFAC reference: not run (${ref.reason})`);
          break;
        }
        pytorch.push(ref.reference);
        const ours = rows.find((r) => r.workload === ref.reference.workload && r.what === 'FIM PMatKFAC');
        console.log(`PyTorch ${ref.reference.workload} (${ref.reference.threads} threads): plain step ${ref.reference.plainMs.toFixed(0)} ms, ` +
          `NNGeometry's KFAC pass ${ref.reference.kfacMs.toFixed(0)} ms = ${ref.reference.kfacOverPlain.toFixed(2)} × its plain step` +
          (ours ? `; ours ${ours.ratio.toFixed(2)} × ours, ${(ours.ms / ref.reference.kfacMs).toFixed(2)} × PyTorch's pass` : ''));
      }
    }
    mkdirSync('bench/out', { recursive: true });
    writeFileSync('bench/out/scale.json', JSON.stringify({ date: new Date().toISOString(), loadAtStart: load, loadAtEnd, rows, pytorch }, null, 2));
  }
}
