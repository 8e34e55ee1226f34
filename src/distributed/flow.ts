/**
 * The BullMQ side of a coordinator: one flow per pass (a root merge job whose children are the
 * pass's work units, or merge jobs over groups of them), followed until the root has merged, its
 * progress reported, its failure turned into the failed unit's own error, and its jobs and
 * partials removed when it fails or is cancelled. Used by distributedFIM and distributedNTK.
 * Node only.
 */
import { resolve } from 'node:path';
import type { FlowJob, FlowProducer, Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AbortedError, DistributedError } from '../errors.js';
import { DEFAULT_MAX_REDIS_BYTES, PartialStore } from './partial-store.js';
import { redisLabel } from './redis.js';
import { mergeTree, type MergeNode } from './merge-tree.js';
import type { ShardRange } from './shard-plan.js';
import { MERGE_QUEUE, SHARD_QUEUE, type MergeJobData, type MergeResult, type PassDefinition, type ShardJobData, type ShardProgress } from './protocol.js';

/** Where a distributed run stands (passed to `onProgress` a few times a second). */
export interface DistributedProgress {
  /** 1, or 2 for EKFAC's diagonal pass. */
  pass: number;
  passes: number;
  /** Examples of the finished shards (rows of the finished tiles for an NTK), and of running ones as reported. */
  examplesDone: number;
  examplesTotal: number;
  /** Shards (NTK: tiles) done, of `shards`. */
  shardsDone: number;
  shards: number;
  /** Shard attempts beyond the first (failures and re-runs after a dead worker). */
  retries: number;
  /** Distinct workers seen on this pass. */
  workers: number;
}

/** Options every distributed run takes (engine, store, retries, cancellation). */
export interface DistributedRunOptions {
  /** redis://HOST:PORT that the coordinator and every worker reach. */
  redis: string;
  /** Directory shared by every worker for partials above `maxRedisBytes` (default: Redis only). */
  store?: string;
  /** Largest partial kept in Redis (default 64 MiB). */
  maxRedisBytes?: number;
  /** Attempts per shard before the run fails (default 3), with exponential backoff from `backoffMs` (default 1,000). */
  attempts?: number;
  backoffMs?: number;
  /** Seconds a finished run's result stays in Redis for a repeated request (default 3,600). */
  keepSeconds?: number;
  /** Explicit run id (letters, digits, '-', '_'); default: derived from the request. */
  runId?: string;
  /** Give up when Redis does not answer for this long (ms, default 10,000). */
  redisTimeoutMs?: number;
  /**
   * Partials per merge job (default 8): with more shards, merge jobs over groups of `mergeFanIn`
   * run on several workers and their results are merged in turn (a tree), so that no single job
   * decodes every partial. The tree depends on the shard count only, so the result does not
   * depend on the number of workers.
   */
  mergeFanIn?: number;
  onProgress?: (p: DistributedProgress) => void;
  /** Aborting cancels the run's pending jobs and rejects with AbortedError. */
  signal?: AbortSignal;
}

/** One unit of work of a pass: a shard of examples, or an NTK tile (rows [start, end) × columns). */
export interface WorkUnit extends ShardRange {
  readonly columns?: { start: number; end: number };
}

const POLL_MS = 200;
/** How long a joined run may have no merge job yet (its owner is enqueuing it). */
const MISSING_GRACE_MS = 5000;
export const SAFE_ID = /^[A-Za-z0-9_-]{1,100}$/;

/** Redis key through which one coordinator claims a run. */
const claimKey = (runId: string) => `nngeometry:run:${runId}`;

/** A BullMQ connection set for one coordinator. */
export interface Engine {
  redis: Redis;
  flows: FlowProducer;
  shardQueue: Queue;
  mergeQueue: Queue;
  store: PartialStore;
  JobClass: typeof Job;
}

export async function openEngine(redis: Redis, options: DistributedRunOptions): Promise<Engine> {
  const { FlowProducer, Queue, Job } = await import('bullmq');
  return {
    redis,
    flows: new FlowProducer({ connection: redis }),
    shardQueue: new Queue(SHARD_QUEUE, { connection: redis }),
    mergeQueue: new Queue(MERGE_QUEUE, { connection: redis }),
    store: new PartialStore(redis, options.store ?? null, options.maxRedisBytes ?? DEFAULT_MAX_REDIS_BYTES),
    JobClass: Job,
  };
}

export async function closeEngine(e: Engine): Promise<void> {
  // The connection is ours: closing must not wait on a Redis that is gone.
  await Promise.race([Promise.allSettled([e.flows.close(), e.shardQueue.close(), e.mergeQueue.close()]), new Promise((r) => setTimeout(r, 1000).unref())]);
}

/** What a coordinator follows across the passes of a run. */
export interface Follow {
  options: DistributedRunOptions;
  passes: number;
  retries: { count: number };
  workers: Set<string>;
  /** Name of the API call, for messages ('distributedFIM'). */
  where: string;
}

/** Job id of merge node `node` of run `runId` (the root is the run id itself). */
const mergeJobId = (runId: string, node: MergeNode) => (node.level === 0 ? runId : `${runId}-m${node.level}-${String(node.index).padStart(4, '0')}`);

/** Ids of every job of a run whose units and merge tree are given. */
function jobIds(engine: Engine, runId: string, units: ReadonlyArray<WorkUnit>, fanIn: number): Array<{ queue: Queue; id: string }> {
  const merges: Array<{ queue: Queue; id: string }> = [];
  const walk = (node: MergeNode) => {
    merges.push({ queue: engine.mergeQueue, id: mergeJobId(runId, node) });
    node.children.forEach((c) => typeof c !== 'number' && walk(c));
  };
  walk(mergeTree(units.length, fanIn));
  return [...units.map((s) => ({ queue: engine.shardQueue, id: `${runId}-${s.id}` })), ...merges];
}

/** Enqueues (or joins) the flow of one pass and waits for its merged result. */
export async function runPass(engine: Engine, pass: PassDefinition, units: WorkUnit[], runId: string, passNumber: number, follow: Follow): Promise<{ result: MergeResult; bytes: Uint8Array; reused: boolean }> {
  const { options } = follow;
  const keepSeconds = options.keepSeconds ?? 3600;
  const fanIn = options.mergeFanIn ?? 8;
  const common = { runId, pass, storeDirectory: options.store === undefined ? null : resolve(options.store), maxRedisBytes: options.maxRedisBytes ?? DEFAULT_MAX_REDIS_BYTES };
  const existing = await engine.JobClass.fromId<MergeJobData, MergeResult>(engine.mergeQueue, runId);
  const existingState = existing ? await existing.getState() : null;
  if (existing && existingState === 'failed') await removeRun(engine, runId, units, fanIn);
  // One coordinator claims the run (SET NX); the others join it and only wait for its merge.
  const claimed = (await engine.redis.set(claimKey(runId), String(process.pid), 'EX', keepSeconds, 'NX')) === 'OK';
  const reused = !claimed || (existing !== undefined && existingState !== 'failed');
  if (!reused) {
    const attempts = options.attempts ?? 3;
    const retry = { attempts, backoff: { type: 'exponential', delay: options.backoffMs ?? 1000 }, removeOnFail: false };
    const flowOf = (node: MergeNode): FlowJob => ({
      name: 'merge',
      queueName: MERGE_QUEUE,
      data: { ...common, shards: node.children.length, first: node.first, node: node.level === 0 ? null : { level: node.level, index: node.index }, keepSeconds } satisfies MergeJobData,
      opts: { jobId: mergeJobId(runId, node), ...retry, removeOnComplete: { age: keepSeconds }, ...(node.level === 0 ? {} : { failParentOnFailure: true }) },
      children: node.children.map((c): FlowJob => {
        if (typeof c !== 'number') return flowOf(c);
        const s = units[c]!;
        return {
          name: 'shard',
          queueName: SHARD_QUEUE,
          data: { ...common, index: s.index, shard: s.id, start: s.start, end: s.end, ...(s.columns ? { columns: s.columns } : {}) } satisfies ShardJobData,
          opts: { jobId: `${runId}-${s.id}`, ...retry, failParentOnFailure: true, removeOnComplete: { age: keepSeconds } },
        };
      }),
    });
    await engine.flows.add(flowOf(mergeTree(units.length, fanIn)));
  }
  try {
    const result = await waitForMerge(engine, runId, units, fanIn, passNumber, follow);
    const bytes = await engine.store.get(result.result);
    for (const s of result.shards) for (const w of s.workers ?? [s.worker]) follow.workers.add(w);
    return { result, bytes, reused };
  } catch (e) {
    // A failed or cancelled run leaves no job and no partial behind (a lost Redis keeps them: rerun to resume).
    if (!(e instanceof DistributedError && e.message.includes('stopped answering'))) await removeRun(engine, runId, units, fanIn).catch(() => undefined);
    throw e;
  }
}

async function waitForMerge(engine: Engine, runId: string, units: WorkUnit[], fanIn: number, passNumber: number, follow: Follow): Promise<MergeResult> {
  const { options, where } = follow;
  const timeout = options.redisTimeoutMs ?? 10_000;
  const total = units.reduce((a, s) => a + s.end - s.start, 0);
  let silentSince: number | null = null;
  let missingSince: number | null = null;
  let lastProgress = 0;
  for (;;) {
    if (options.signal?.aborted) throw new AbortedError(`${where}: run ${runId} was cancelled; its pending jobs were removed`);
    try {
      const parent = await engine.JobClass.fromId<MergeJobData, MergeResult>(engine.mergeQueue, runId);
      if (!parent) {
        // A joined run whose owner has claimed it but not enqueued it yet: wait a little.
        missingSince ??= performance.now();
        if (performance.now() - missingSince < MISSING_GRACE_MS) {
          await new Promise((r) => setTimeout(r, POLL_MS));
          continue;
        }
        throw new DistributedError(`${where}: run ${runId} disappeared from Redis (cancelled by another coordinator, or Redis was flushed)`);
      }
      const state = await parent.getState();
      const now = performance.now();
      if (state === 'completed' || state === 'failed' || now - lastProgress > 500) {
        lastProgress = now;
        await reportProgress(engine, runId, units, total, passNumber, follow);
      }
      if (state === 'completed') {
        // Read again: the job may have completed between reading it and reading its state.
        const done = await engine.JobClass.fromId<MergeJobData, MergeResult>(engine.mergeQueue, runId);
        if (done?.returnvalue) return done.returnvalue;
      }
      if (state === 'failed') throw await failure(engine, runId, units, fanIn, parent.failedReason, where);
      silentSince = null;
    } catch (e) {
      if (e instanceof DistributedError || e instanceof AbortedError) throw e;
      silentSince ??= performance.now();
      if (performance.now() - silentSince > timeout) {
        throw new DistributedError(`${where}: Redis at ${redisLabel(options.redis)} stopped answering during run ${runId} (${(e as Error).message}); run the same command again to resume once it is back`);
      }
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function reportProgress(engine: Engine, runId: string, units: WorkUnit[], total: number, passNumber: number, follow: Follow): Promise<void> {
  let examplesDone = 0;
  let shardsDone = 0;
  let retries = 0;
  const workers = new Set<string>();
  for (const s of units) {
    const job = await engine.JobClass.fromId<ShardJobData>(engine.shardQueue, `${runId}-${s.id}`);
    if (!job) continue;
    retries += Math.max(0, (job.attemptsStarted ?? 0) - 1);
    const progress = job.progress as Partial<ShardProgress> | number;
    if (typeof progress === 'object' && progress?.worker) workers.add(progress.worker);
    if (job.finishedOn && !job.failedReason) {
      shardsDone++;
      examplesDone += s.end - s.start;
      const value = job.returnvalue as { worker?: string } | null;
      if (value?.worker) workers.add(value.worker);
    } else if (typeof progress === 'object' && typeof progress?.examplesDone === 'number') {
      examplesDone += Math.min(progress.examplesDone, s.end - s.start);
    }
  }
  follow.retries.count = Math.max(follow.retries.count, retries);
  follow.options.onProgress?.({ pass: passNumber, passes: follow.passes, examplesDone, examplesTotal: total, shardsDone, shards: units.length, retries, workers: workers.size });
}

/** The error of a failed run: the failed shard's own error when there is one. */
async function failure(engine: Engine, runId: string, units: WorkUnit[], fanIn: number, parentReason: string, where: string): Promise<DistributedError> {
  for (const s of units) {
    const job = await engine.JobClass.fromId(engine.shardQueue, `${runId}-${s.id}`);
    if (job && (await job.getState()) === 'failed') {
      const what = s.columns ? `tile ${s.id} (examples ${s.start}–${s.end - 1} × ${s.columns.start}–${s.columns.end - 1})` : `shard ${s.id} (examples ${s.start}–${s.end - 1})`;
      return new DistributedError(`${where}: ${what} failed after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'}: ${job.failedReason}`);
    }
  }
  // Deepest merges first: a failed merge fails its parents, whose reasons only name it.
  for (const { queue, id } of jobIds(engine, runId, units, fanIn).reverse()) {
    if (queue !== engine.mergeQueue || id === runId) continue;
    const job = await engine.JobClass.fromId(queue, id);
    if (job && (await job.getState()) === 'failed') return new DistributedError(`${where}: the merge ${id} of run ${runId} failed: ${job.failedReason}`);
  }
  return new DistributedError(`${where}: the merge of run ${runId} failed: ${parentReason}`);
}

/** Removes the run's jobs and partials; jobs still running are waited for (up to 10 s) and removed then. */
export async function removeRun(engine: Engine, runId: string, units: ReadonlyArray<WorkUnit>, fanIn: number): Promise<void> {
  const ids = jobIds(engine, runId, units, fanIn);
  const deadline = performance.now() + 10_000;
  for (;;) {
    let left = 0;
    for (const { queue, id } of ids) {
      const job = await engine.JobClass.fromId(queue, id);
      if (!job) continue;
      try {
        await job.remove({ removeChildren: false });
      } catch {
        left++; // locked by a worker: it finishes soon
      }
    }
    if (left === 0 || performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  await engine.store.removeRun(runId);
  await engine.redis.del(claimKey(runId));
}
