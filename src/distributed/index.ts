/**
 * `nngeometry/distributed` (Node only): curvature passes spread over machines with BullMQ on
 * Redis. `distributedFIM` is the coordinator, `startWorker` serves shards (`nngeometry worker`
 * is the same from the command line). Needs the optional peer dependencies `bullmq` and
 * `ioredis`, loaded only when a run starts, so that the library's main entry and browser
 * bundles never touch them. Deployment, sizing and failure semantics: docs/distributed.md.
 */
export { distributedFIM, type DistributedFIMOptions, type DistributedFIMResult, type DistributedProgress } from './coordinator.js';
export { distributedNTK, type DistributedNTKOptions, type DistributedNTKResult } from './ntk-coordinator.js';
export type { DistributedRunOptions } from './flow.js';
export { mixedRepresentation, type NamedMixedMapping, type NamedMixedRepresentation } from './mixed-plan.js';
export { ntkTilePlan } from './ntk-tiles.js';
export { mergeTree, type MergeNode } from './merge-tree.js';
export { startWorker, type WorkerOptions, type WorkerHandle } from './worker.js';
export { planShards, shardId, type ShardRange } from './shard-plan.js';
export { orderShardResults } from './shard-results.js';
export { shardSeed, modelHash, dataHash, sha256 } from './hash.js';
export { PartialStore, DEFAULT_MAX_REDIS_BYTES } from './partial-store.js';
export type { PartialRef, ShardResult, MergeResult, PassDefinition } from './protocol.js';
export { DistributedError } from '../errors.js';
