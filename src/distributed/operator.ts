/**
 * The matrix-free Fisher as a distributed linear operator: every product F v is one flow, whose
 * shards compute (1/n_s) Σ_{i∈s} J_iᵀ H_i J_i v on their examples (PMatImplicit.mv) and whose
 * merge takes the example-weighted mean, F v = Σ_s (n_s/n) F_s v. The spectral tools (eigsh,
 * estimateTrace, spectralDensity) take it as they take PMatImplicit. Each product pays one flow
 * round trip (enqueue, the vector and the partial products through the store, the merge, the
 * coordinator's polling: measured in docs/distributed.md), so it pays off when one pass over the
 * data takes much longer than that. Node only.
 */
import type { Redis } from 'ioredis';
import { tf } from '../tf.js';
import { DistributedError } from '../errors.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { deserialize, serialize } from '../persistence/index.js';
import { PVector } from '../object/pvector.js';
import { checkVector } from '../object/pspace/pmat.js';
import type { ParameterOperator } from '../spectral/operator.js';
import { runIdFor, sha256 } from './hash.js';
import { connectRedis } from './redis.js';
import { planShards } from './shard-plan.js';
import { exampleCount } from './shard-data.js';
import { SAFE_ID, closeEngine, openEngine, removeRun, runPass, type DistributedRunOptions, type Engine, type Follow } from './flow.js';
import { openRunInputs } from './run-inputs.js';
import type { PassDefinition } from './protocol.js';

export interface DistributedOperatorOptions extends Omit<DistributedRunOptions, 'runId' | 'keepSeconds'> {
  /** model.json path every worker can read (shared storage). */
  model: string;
  /** Data file every worker can read. */
  data: string;
  /** FIM variant (default 'classif_logits'; not 'empirical'). */
  variant?: string;
  sigma2?: number;
  batchSize?: number;
  count?: number;
  scale?: number;
  layerIds?: string[];
  /** Number of shards of every product (default 8). */
  shards?: number;
  backend?: string;
}

/** The distributed matrix-free Fisher: `mv` is one distributed pass; `close()` releases the connection and the model. */
export interface DistributedOperator extends ParameterOperator {
  readonly model: tf.LayersModel;
  readonly examples: number;
  readonly shards: number;
  /** Products computed so far, shard attempts beyond the first, and the workers seen. */
  readonly stats: { products: number; retries: number; workers: string[]; seconds: number };
  mv(v: PVector): Promise<PVector>;
  close(): Promise<void>;
}

/**
 * F as a linear operator whose products run on the workers serving `redis`, each in `shards`
 * shards (see the file header for when this pays off).
 *
 * @example
 * const F = await distributedOperator({ redis: 'redis://localhost:6379', model: '/shared/model.json', data: '/shared/x.idx', shards: 16 });
 * try { const { values } = await eigsh(F, { k: 5 }); } finally { await F.close(); }
 */
export async function distributedOperator(options: DistributedOperatorOptions): Promise<DistributedOperator> {
  const batchSize = options.batchSize ?? 64;
  const shardCount = options.shards ?? 8;
  for (const [k, v] of [['batchSize', batchSize], ['shards', shardCount], ['attempts', options.attempts ?? 3]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new DistributedError(`distributedOperator: '${k}' must be a positive integer, received ${String(v)}`);
  }
  if (options.variant === 'empirical') throw new DistributedError(`distributedOperator: the 'empirical' variant needs labels; use one of the closed-form variants`);
  const { modelPath, dataPath, modelHash: mHash, dataHash: dHash, model } = await openRunInputs(options.model, options.data);
  let redis: Redis | null = null;
  let engine: Engine | null = null;
  try {
    const layerIds = options.layerIds ?? LayerCollection.fromModel(model).ids();
    const lc = LayerCollection.fromLayers(model, layerIds);
    const base: PassDefinition = {
      model: modelPath, modelHash: mHash, data: dataPath, dataHash: dHash, scale: options.scale ?? null, batchSize, layerIds, compute: 'implicit-mv',
      variant: options.variant ?? 'classif_logits', ...(options.sigma2 !== undefined ? { sigma2: options.sigma2 } : {}), seed: 0, backend: options.backend ?? tf.getBackend(),
    };
    const available = await exampleCount(base);
    const n = Math.min(options.count ?? available, available);
    const shards = planShards(n, batchSize, shardCount);
    redis = await connectRedis(options.redis, { blocking: false, where: 'distributedOperator' });
    engine = await openEngine(redis, options);
    const follow: Follow = { options, passes: 1, retries: { count: 0 }, workers: new Set(), where: 'distributedOperator' };
    const fanIn = options.mergeFanIn ?? 8;
    const stats = { products: 0, retries: 0, workers: [] as string[], seconds: 0 };
    const open = { engine, redis };
    let closed = false;
    const op: DistributedOperator = {
      layerCollection: lc, model, examples: n, shards: shards.length, stats,
      async mv(v: PVector): Promise<PVector> {
        if (closed) throw new DistributedError('distributedOperator: closed; create another one');
        checkVector(v, lc, 'distributedOperator.mv');
        const t0 = performance.now();
        const bytes = serialize(v);
        // The run id of a product is its vector's hash: the same product asked twice is computed once.
        const runId = runIdFor('mv', { ...base, vector: sha256(bytes), shards: shards.map((s) => [s.start, s.end]) });
        if (!SAFE_ID.test(runId)) throw new DistributedError(`distributedOperator: bad run id ${runId}`);
        const vector = await open.engine.store.put(runId, 'vector', bytes, 3600);
        try {
          const { bytes: out } = await runPass(open.engine, { ...base, vector }, shards, runId, 1, { ...follow, options: { ...options, keepSeconds: 3600 } });
          const result = deserialize(out, model);
          if (!(result instanceof PVector)) throw new DistributedError(`distributedOperator: run ${runId} returned a ${result.constructor.name}, not a PVector`);
          stats.products++;
          stats.retries = follow.retries.count;
          stats.workers = [...follow.workers].sort();
          stats.seconds += (performance.now() - t0) / 1000;
          return result;
        } finally {
          // Nothing of a product is kept: a spectral run makes hundreds.
          await removeRun(open.engine, runId, shards, fanIn).catch(() => undefined);
        }
      },
      async close(): Promise<void> {
        if (closed) return;
        closed = true;
        await closeEngine(open.engine);
        open.redis.disconnect();
        model.dispose();
      },
    };
    return op;
  } catch (e) {
    if (engine) await closeEngine(engine);
    redis?.disconnect();
    model.dispose();
    throw e;
  }
}
