/**
 * The coordinator of a distributed pass: it checks that the model and data are readable and
 * hashes them, splits the examples into batch-aligned shards, enqueues one BullMQ flow (a merge
 * tree whose leaves are the shard jobs; BullMQ runs a merge when all its children succeeded),
 * follows it, and loads the merged matrix. The run id derives from everything that defines the
 * result (model and data hashes, representation, variant, seed, batch size, shards), so a
 * request made twice joins the first one's jobs instead of computing them again. Node only.
 */
import type { Redis } from 'ioredis';
import { tf } from '../tf.js';
import { DistributedError } from '../errors.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { deserialize, serialize } from '../persistence/index.js';
import type { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC, kfacEigenBlocks } from '../object/pspace/ekfac.js';
import { PMatMixed } from '../object/pspace/mixed.js';
import type { PMat, PMatBase, Representation } from '../object/pspace/pmat.js';
import { runIdFor } from './hash.js';
import { connectRedis } from './redis.js';
import { planShards, type ShardRange } from './shard-plan.js';
import { exampleCount } from './shard-data.js';
import { SHARDABLE, mixedGroups, namedMappingOf, type NamedMixedMapping } from './mixed-plan.js';
import { closeEngine, openEngine, runPass, type DistributedRunOptions, type Engine, type Follow } from './flow.js';
import { checkRunId, openRunInputs } from './run-inputs.js';
import { DISTRIBUTED_REPRESENTATIONS, type DistributedRepresentation, type PassDefinition } from './protocol.js';

export type { DistributedProgress } from './flow.js';

export interface DistributedFIMOptions extends DistributedRunOptions {
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
  /** tfjs backend of the workers (default: this process's backend). */
  backend?: string;
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

/** What `representation` asks the shards to compute: one representation by name, or a mixed mapping by names. */
function requested(r: Representation<PMatBase>): { name: DistributedRepresentation } | { mixed: NamedMixedMapping } {
  const name = r?.representationName;
  const mixed = r ? namedMappingOf(r) : null;
  if (mixed) return { mixed };
  if ((DISTRIBUTED_REPRESENTATIONS as readonly string[]).includes(name) && SHARDABLE[name as DistributedRepresentation] !== r) {
    throw new DistributedError(`distributedFIM: ${name} with options (such as .with({ kfacType })) cannot be computed in shards; pass the class itself (${name})`);
  }
  if (name === 'PMatMixed' || (typeof name === 'string' && !(DISTRIBUTED_REPRESENTATIONS as readonly string[]).includes(name) && name !== 'PMatImplicit')) {
    throw new DistributedError(
      `distributedFIM: representation ${name} cannot be computed in shards: a PMatMixed built with PMatMixed.fromMapping holds representation classes (functions), which cannot travel to workers; ` +
        `describe it by names instead, e.g. mixedRepresentation({ default: 'PMatBlockDiag', kronecker: 'PMatEKFAC' }) from nngeometry/distributed (supported names: ${DISTRIBUTED_REPRESENTATIONS.join(', ')})`,
    );
  }
  if (!(DISTRIBUTED_REPRESENTATIONS as readonly string[]).includes(name)) {
    throw new DistributedError(
      `distributedFIM: representation ${name ?? String(r)} cannot be computed in shards (supported: ${DISTRIBUTED_REPRESENTATIONS.join(', ')}, PMatEKFACBlockDiag and mixedRepresentation(…); PMatImplicit has no stored form)`,
    );
  }
  return { name: name as DistributedRepresentation };
}

/** Everything a run of `pass` over `shards` produces, hashed. */
function runIdOf(pass: PassDefinition, shards: ReadonlyArray<ShardRange>): string {
  return runIdFor('run', { ...pass, shards: shards.map((s) => [s.start, s.end]) });
}

/**
 * The FIM of a model on a data set, computed by the workers serving `redis` (`nngeometry
 * worker`) in `shards` shards and merged exactly (example-weighted means in shard order). The
 * result equals the single-process `FIM` on the same batches to float64 rounding when shards
 * span whole 16-batch windows, to float32 rounding otherwise. PMatMixed is computed from a
 * mapping by names (`mixedRepresentation`, or `PMatEKFACBlockDiag`), its EKFAC groups with
 * their `updateDiag` pass.
 *
 * @example
 * const { matrix, model } = await distributedFIM({ redis: 'redis://localhost:6379', model: '/shared/model.json', data: '/shared/x.csv', representation: PMatKFAC, shards: 32 });
 * console.log(matrix.trace());
 * matrix.dispose(); model.dispose();
 */
export async function distributedFIM<M extends PMatBase = PMatBase>(options: DistributedFIMOptions): Promise<DistributedFIMResult<M>> {
  const t0 = performance.now();
  const what = requested(options.representation);
  const batchSize = options.batchSize ?? 64;
  const shardCount = options.shards ?? 8;
  for (const [k, v] of [['batchSize', batchSize], ['shards', shardCount], ['attempts', options.attempts ?? 3], ['mergeFanIn', options.mergeFanIn ?? 8]] as const) {
    if (!Number.isInteger(v) || v < (k === 'mergeFanIn' ? 2 : 1)) throw new DistributedError(`distributedFIM: '${k}' must be an integer ≥ ${k === 'mergeFanIn' ? 2 : 1}, received ${String(v)}`);
  }
  checkRunId('distributedFIM', options.runId);
  const { modelPath, dataPath, labelsPath, modelHash: mHash, dataHash: dHash, model } = await openRunInputs(options.model, options.data, options.labels);
  let redis: Redis | null = null;
  let engine: Engine | null = null;
  try {
    const layerIds = options.layerIds ?? LayerCollection.fromModel(model).ids();
    const lc = LayerCollection.fromLayers(model, layerIds);
    const groups = 'mixed' in what ? mixedGroups(lc, what.mixed) : null;
    const ekfacLayers = groups ? groups.find((g) => g.representation === 'PMatEKFAC')?.layerIds ?? null : 'name' in what && what.name === 'PMatEKFAC' ? layerIds : null;
    const base: PassDefinition = {
      model: modelPath, modelHash: mHash, data: dataPath, dataHash: dHash, ...(labelsPath ? { labels: labelsPath } : {}),
      scale: options.scale ?? null, batchSize, layerIds, compute: groups ? 'PMatMixed' : 'name' in what && what.name !== 'PMatEKFAC' ? what.name : 'PMatKFAC',
      ...(groups ? { mixed: groups } : {}),
      variant: options.variant ?? 'classif_logits', ...(options.loss ? { loss: options.loss } : {}), ...(options.sigma2 !== undefined ? { sigma2: options.sigma2 } : {}),
      ...(options.trials ? { trials: options.trials } : {}), seed: options.seed ?? 0, backend: options.backend ?? tf.getBackend(),
    };
    const available = await exampleCount(base);
    const n = Math.min(options.count ?? available, available);
    const shards = planShards(n, batchSize, shardCount);
    redis = await connectRedis(options.redis, { blocking: false, where: 'distributedFIM' });
    engine = await openEngine(redis, options);
    const passes = ekfacLayers ? 2 : 1;
    const retries = { count: 0 };
    const workers = new Set<string>();
    const follow: Follow = { options, passes, retries, workers, where: 'distributedFIM' };
    const suffix = options.runId ?? runIdOf(base, shards);
    const first = await runPass(engine, base, shards, `${suffix}${passes === 2 ? '-kfac' : ''}`, 1, follow);
    let matrix = deserialize(first.bytes, model) as PMatBase;
    let reused = first.reused;
    if (ekfacLayers) {
      // EKFAC (alone or as a group of a PMatMixed): the eigenbasis of the merged KFAC factors
      // (George et al. 2018), then the exact diagonal in it, in a second pass over its layers.
      const kfac = (matrix instanceof PMatMixed ? matrix.parts().find((p) => p.layerIds.join() === ekfacLayers.join())!.matrix : matrix) as PMatKFAC;
      const sub = kfac.layerCollection;
      const basis = new PMatEKFAC(sub, kfacEigenBlocks(sub.layers.map((e) => kfac.layerFactors(e.id))), 'kfac', null);
      let basisBytes: Uint8Array;
      try {
        basisBytes = serialize(basis);
      } finally {
        basis.dispose();
      }
      const second = `${suffix}-diag`;
      const basisRef = await engine.store.put(second, 'basis', basisBytes, options.keepSeconds ?? 3600);
      const { mixed: _groups, ...single } = base;
      let diag;
      try {
        diag = await runPass(engine, { ...single, layerIds: ekfacLayers, compute: 'ekfac-diagonal', basis: basisRef }, shards, second, 2, follow);
      } catch (e) {
        matrix.dispose();
        throw e;
      }
      const ekfac = deserialize(diag.bytes, model) as PMatEKFAC;
      if (matrix instanceof PMatMixed) {
        // The other groups are kept as merged; the KFAC group is replaced by its EKFAC.
        const parts = matrix.parts().map((p) => ({ matrix: p.matrix === kfac ? (ekfac as PMat) : p.matrix, layerIds: p.layerIds }));
        kfac.dispose();
        matrix = PMatMixed.fromParts(matrix.layerCollection, parts);
      } else {
        kfac.dispose();
        matrix = ekfac;
      }
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
