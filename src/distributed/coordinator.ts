/**
 * The coordinator of a distributed pass: it checks that the model and data are readable and
 * hashes them, splits the examples into batch-aligned shards, enqueues one BullMQ flow (a merge
 * job whose children are the shard jobs; BullMQ runs the merge when every shard succeeded),
 * follows it, and loads the merged matrix. The run id derives from everything that defines the
 * result (model and data hashes, representation, variant, seed, batch size, shards), so a
 * request made twice joins the first one's jobs instead of computing them again. Node only.
 */
import { resolve } from 'node:path';
import type { FlowProducer, Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { tf } from '../tf.js';
import { AbortedError, DistributedError } from '../errors.js';
import { loadModel } from '../io/load-model.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { deserialize, serialize } from '../persistence/index.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatLowRank } from '../object/pspace/low-rank.js';
import { PMatQuasiDiag } from '../object/pspace/quasi-diag.js';
import { PMatEKFAC, kfacEigenBlocks } from '../object/pspace/ekfac.js';
import type { PMatBase, Representation } from '../object/pspace/pmat.js';
import { dataHash, modelHash, sha256 } from './hash.js';
import { DEFAULT_MAX_REDIS_BYTES, PartialStore } from './partial-store.js';
import { connectRedis, redisLabel } from './redis.js';
import { planShards, type ShardRange } from './shard-plan.js';
import { exampleCount } from './shard-data.js';
import { DISTRIBUTED_REPRESENTATIONS, MERGE_QUEUE, SHARD_QUEUE, type DistributedRepresentation, type MergeJobData, type MergeResult, type PassDefinition, type ShardJobData, type ShardProgress } from './protocol.js';

/** Where a distributed run stands (passed to `onProgress` a few times a second). */
export interface DistributedProgress {
  /** 1, or 2 for EKFAC's diagonal pass. */
  pass: number;
  passes: number;
  examplesDone: number;
  examplesTotal: number;
  shardsDone: number;
  shards: number;
  /** Shard attempts beyond the first (failures and re-runs after a dead worker). */
  retries: number;
  /** Distinct workers seen on this pass. */
  workers: number;
}

export interface DistributedFIMOptions {
  /** redis://HOST:PORT that the coordinator and every worker reach. */
  redis: string;
  /** model.json path every worker can read (shared storage). */
  model: string;
  /** Data file (IDX, CSV or JSON, as `nngeometry fim` reads it) every worker can read. */
  data: string;
  /** Labels file (the 'empirical' variant), when the data has none. */
  labels?: string;
  /** PMatDiag, PMatKFAC, PMatEKFAC (with its updateDiag as a second pass), PMatDense, PMatBlockDiag, PMatLowRank or PMatQuasiDiag. */
  representation: Representation<PMatBase>;
  /** FIM variant (default 'classif_logits'). */
  variant?: string;
  loss?: 'cross_entropy' | 'mse';
  sigma2?: number;
  /** Monte-Carlo estimate with this many sampled labels per example (shard k samples with shardSeed(seed, k)). */
  trials?: number;
  /** Monte-Carlo seed (default 0). */
  seed?: number;
  /** Examples per batch (default 64); shards are whole batches. */
  batchSize?: number;
  /** Use only the first `count` examples. */
  count?: number;
  /** Multiply inputs by this (default 1/255 for uint8 IDX data, 1 otherwise). */
  scale?: number;
  /** Layers of the layer collection (default: every supported layer of the model). */
  layerIds?: string[];
  /** Number of shards (default 8; fewer when there are fewer batches). */
  shards?: number;
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
  /** tfjs backend of the workers (default: this process's backend). */
  backend?: string;
  onProgress?: (p: DistributedProgress) => void;
  /** Aborting cancels the run's pending jobs and rejects with AbortedError. */
  signal?: AbortSignal;
}

export interface DistributedFIMResult<M extends PMatBase = PMatBase> {
  /** The merged matrix, on `model` (dispose both). */
  matrix: M;
  model: tf.LayersModel;
  runId: string;
  examples: number;
  shards: number;
  retries: number;
  /** Workers whose shard results were merged (host:pid). */
  workers: string[];
  /** Whether an earlier identical request's result was reused. */
  reused: boolean;
  seconds: number;
}

const POLL_MS = 200;
/** How long a joined run may have no merge job yet (its owner is enqueuing it). */
const MISSING_GRACE_MS = 5000;

/** Redis key through which one coordinator claims a run. */
const claimKey = (runId: string) => `nngeometry:run:${runId}`;
const SAFE_ID = /^[A-Za-z0-9_-]{1,100}$/;

/** The classes a shard recomputes by name: a representation with options (`PMatKFAC.with(…)`) would be recomputed without them. */
const SHARDABLE: Record<DistributedRepresentation, Representation<PMatBase>> = { PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag };

function representationName(r: Representation<PMatBase>): DistributedRepresentation {
  const name = r?.representationName;
  if ((DISTRIBUTED_REPRESENTATIONS as readonly string[]).includes(name) && SHARDABLE[name as DistributedRepresentation] !== r) {
    throw new DistributedError(`distributedFIM: ${name} with options (such as .with({ kfacType })) cannot be computed in shards; pass the class itself (${name})`);
  }
  if (!(DISTRIBUTED_REPRESENTATIONS as readonly string[]).includes(name)) {
    throw new DistributedError(
      `distributedFIM: representation ${name ?? String(r)} cannot be computed in shards (supported: ${DISTRIBUTED_REPRESENTATIONS.join(', ')}; PMatMixed and PMatImplicit have no mergeable stored form)`,
    );
  }
  return name as DistributedRepresentation;
}

/** Everything a run of `pass` over `shards` produces, as JSON with sorted keys, hashed. */
function runIdOf(pass: PassDefinition, shards: ReadonlyArray<ShardRange>): string {
  const text = JSON.stringify({ ...pass, shards: shards.map((s) => [s.start, s.end]) }, Object.keys({ ...pass, shards: 0 }).sort());
  return `run-${sha256(text).slice(0, 20)}`;
}

/** A BullMQ connection set for one coordinator. */
interface Engine {
  redis: Redis;
  flows: FlowProducer;
  shardQueue: Queue;
  mergeQueue: Queue;
  store: PartialStore;
  JobClass: typeof Job;
}

/**
 * The FIM of a model on a data set, computed by the workers serving `redis` (`nngeometry
 * worker`) in `shards` shards and merged exactly (example-weighted means in shard order). The
 * result equals the single-process `FIM` on the same batches to float64 rounding when shards
 * span whole 16-batch windows, to float32 rounding otherwise.
 *
 * @example
 * const { matrix, model } = await distributedFIM({ redis: 'redis://localhost:6379', model: '/shared/model.json', data: '/shared/x.csv', representation: PMatKFAC, shards: 32 });
 * console.log(matrix.trace());
 * matrix.dispose(); model.dispose();
 */
export async function distributedFIM<M extends PMatBase = PMatBase>(options: DistributedFIMOptions): Promise<DistributedFIMResult<M>> {
  const t0 = performance.now();
  const name = representationName(options.representation);
  const batchSize = options.batchSize ?? 64;
  const shardCount = options.shards ?? 8;
  for (const [k, v] of [['batchSize', batchSize], ['shards', shardCount], ['attempts', options.attempts ?? 3]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new DistributedError(`distributedFIM: '${k}' must be a positive integer, received ${String(v)}`);
  }
  if (options.runId !== undefined && !SAFE_ID.test(options.runId)) throw new DistributedError(`distributedFIM: 'runId' must be 1–100 letters, digits, '-' or '_', received '${options.runId}'`);
  const modelPath = resolve(options.model);
  const dataPath = resolve(options.data);
  const labelsPath = options.labels === undefined ? undefined : resolve(options.labels);
  const [mHash, dHash] = await Promise.all([modelHash(modelPath), dataHash(dataPath, labelsPath)]);
  const model = await loadModel(modelPath);
  let redis: Redis | null = null;
  let engine: Engine | null = null;
  try {
    const layerIds = options.layerIds ?? LayerCollection.fromModel(model).ids();
    const lc = LayerCollection.fromLayers(model, layerIds);
    const base: PassDefinition = {
      model: modelPath, modelHash: mHash, data: dataPath, dataHash: dHash, ...(labelsPath ? { labels: labelsPath } : {}),
      scale: options.scale ?? null, batchSize, layerIds, compute: name === 'PMatEKFAC' ? 'PMatKFAC' : name,
      variant: options.variant ?? 'classif_logits', ...(options.loss ? { loss: options.loss } : {}), ...(options.sigma2 !== undefined ? { sigma2: options.sigma2 } : {}),
      ...(options.trials ? { trials: options.trials } : {}), seed: options.seed ?? 0, backend: options.backend ?? tf.getBackend(),
    };
    const available = await exampleCount(base);
    const n = Math.min(options.count ?? available, available);
    const shards = planShards(n, batchSize, shardCount);
    redis = await connectRedis(options.redis, { blocking: false, where: 'distributedFIM' });
    engine = await openEngine(redis, options);
    const passes = name === 'PMatEKFAC' ? 2 : 1;
    const retries = { count: 0 };
    const workers = new Set<string>();
    const follow = { options, passes, retries, workers };
    const suffix = options.runId ?? runIdOf(base, shards);
    const first = await runPass(engine, base, shards, `${suffix}${passes === 2 ? '-kfac' : ''}`, 1, follow);
    let matrix: PMatBase = deserialize(first.bytes, model) as PMatBase;
    let reused = first.reused;
    if (name === 'PMatEKFAC') {
      // The eigenbasis of the merged KFAC factors (George et al. 2018), then the exact diagonal in it.
      const kfac = matrix as PMatKFAC;
      const basis = new PMatEKFAC(lc, kfacEigenBlocks(lc.layers.map((e) => kfac.layerFactors(e.id))), 'kfac', null);
      kfac.dispose();
      let basisBytes: Uint8Array;
      try {
        basisBytes = serialize(basis);
      } finally {
        basis.dispose();
      }
      const second = `${suffix}-diag`;
      const basisRef = await engine.store.put(second, 'basis', basisBytes, options.keepSeconds ?? 3600);
      const diag = await runPass(engine, { ...base, compute: 'ekfac-diagonal', basis: basisRef }, shards, second, 2, follow);
      matrix = deserialize(diag.bytes, model) as PMatBase;
      reused &&= diag.reused;
    }
    return { matrix: matrix as M, model, runId: suffix, examples: n, shards: shards.length, retries: retries.count, workers: [...workers].sort(), reused, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    if (engine) await closeEngine(engine);
    redis?.disconnect();
  }
}

async function openEngine(redis: Redis, options: DistributedFIMOptions): Promise<Engine> {
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

async function closeEngine(e: Engine): Promise<void> {
  // The connection is ours: closing must not wait on a Redis that is gone.
  await Promise.race([Promise.allSettled([e.flows.close(), e.shardQueue.close(), e.mergeQueue.close()]), new Promise((r) => setTimeout(r, 1000).unref())]);
}

interface Follow {
  options: DistributedFIMOptions;
  passes: number;
  retries: { count: number };
  workers: Set<string>;
}

/** Enqueues (or joins) the flow of one pass and waits for its merged result. */
async function runPass(engine: Engine, pass: PassDefinition, shards: ShardRange[], runId: string, passNumber: number, follow: Follow): Promise<{ bytes: Uint8Array; reused: boolean }> {
  const { options } = follow;
  const keepSeconds = options.keepSeconds ?? 3600;
  const common = { runId, pass, storeDirectory: options.store === undefined ? null : resolve(options.store), maxRedisBytes: options.maxRedisBytes ?? DEFAULT_MAX_REDIS_BYTES };
  const existing = await engine.JobClass.fromId<MergeJobData, MergeResult>(engine.mergeQueue, runId);
  const existingState = existing ? await existing.getState() : null;
  if (existing && existingState === 'failed') await removeRun(engine, runId, shards);
  // One coordinator claims the run (SET NX); the others join it and only wait for its merge.
  const claimed = (await engine.redis.set(claimKey(runId), String(process.pid), 'EX', keepSeconds, 'NX')) === 'OK';
  const reused = !claimed || (existing !== undefined && existingState !== 'failed');
  if (!reused) {
    const attempts = options.attempts ?? 3;
    await engine.flows.add({
      name: 'merge',
      queueName: MERGE_QUEUE,
      data: { ...common, shards: shards.length, keepSeconds } satisfies MergeJobData,
      opts: { jobId: runId, attempts, backoff: { type: 'exponential', delay: options.backoffMs ?? 1000 }, removeOnComplete: { age: keepSeconds }, removeOnFail: false },
      children: shards.map((s) => ({
        name: 'shard',
        queueName: SHARD_QUEUE,
        data: { ...common, index: s.index, shard: s.id, start: s.start, end: s.end } satisfies ShardJobData,
        opts: {
          jobId: `${runId}-${s.id}`, attempts, backoff: { type: 'exponential', delay: options.backoffMs ?? 1000 },
          failParentOnFailure: true, removeOnComplete: { age: keepSeconds }, removeOnFail: false,
        },
      })),
    });
  }
  try {
    const result = await waitForMerge(engine, runId, shards, passNumber, follow);
    const bytes = await engine.store.get(result.result);
    for (const s of result.shards) follow.workers.add(s.worker);
    return { bytes, reused };
  } catch (e) {
    // A failed or cancelled run leaves no job and no partial behind (a lost Redis keeps them: rerun to resume).
    if (!(e instanceof DistributedError && e.message.includes('stopped answering'))) await removeRun(engine, runId, shards).catch(() => undefined);
    throw e;
  }
}

async function waitForMerge(engine: Engine, runId: string, shards: ShardRange[], passNumber: number, follow: Follow): Promise<MergeResult> {
  const { options } = follow;
  const timeout = options.redisTimeoutMs ?? 10_000;
  const total = shards.reduce((a, s) => a + s.end - s.start, 0);
  let silentSince: number | null = null;
  let missingSince: number | null = null;
  let lastProgress = 0;
  for (;;) {
    if (options.signal?.aborted) throw new AbortedError(`distributedFIM: run ${runId} was cancelled; its pending jobs were removed`);
    try {
      const parent = await engine.JobClass.fromId<MergeJobData, MergeResult>(engine.mergeQueue, runId);
      if (!parent) {
        // A joined run whose owner has claimed it but not enqueued it yet: wait a little.
        missingSince ??= performance.now();
        if (performance.now() - missingSince < MISSING_GRACE_MS) {
          await new Promise((r) => setTimeout(r, POLL_MS));
          continue;
        }
        throw new DistributedError(`distributedFIM: run ${runId} disappeared from Redis (cancelled by another coordinator, or Redis was flushed)`);
      }
      const state = await parent.getState();
      const now = performance.now();
      if (state === 'completed' || state === 'failed' || now - lastProgress > 500) {
        lastProgress = now;
        await reportProgress(engine, runId, shards, total, passNumber, follow);
      }
      if (state === 'completed') {
        // Read again: the job may have completed between reading it and reading its state.
        const done = await engine.JobClass.fromId<MergeJobData, MergeResult>(engine.mergeQueue, runId);
        if (done?.returnvalue) return done.returnvalue;
      }
      if (state === 'failed') throw await failure(engine, runId, shards, parent.failedReason);
      silentSince = null;
    } catch (e) {
      if (e instanceof DistributedError || e instanceof AbortedError) throw e;
      silentSince ??= performance.now();
      if (performance.now() - silentSince > timeout) {
        throw new DistributedError(`distributedFIM: Redis at ${redisLabel(options.redis)} stopped answering during run ${runId} (${(e as Error).message}); run the same command again to resume once it is back`);
      }
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function reportProgress(engine: Engine, runId: string, shards: ShardRange[], total: number, passNumber: number, follow: Follow): Promise<void> {
  let examplesDone = 0;
  let shardsDone = 0;
  let retries = 0;
  const workers = new Set<string>();
  for (const s of shards) {
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
  follow.options.onProgress?.({ pass: passNumber, passes: follow.passes, examplesDone, examplesTotal: total, shardsDone, shards: shards.length, retries, workers: workers.size });
}

/** The error of a failed run: the failed shard's own error when there is one. */
async function failure(engine: Engine, runId: string, shards: ShardRange[], parentReason: string): Promise<DistributedError> {
  for (const s of shards) {
    const job = await engine.JobClass.fromId(engine.shardQueue, `${runId}-${s.id}`);
    if (job && (await job.getState()) === 'failed') {
      return new DistributedError(`distributedFIM: shard ${s.id} (examples ${s.start}–${s.end - 1}) failed after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'}: ${job.failedReason}`);
    }
  }
  return new DistributedError(`distributedFIM: the merge of run ${runId} failed: ${parentReason}`);
}

/** Removes the run's jobs and partials; jobs still running are waited for (up to 10 s) and removed then. */
async function removeRun(engine: Engine, runId: string, shards: ShardRange[]): Promise<void> {
  const ids = [...shards.map((s) => ({ queue: engine.shardQueue, id: `${runId}-${s.id}` })), { queue: engine.mergeQueue, id: runId }];
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
