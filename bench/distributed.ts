/**
 * `npm run bench:distributed`: distributed passes (BullMQ on a local redis-server) against one
 * process, on the bench's MLP and CNN at 8,192 examples (batches of 128), and a simulation of
 * 8, 32 and 128 workers from the measured per-shard times, Redis round trips and merge costs.
 *
 * Measured: T₁, the single-process FIM (library, workers: 1, warm); T₂, the same pass through
 * `distributedFIM` with 2 local `nngeometry worker` processes (warm, 8 shards), from enqueue to
 * the merged matrix loaded; per shard: its compute seconds cᵢ (worker side), the coordination
 * overhead o = (2·T₂ − Σcᵢ − merge)/S (idle, queue and store time per shard); the Redis
 * round trip r (PING) and the store throughput for a partial of the run's size.
 *
 * Model for W workers and S = W shards (one per worker): the pass's compute C = Σcᵢ splits
 * evenly, each shard adds the measured overhead o, the merges fetch, verify, decode and add the
 * partials at the measured cost m₁ per partial (the merge of 8, divided by 8), and the
 * coordinator fetches the result once (t_r, the measured store put + get of one partial). With
 * one merge job (flat): T(W) = C/W + o + W·m₁ + t_r. With a merge tree of fan-in k (the default,
 * k = 8): the merges of one level run in parallel on different workers, so the critical path
 * decodes Σ_levels (children of the largest merge of the level) partials, each level adding a
 * store round trip: T(W) = C/W + o + Σ_ℓ g_ℓ·m₁ + L·t_r + t_r. Speed-up T₁/T(W). It assumes a core
 * per worker and a Redis that is not saturated (W partials per run through one Redis).
 *
 * Prints a table and writes bench/out/distributed.json. Needs redis-server on the PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, PMatDiag, PMatKFAC, saveModel, type PMatBase, type Representation } from '../src/index.js';
import { distributedFIM } from '../src/distributed/coordinator.js';
import { mergeTree, type MergeNode } from '../src/distributed/merge-tree.js';
import { PartialStore } from '../src/distributed/partial-store.js';
import { BATCH, cnn, mlp } from './workloads.js';

const EXAMPLES = Number(process.env.BENCH_DISTRIBUTED_EXAMPLES ?? 8192);
const SHARDS = 8;
/** Which workloads to measure (BENCH_DISTRIBUTED_WORKLOADS=mlp,cnn). */
const WORKLOADS = (process.env.BENCH_DISTRIBUTED_WORKLOADS ?? 'mlp,cnn').split(',');

/** Partials decoded on the critical path of a merge tree: per level, the largest merge's children; and the number of levels. */
function treeCriticalPath(units: number, fanIn: number): { partials: number; levels: number } {
  const widest: number[] = [];
  const walk = (n: MergeNode) => {
    widest[n.level] = Math.max(widest[n.level] ?? 0, n.children.length);
    n.children.forEach((c) => typeof c !== 'number' && walk(c));
  };
  walk(mergeTree(units, fanIn));
  return { partials: widest.reduce((a, b) => a + b, 0), levels: widest.length };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Seeded inputs as an IDX float32 file ([n, ...shape]) and the same values in memory. */
function writeIdx(path: string, shape: number[], seed: number): Float32Array {
  const n = EXAMPLES;
  const values = tf.tidy(() => tf.randomNormal([n, ...shape], 0, 1, 'float32', seed).dataSync() as Float32Array);
  const header = Buffer.alloc(4 + 4 * (1 + shape.length));
  header.writeUInt8(0x0d, 2);
  header.writeUInt8(1 + shape.length, 3);
  [n, ...shape].forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  // IDX is big-endian.
  const body = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => body.writeFloatBE(v, 4 * i));
  writeFileSync(path, Buffer.concat([header, body]));
  return values;
}

function startWorker(url: string): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--redis', url, '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('serving') && resolve()));
  return { child, ready };
}

/**
 * One product F v of the matrix-free Fisher (what every step of eigsh, Hutch++ and SLQ needs) on
 * the MLP at EXAMPLES examples: PMatImplicit.mv on one process against distributedOperator's mv
 * (8 shards, the 2 workers), and the same distributed product on 8 examples (1 per shard), whose
 * time is the flow's round trip alone.
 */
async function measureProducts(url: string, dir: string): Promise<Array<Record<string, number | string>>> {
  const { distributedOperator } = await import('../src/distributed/operator.js');
  const { PMatImplicit, PVector } = await import('../src/index.js');
  const model = mlp();
  const modelDir = join(dir, 'MLP-products');
  await saveModel(model, modelDir);
  const dataPath = join(dir, 'MLP-products.idx');
  const values = writeIdx(dataPath, [784], 7);
  const batches: tf.Tensor[] = [];
  for (let s = 0; s < EXAMPLES; s += BATCH) batches.push(tf.tensor(values.subarray(s * 784, Math.min(EXAMPLES, s + BATCH) * 784), [Math.min(BATCH, EXAMPLES - s), 784]));
  try {
    const F = await FIM({ model, loader: batches, representation: PMatImplicit });
    const v = PVector.random(F.layerCollection, 1);
    (await F.mv(v)).dispose(); // warm
    let t = performance.now();
    (await F.mv(v)).dispose();
    const localSeconds = (performance.now() - t) / 1000;
    F.dispose();
    const timed = async (count: number, batchSize: number) => {
      const op = await distributedOperator({ redis: url, model: join(modelDir, 'model.json'), data: dataPath, batchSize, count, shards: SHARDS, scale: 1 });
      try {
        const w = PVector.random(op.layerCollection, 2);
        (await op.mv(w)).dispose(); // warm (and a different vector below: no reuse)
        const u = PVector.random(op.layerCollection, 3);
        t = performance.now();
        (await op.mv(u)).dispose();
        const seconds = (performance.now() - t) / 1000;
        w.dispose();
        u.dispose();
        return seconds;
      } finally {
        await op.close();
      }
    };
    const distributedSeconds = await timed(EXAMPLES, BATCH);
    const emptyRoundTripSeconds = await timed(SHARDS, 1);
    v.dispose();
    return [{ workload: 'MLP 784-512-512-10', examples: EXAMPLES, shards: SHARDS, localSeconds, distributedSeconds, emptyRoundTripSeconds, vectorBytes: 4 * 669_706 }];
  } finally {
    tf.dispose(batches);
    model.dispose();
  }
}

async function main(): Promise<void> {
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    console.log('bench:distributed needs redis-server (Debian: apt-get install redis-server); nothing measured');
    return;
  }
  await tf.setBackend('wasm');
  await tf.ready();
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-bench-distributed-'));
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  await new Promise((r) => setTimeout(r, 300));
  const workers = [startWorker(url), startWorker(url)];
  const rows: Array<Record<string, number | string>> = [];
  const products: Array<Record<string, number | string>> = [];
  try {
    await Promise.all(workers.map((w) => w.ready));
    const { Redis } = await import('ioredis');
    const client = new Redis(url);
    // Redis round trip (PING), averaged.
    const t0 = performance.now();
    for (let i = 0; i < 500; i++) await client.ping();
    const rtt = (performance.now() - t0) / 500 / 1000;
    // The CNN's KFAC partial is 234 MB (its dense layer's 5,409² input factor): 8 of them through a
    // store directory and one merge decoding all of them do not fit this machine's time; its
    // Diag partial (0.47 MB) measures the same coordination on a compute-heavier pass.
    for (const [name, build, shape, reps] of [
      ['MLP 784-512-512-10', mlp, [784], [PMatDiag, PMatKFAC]],
      ['CNN 28x28 conv16-conv32-dense10', cnn, [28, 28, 1], [PMatDiag]],
    ] as const) {
      if (!WORKLOADS.includes(name.split(' ')[0]!.toLowerCase())) continue;
      const model = build();
      const modelDir = join(dir, name.split(' ')[0]!);
      await saveModel(model, modelDir);
      const dataPath = join(dir, `${name.split(' ')[0]}.idx`);
      const values = writeIdx(dataPath, [...shape], 7);
      const batches: tf.Tensor[] = [];
      for (let s = 0; s < EXAMPLES; s += BATCH) batches.push(tf.tensor(values.subarray(s * values.length / EXAMPLES, Math.min(EXAMPLES, s + BATCH) * values.length / EXAMPLES), [Math.min(BATCH, EXAMPLES - s), ...shape]));
      for (const rep of reps as ReadonlyArray<Representation<PMatBase>>) {
        // Warm both sides once on a small run (threads, wasm, model load).
        const warm = await distributedFIM({ redis: url, model: join(modelDir, 'model.json'), data: dataPath, representation: rep, batchSize: BATCH, count: 2 * BATCH, shards: 2, scale: 1, store: join(dir, 'store') });
        warm.matrix.dispose();
        warm.model.dispose();
        (await FIM({ model, loader: batches.slice(0, 2), representation: rep, workers: 1 })).dispose();
        let t = performance.now();
        (await FIM({ model, loader: batches, representation: rep, workers: 1 })).dispose();
        const single = (performance.now() - t) / 1000;
        t = performance.now();
        const run = await distributedFIM({ redis: url, model: join(modelDir, 'model.json'), data: dataPath, representation: rep, batchSize: BATCH, shards: SHARDS, scale: 1, store: join(dir, 'store'), runId: `bench-${rep.representationName}-${name.split(' ')[0]}-${Date.now()}` });
        const distributed = (performance.now() - t) / 1000;
        run.matrix.dispose();
        run.model.dispose();
        // Per-shard compute and the merge, from the merge job's record.
        const { Queue, Job } = await import('bullmq');
        const queue = new Queue('nngeometry-merge', { connection: client });
        const merge = await Job.fromId(queue, run.runId);
        const shards = (merge!.returnvalue as { shards: Array<{ seconds: number; partial: { bytes: number } }> }).shards;
        const mergeSeconds = ((merge!.finishedOn ?? 0) - (merge!.processedOn ?? 0)) / 1000;
        await queue.close();
        const compute = shards.reduce((a, s) => a + s.seconds, 0);
        const overhead = Math.max(0, (2 * distributed - compute - mergeSeconds) / shards.length);
        const partialBytes = shards[0]!.partial.bytes;
        // Store round trip (put + get, hash included) for one partial of this size, in the run's store.
        const store = new PartialStore(client, join(dir, 'store'));
        const bytes = new Uint8Array(partialBytes);
        t = performance.now();
        const ref = await store.put('bench-throughput', 'p', bytes, 60);
        await store.get(ref);
        const storeSeconds = (performance.now() - t) / 1000;
        await store.remove([ref]);
        const perPartialMerge = mergeSeconds / shards.length;
        const flat = (w: number) => compute / w + overhead + w * perPartialMerge + storeSeconds;
        const tree = (w: number) => {
          const path = treeCriticalPath(w, 8);
          return compute / w + overhead + path.partials * perPartialMerge + path.levels * storeSeconds;
        };
        const row = {
          workload: name, representation: rep.representationName, examples: EXAMPLES, shards: SHARDS,
          singleSeconds: single, twoWorkersSeconds: distributed, speedup: single / distributed,
          shardComputeSeconds: compute / shards.length, overheadPerShardSeconds: overhead, mergeSeconds, partialBytes,
          storePutGetSeconds: storeSeconds, redisRoundTripMs: rtt * 1000,
          ...Object.fromEntries([8, 32, 128].map((w) => [`simulated${w}Speedup`, single / flat(w)])),
          ...Object.fromEntries([8, 32, 128].map((w) => [`simulated${w}TreeSpeedup`, single / tree(w)])),
        };
        rows.push(row);
        console.log(JSON.stringify(row));
      }
      tf.dispose(batches);
      model.dispose();
    }
    if (WORKLOADS.includes('products')) products.push(...(await measureProducts(url, dir)));
    client.disconnect();
  } finally {
    workers.forEach((w) => w.child.kill('SIGTERM'));
    redis.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nload average at the end: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(', ')}`);
  console.log('workload | representation | 1 process (s) | 2 workers (s) | speed-up | compute/shard (s) | overhead/shard (s) | merge (s) | partial | sim. 8 / 32 / 128 workers (flat merge) | (merge tree, fan-in 8)');
  for (const r of rows) {
    const f = (x: unknown, d = 2) => (typeof x === 'number' ? x.toFixed(d) : String(x));
    console.log(`${r.workload} | ${r.representation} | ${f(r.singleSeconds)} | ${f(r.twoWorkersSeconds)} | ${f(r.speedup)} | ${f(r.shardComputeSeconds)} | ${f(r.overheadPerShardSeconds, 3)} | ${f(r.mergeSeconds, 3)} | ${r.partialBytes} B | ${f(r.simulated8Speedup, 2)} / ${f(r.simulated32Speedup, 2)} / ${f(r.simulated128Speedup, 2)} | ${f(r.simulated8TreeSpeedup, 2)} / ${f(r.simulated32TreeSpeedup, 2)} / ${f(r.simulated128TreeSpeedup, 2)}`);
  }
  for (const p of products) console.log(`product F v, ${p.workload}: 1 process ${(p.localSeconds as number).toFixed(2)} s, distributed (${p.shards} shards, 2 workers) ${(p.distributedSeconds as number).toFixed(2)} s; round trip of an empty product ${(p.emptyRoundTripSeconds as number).toFixed(2)} s`);
  mkdirSync('bench/out', { recursive: true });
  writeFileSync('bench/out/distributed.json', JSON.stringify({ schema: 1, date: new Date().toISOString(), rows, products }, null, 2) + '\n');
}

await main();
process.exit(0);
