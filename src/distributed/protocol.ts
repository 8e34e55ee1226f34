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
  compute: DistributedRepresentation | 'ekfac-diagonal';
  variant: string;
  loss?: 'cross_entropy' | 'mse';
  sigma2?: number;
  /** Monte-Carlo trials per example (absent: closed form). */
  trials?: number;
  /** Run seed; shard k samples with shardSeed(seed, k). */
  seed: number;
  /** Store reference of the serialized EKFAC whose eigenbasis the 'ekfac-diagonal' pass uses. */
  basis?: PartialRef;
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
  partial: PartialRef;
  /** Worker that computed it (host:pid). */
  worker: string;
  seconds: number;
}

/** Data of a merge job. */
export interface MergeJobData {
  runId: string;
  pass: PassDefinition;
  shards: number;
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
