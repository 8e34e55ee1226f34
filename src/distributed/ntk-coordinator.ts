/**
 * The coordinator of a distributed empirical NTK: the examples are cut into batch-aligned blocks,
 * one job per tile of example pairs (I, J), I ≤ J (ntk-tiles.ts), one merge job places the tiles
 * and their transposes into K, and the coordinator loads K (and centers it when asked, on the
 * whole kernel). The result equals `GramMatrix` on the same batches entry for entry. Node only.
 */
import type { Redis } from 'ioredis';
import { tf } from '../tf.js';
import { DistributedError } from '../errors.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { FMatDense } from '../object/fspace/dense.js';
import { centerKernel } from '../object/fspace/kernel-blocks.js';
import { runIdFor } from './hash.js';
import { connectRedis } from './redis.js';
import { exampleCount } from './shard-data.js';
import { ntkTilePlan } from './ntk-tiles.js';
import { closeEngine, openEngine, runPass, type DistributedRunOptions, type Engine, type Follow } from './flow.js';
import { checkRunId, openRunInputs } from './run-inputs.js';
import type { PassDefinition } from './protocol.js';

export interface DistributedNTKOptions extends DistributedRunOptions {
  /** model.json path every worker can read (shared storage). */
  model: string;
  /** Data file (IDX, CSV or JSON, as `nngeometry ntk` reads it) every worker can read. */
  data: string;
  /** Use only the first `count` examples. */
  count?: number;
  /** Examples per batch (default 64); blocks of examples are whole batches. */
  batchSize?: number;
  /** Multiply inputs by this (default 1/255 for uint8 IDX data, 1 otherwise). */
  scale?: number;
  /** Center the per-example gradients (as `GramMatrix`'s `centering`). */
  centering?: boolean;
  /** Layers of the layer collection (default: every supported layer of the model). */
  layerIds?: string[];
  /** At least this many tiles (default 8): B blocks with B(B+1)/2 ≥ shards. */
  shards?: number;
  /** tfjs backend of the workers (default: this process's backend). */
  backend?: string;
}

export interface DistributedNTKResult {
  /** K as [O, n, O, n], on `model`'s layers (dispose both). */
  kernel: FMatDense;
  model: tf.LayersModel;
  runId: string;
  examples: number;
  /** Number of tiles. */
  shards: number;
  retries: number;
  workers: string[];
  reused: boolean;
  seconds: number;
}

/** Largest kernel assembled ((O·n)² float64 entries), as the local `ntk` command allows. */
const MAX_KERNEL_BYTES = 1e9;

/**
 * The empirical NTK K[o,i,o',j] = ⟨∂f_o(x_i)/∂θ, ∂f_o'(x_j)/∂θ⟩ of a model on a data set,
 * computed by the workers serving `redis` in tiles of example pairs and assembled by placing
 * tiles (K is symmetric: tiles (I, J) with I ≤ J suffice). Equal to `GramMatrix` on the same
 * batches.
 *
 * @example
 * const { kernel, model } = await distributedNTK({ redis: 'redis://localhost:6379', model: '/shared/model.json', data: '/shared/x.idx', count: 2000, shards: 36 });
 * console.log(kernel.trace());
 * kernel.dispose(); model.dispose();
 */
export async function distributedNTK(options: DistributedNTKOptions): Promise<DistributedNTKResult> {
  const t0 = performance.now();
  const batchSize = options.batchSize ?? 64;
  const minTiles = options.shards ?? 8;
  for (const [k, v] of [['batchSize', batchSize], ['shards', minTiles], ['attempts', options.attempts ?? 3]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new DistributedError(`distributedNTK: '${k}' must be a positive integer, received ${String(v)}`);
  }
  if (options.count !== undefined && !(Number.isInteger(options.count) && options.count >= 1)) throw new DistributedError(`distributedNTK: 'count' must be a positive integer, received ${String(options.count)}`);
  checkRunId('distributedNTK', options.runId);
  const { modelPath, dataPath, modelHash: mHash, dataHash: dHash, model } = await openRunInputs(options.model, options.data);
  let redis: Redis | null = null;
  let engine: Engine | null = null;
  try {
    const layerIds = options.layerIds ?? LayerCollection.fromModel(model).ids();
    const lc = LayerCollection.fromLayers(model, layerIds);
    const outputs = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
    const probe: PassDefinition = {
      model: modelPath, modelHash: mHash, data: dataPath, dataHash: dHash, scale: options.scale ?? null, batchSize, layerIds,
      compute: 'ntk-tile', variant: 'ntk', seed: 0, backend: options.backend ?? tf.getBackend(),
    };
    const available = await exampleCount(probe);
    const n = Math.min(options.count ?? available, available);
    const size = outputs * n;
    if (8 * size * size > MAX_KERNEL_BYTES) throw new DistributedError(`distributedNTK: the kernel would hold (O·n)² = ${size}² float64 entries (${8 * size * size} bytes); lower 'count'`);
    const pass: PassDefinition = { ...probe, kernel: { outputs, examples: n, centering: false } };
    const tiles = ntkTilePlan(n, batchSize, minTiles);
    redis = await connectRedis(options.redis, { blocking: false, where: 'distributedNTK' });
    engine = await openEngine(redis, options);
    const follow: Follow = { options, passes: 1, retries: { count: 0 }, workers: new Set(), where: 'distributedNTK' };
    const runId = options.runId ?? runIdFor('ntk', { ...pass, tiles: tiles.map((t) => [t.start, t.end, t.columns!.start, t.columns!.end]) });
    // One merge job places every tile (a tree would only copy the kernel more often).
    const done = await runPass(engine, pass, tiles, runId, 1, { ...follow, options: { ...options, mergeFanIn: Math.max(2, tiles.length) } });
    if (done.bytes.byteLength !== 8 * size * size) throw new DistributedError(`distributedNTK: the merged kernel of run ${runId} has ${done.bytes.byteLength} bytes, expected ${8 * size * size}`);
    const values = new Float64Array(done.bytes.slice().buffer);
    if (options.centering) centerKernel(values, outputs, n);
    const kernel = new FMatDense(lc, outputs, n, values);
    return { kernel, model, runId, examples: n, shards: tiles.length, retries: follow.retries.count, workers: [...follow.workers].sort(), reused: done.reused, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    if (engine) await closeEngine(engine);
    redis?.disconnect();
  }
}
