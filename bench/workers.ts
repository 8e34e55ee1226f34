/**
 * `npm run bench:workers`: FIM with worker threads against one thread, on the MLP 784-512-512-10
 * (relu, classif_logits, batches of 128), PMatDiag and PMatKFAC.
 *
 * - 1 thread: `workers: 1`.
 * - cold: `workers: k` right after terminateWorkers(): the call starts the pooled threads.
 * - warm: `workers: k` with the pool already started (every later call in a process).
 *
 * Each time is the median of the repetitions; the three kinds of call are interleaved so that a
 * change of the machine's load hits them alike. The 1-minute load average is printed before and
 * after: on a shared machine a second thread only helps when a core is free.
 *
 * Options (environment): WORKERS_N=8192,4096 (example counts), WORKERS_REPS=3, WORKERS_THREADS=2.
 */
import { pathToFileURL } from 'node:url';
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, PMatDiag, PMatKFAC, terminateWorkers, type PMatBase, type Representation } from '../src/index.js';

export interface WorkersBenchRow {
  examples: number;
  representation: string;
  /** Parameters of the model. */
  params: number;
  threads: number;
  /** Medians in ms. */
  single: number;
  cold: number;
  warm: number;
  /** single ÷ warm and single ÷ cold: the speed-ups. */
  warmSpeedup: number;
  coldSpeedup: number;
}

export interface WorkersBenchOptions {
  sizes?: number[];
  reps?: number;
  threads?: number;
  /** Called with each row as it is measured. */
  onRow?: (row: WorkersBenchRow) => void;
}

const BATCH = 128;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Times FIM on 1 thread, on a cold pool and on a warm pool; see the file's comment. */
export async function benchWorkers(options: WorkersBenchOptions = {}): Promise<WorkersBenchRow[]> {
  const { sizes = [8192, 4096], reps = 3, threads = 2 } = options;
  const mlp = tf.sequential();
  mlp.add(tf.layers.dense({ units: 512, inputShape: [784], activation: 'relu' }));
  mlp.add(tf.layers.dense({ units: 512, activation: 'relu' }));
  mlp.add(tf.layers.dense({ units: 10 }));
  const rows: WorkersBenchRow[] = [];
  for (const n of sizes) {
    const loader = Array.from({ length: Math.ceil(n / BATCH) }, (_, k) => ({ xs: tf.randomNormal([Math.min(BATCH, n - k * BATCH), 784], 0, 1, 'float32', 500 + k) }));
    for (const representation of [PMatDiag, PMatKFAC] as Array<Representation<PMatBase>>) {
      const run = (workers: number) => time(async () => (await FIM({ model: mlp, loader, representation, workers })).dispose());
      // One untimed call warms this thread's kernels (the pool's threads warm theirs in their first call).
      await run(1);
      const single: number[] = [];
      const cold: number[] = [];
      const warm: number[] = [];
      for (let r = 0; r < reps; r++) {
        single.push(await run(1));
        await terminateWorkers();
        cold.push(await run(threads));
        warm.push(await run(threads));
      }
      const row = { examples: n, representation: representation.representationName, params: mlp.countParams(), threads, single: median(single), cold: median(cold), warm: median(warm), warmSpeedup: 0, coldSpeedup: 0 };
      row.warmSpeedup = row.single / row.warm;
      row.coldSpeedup = row.single / row.cold;
      rows.push(row);
      options.onRow?.(row);
    }
    loader.forEach((b) => b.xs.dispose());
  }
  mlp.dispose();
  await terminateWorkers();
  return rows;
}

export const WORKERS_TABLE_HEADER = 'examples'.padStart(9) + '  representation'.padEnd(17) + 'threads'.padStart(8) + '1 thread ms'.padStart(13) + 'cold ms'.padStart(10) + 'warm ms'.padStart(10) + 'warm ×'.padStart(8) + 'cold ×'.padStart(8);

export function formatWorkersRow(r: WorkersBenchRow): string {
  return (
    String(r.examples).padStart(9) +
    `  ${r.representation}`.padEnd(17) +
    String(r.threads).padStart(8) +
    r.single.toFixed(0).padStart(13) +
    r.cold.toFixed(0).padStart(10) +
    r.warm.toFixed(0).padStart(10) +
    r.warmSpeedup.toFixed(2).padStart(8) +
    r.coldSpeedup.toFixed(2).padStart(8)
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tf.setBackend('wasm');
  await tf.ready();
  const sizes = (process.env.WORKERS_N ?? '8192,4096').split(',').map(Number);
  const reps = Number(process.env.WORKERS_REPS ?? 3);
  const threads = Number(process.env.WORKERS_THREADS ?? 2);
  const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`FIM with worker threads — MLP 784-512-512-10, batch ${BATCH}, backend ${tf.getBackend()}, median of ${reps}; load average before: ${load()}`);
  console.log(WORKERS_TABLE_HEADER);
  await benchWorkers({ sizes, reps, threads, onRow: (r) => console.log(formatWorkersRow(r) + `   (load ${loadavg()[0]!.toFixed(2)})`) });
  console.log(`load average after: ${load()}`);
}
