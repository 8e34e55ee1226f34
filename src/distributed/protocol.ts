/**
 * What travels through Redis: the definition of a run (every worker rebuilds the same pass
 * from it), one job per shard, one merge job per pass (the flow's parent, run by BullMQ when
 * every shard job has succeeded), and references to partial results in the partial store.
 * Everything here is plain JSON.
 */

/** Queue of the shard jobs. */
export const SHARD_QUEUE = 'nngeometry-shards';
/** Queue of the merge jobs (parents of a pass's shard jobs). */
export const MERGE_QUEUE = 'nngeometry-merge';

/** Representations a distributed pass computes (the persistence names). */
export const DISTRIBUTED_REPRESENTATIONS = ['PMatDense', 'PMatDiag', 'PMatBlockDiag', 'PMatLowRank', 'PMatKFAC', 'PMatEKFAC', 'PMatQuasiDiag'] as const;
export type DistributedRepresentation = (typeof DISTRIBUTED_REPRESENTATIONS)[number];

/**
 * One group of a PMatMixed computed in shards: a representation by name and its layers, in the
 * order of the layer collection. An EKFAC group is computed as its KFAC factors in the first pass
 * and gets its eigenbasis diagonal in a second pass, as EKFAC alone does.
 */
export interface MixedGroup {
  representation: DistributedRepresentation;
  layerIds: string[];
}

/** The empirical NTK of `examples` examples with `outputs` outputs, assembled from tiles of example pairs. */
export interface KernelDefinition {
  outputs: number;
  examples: number;
  /** Center the assembled kernel (done by the coordinator, on the whole kernel). */
  centering: boolean;
}

/** The pass every shard of a run computes, identical on every worker. */
export interface PassDefinition {
  /** model.json path every worker can read. */
  model: string;
  /** SHA-256 of the model files as the coordinator read them (hash.ts). */
  modelHash: string;
  /** Data file (IDX, CSV or JSON, as the CLI reads it) and optional labels file. */
  data: string;
  labels?: string;
  dataHash: string;
  /** Inputs are multiplied by this (null: 1/255 for uint8 IDX data, 1 otherwise). */
  scale: number | null;
  batchSize: number;
  /** Ids of the layers in the layer collection, in order. */
  layerIds: string[];
  /**
   * What a shard computes: the representation's own pass, or for EKFAC the KFAC factors
   * ('PMatKFAC') then, in a second pass, the diagonal in the merged eigenbasis ('ekfac-diagonal').
   */
  compute: DistributedRepresentation | 'ekfac-diagonal' | 'PMatMixed' | 'ntk-tile' | 'implicit-mv';
  /** The groups of a 'PMatMixed' pass, in the order PMatMixed forms them (by first layer). */
  mixed?: MixedGroup[];
  /** The kernel an 'ntk-tile' pass computes tiles of. */
  kernel?: KernelDefinition;
  variant: string;
  loss?: 'cross_entropy' | 'mse';
  sigma2?: number;
  /** Monte-Carlo trials per example (absent: closed form). */
  trials?: number;
  /** Run seed; shard k samples with shardSeed(seed, k). */
  seed: number;
  /** Store reference of the serialized EKFAC whose eigenbasis the 'ekfac-diagonal' pass uses. */
  basis?: PartialRef;
  /** Store reference of the serialized PVector v of an 'implicit-mv' pass (the product F v). */
  vector?: PartialRef;
  /** tfjs backend of the workers' computation ('wasm' or 'cpu'). */
  backend: string;
}

/** Where a partial lives: a Redis key or a file under the shared store directory. */
export interface PartialRef {
  store: 'redis' | 'directory';
  /** Redis key, or file name relative to the store directory. */
  key: string;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  bytes: number;
}

/** Data of a shard job. */
export interface ShardJobData {
  runId: string;
  pass: PassDefinition;
  /** Shard position and id (shard-plan.ts), and its examples [start, end). */
  index: number;
  shard: string;
  start: number;
  end: number;
  /** An NTK tile: the column examples [start, end) of the tile whose rows are [start, end) above. */
  columns?: { start: number; end: number };
  /** Store used for the partial (its directory when 'directory'). */
  storeDirectory: string | null;
  /** Largest partial kept in Redis. */
  maxRedisBytes: number;
}

/** Return value of a shard job. */
export interface ShardResult {
  shard: string;
  index: number;
  examples: number;
  /** Examples [start, end) of the shard (the rows of an NTK tile) and, for a tile, its columns. */
  start?: number;
  end?: number;
  columns?: { start: number; end: number };
  partial: PartialRef;
  /** Worker that computed it (host:pid). */
  worker: string;
  /** For the result of an inner merge job: the workers of the shards under it. */
  workers?: string[];
  seconds: number;
}

/** Data of a merge job. */
export interface MergeJobData {
  runId: string;
  pass: PassDefinition;
  /** Number of children, and the index of the first (merge-tree.ts). */
  shards: number;
  first?: number;
  /** Position in the merge tree; null for the root (whose result is the pass's). */
  node?: { level: number; index: number } | null;
  storeDirectory: string | null;
  maxRedisBytes: number;
  /** Seconds the merged result (and the finished jobs) are kept for a repeated request. */
  keepSeconds: number;
}

/** Return value of a merge job. */
export interface MergeResult {
  result: PartialRef;
  examples: number;
  /** Shard results in shard order (one per shard id). */
  shards: ShardResult[];
  /** Shard results delivered more than once and dropped (at-least-once delivery). */
  duplicates: number;
  worker: string;
}

/** Progress a shard job publishes (job.updateProgress). */
export interface ShardProgress {
  examplesDone: number;
  worker: string;
}
