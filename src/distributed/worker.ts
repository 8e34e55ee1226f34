/**
 * A distributed-pass worker: it serves the shard and merge queues of a Redis server (BullMQ)
 * until closed. Shard jobs and merges run in compute threads (compute-pool.ts), so that this
 * thread's event loop renews job locks on time even during long passes; a worker that dies
 * loses its locks and BullMQ's stalled-job check hands its shard to another worker. A worker
 * whose model or data files differ from the coordinator's (SHA-256) refuses the shard with an
 * UnrecoverableError: the run fails at once instead of retrying on wrong inputs. Node only.
 */
import { hostname } from 'node:os';
import type { Job, Worker } from 'bullmq';
import { DistributedError } from '../errors.js';
import { ComputePool, type MergePart } from './compute-pool.js';
import { dataHash, modelHash } from './hash.js';
import { PartialStore } from './partial-store.js';
import { connectRedis } from './redis.js';
import { orderShardResults } from './shard-results.js';
import { MERGE_QUEUE, SHARD_QUEUE, type MergeJobData, type MergeResult, type ShardJobData, type ShardProgress, type ShardResult } from './protocol.js';

export interface WorkerOptions {
  /** redis://HOST:PORT of the run's Redis. */
  redis: string;
  /** Shards computed at once, each in its own compute thread (default 1). */
  concurrency?: number;
  /**
   * How long a job's lock lasts without renewal (ms, default 30,000): a worker silent for this
   * long is presumed dead and its shard is handed to another worker. Renewed every half of it.
   */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (ms, default lockDurationMs). */
  stalledIntervalMs?: number;
  /** Called once per job with a one-line event ('shard s0003 of run … done in 1.2 s'). */
  onEvent?: (line: string) => void;
}

/** A running worker. */
export interface WorkerHandle {
  /** host:pid, as shown in results and progress. */
  readonly name: string;
  /** Stops taking jobs, lets the current ones finish, and releases threads and connections. */
  close(): Promise<void>;
}

/**
 * Starts serving distributed passes. Every machine that serves them must read the run's model
 * and data at the paths the coordinator gives (shared storage).
 *
 * @example
 * const worker = await startWorker({ redis: 'redis://localhost:6379', concurrency: 1 });
 * process.on('SIGTERM', () => void worker.close());
 */
export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new DistributedError(`startWorker: 'concurrency' must be a positive integer, received ${String(options.concurrency)}`);
  const lockDuration = options.lockDurationMs ?? 30_000;
  const name = `${hostname()}:${process.pid}`;
  const connection = await connectRedis(options.redis, { blocking: true, where: 'worker' });
  const { Worker: BullWorker, UnrecoverableError } = await import('bullmq');
  const pool = await ComputePool.start(concurrency);
  const stores = new Map<string, PartialStore>();
  const storeFor = (directory: string | null, maxRedisBytes: number) => {
    const key = `${directory ?? ''}|${maxRedisBytes}`;
    if (!stores.has(key)) stores.set(key, new PartialStore(connection, directory, maxRedisBytes));
    return stores.get(key)!;
  };
  const event = options.onEvent ?? (() => undefined);

  const processShard = async (job: Job<ShardJobData, ShardResult>): Promise<ShardResult> => {
    const d = job.data;
    const t0 = performance.now();
    const [m, x] = await Promise.all([modelHash(d.pass.model), dataHash(d.pass.data, d.pass.labels)]);
    if (m !== d.pass.modelHash) {
      throw new UnrecoverableError(`worker ${name}: the model at ${d.pass.model} differs from the coordinator's (sha256 ${m.slice(0, 12)}…, expected ${d.pass.modelHash.slice(0, 12)}…); every worker must read the same model files`);
    }
    if (x !== d.pass.dataHash) {
      throw new UnrecoverableError(`worker ${name}: the data at ${d.pass.data}${d.pass.labels ? ` (labels ${d.pass.labels})` : ''} differs from the coordinator's (sha256 ${x.slice(0, 12)}…, expected ${d.pass.dataHash.slice(0, 12)}…); every worker must read the same data files`);
    }
    event(`shard ${d.shard} of run ${d.runId}: started (attempt ${job.attemptsMade + 1})`);
    const store = storeFor(d.storeDirectory, d.maxRedisBytes);
    // The pass's input, when it has one: EKFAC's eigenbasis, or the vector of a product.
    const input = d.pass.basis ?? d.pass.vector;
    const basis = input ? await store.get(input) : null;
    let last = 0;
    const { bytes, examples } = await pool.run({ type: 'shard', pass: d.pass, shard: { index: d.index, start: d.start, end: d.end, ...(d.columns ? { columns: d.columns } : {}) }, basis }, (done) => {
      const now = performance.now();
      if (now - last < 250) return;
      last = now;
      void job.updateProgress({ examplesDone: done, worker: name } satisfies ShardProgress).catch(() => undefined);
    });
    // Kept a day at most: the merge removes it, a cancelled run removes it, expiry covers the rest.
    const partial = await store.put(d.runId, d.shard, bytes, 86_400);
    const seconds = (performance.now() - t0) / 1000;
    event(`shard ${d.shard} of run ${d.runId}: ${examples} examples in ${seconds.toFixed(2)} s (attempt ${job.attemptsMade + 1})`);
    return { shard: d.shard, index: d.index, examples, start: d.start, end: d.end, ...(d.columns ? { columns: d.columns } : {}), partial, worker: name, seconds };
  };

  const processMerge = async (job: Job<MergeJobData, MergeResult | ShardResult>): Promise<MergeResult | ShardResult> => {
    const d = job.data;
    const t0 = performance.now();
    const values = await job.getChildrenValues<ShardResult>();
    const { ordered, duplicates } = orderShardResults(values, d.shards, d.first ?? 0);
    const store = storeFor(d.storeDirectory, d.maxRedisBytes);
    const parts: MergePart[] = [];
    for (const r of ordered) parts.push({ bytes: await store.get(r.partial), examples: r.examples, ...(r.start !== undefined ? { start: r.start, end: r.end! } : {}), ...(r.columns ? { columns: r.columns } : {}) });
    const { bytes, examples } = await pool.run({ type: 'merge', pass: d.pass, parts });
    const node = d.node ?? null;
    const id = node ? `m${node.level}-${String(node.index).padStart(4, '0')}` : 'result';
    // An inner merge's result waits for its parent like a shard's partial; the root's is kept for repeated requests.
    const result = await store.put(d.runId, id, bytes, node ? 86_400 : d.keepSeconds);
    await store.remove(ordered.map((r) => r.partial));
    const seconds = (performance.now() - t0) / 1000;
    event(`merged ${ordered.length} ${node ? `partials into ${id}` : 'partials'} of run ${d.runId} in ${seconds.toFixed(2)} s${duplicates ? ` (${duplicates} duplicate deliveries dropped)` : ''}`);
    const workers = [...new Set(ordered.flatMap((r) => r.workers ?? [r.worker]))].sort();
    if (node) return { shard: id, index: node.index, examples, partial: result, worker: name, workers, seconds };
    return { result, examples, shards: ordered, duplicates, worker: name };
  };

  const common = { connection, lockDuration, stalledInterval: options.stalledIntervalMs ?? lockDuration, maxStalledCount: 2 };
  const workers: Worker[] = [
    new BullWorker<ShardJobData, ShardResult>(SHARD_QUEUE, processShard, { ...common, concurrency }),
    new BullWorker<MergeJobData, MergeResult | ShardResult>(MERGE_QUEUE, processMerge, { ...common, concurrency: 1 }),
  ];
  let reported = '';
  for (const w of workers) {
    w.on('error', (e: Error) => {
      // Connection errors repeat every reconnection attempt: report each kind once.
      if (e.message !== reported) event(`worker ${name}: ${(reported = e.message)}`);
    });
    w.on('failed', (job, e) => job && event(`${job.queueName === SHARD_QUEUE ? `shard ${(job.data as ShardJobData).shard}` : 'merge'} of run ${(job.data as ShardJobData).runId} failed (attempt ${job.attemptsMade}): ${e.message}`));
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  let closing: Promise<void> | null = null;
  return {
    name,
    close: () =>
      (closing ??= (async () => {
        await Promise.all(workers.map((w) => w.close()));
        await pool.close();
        connection.disconnect();
      })()),
  };
}
