/**
 * Splitting a pass into shards: contiguous, batch-aligned example ranges, so that every shard
 * sees exactly the batches the single-process pass sees (the same float32 batch sums), and the
 * example-weighted merge of the shards is the single pass. Where the data has enough batches,
 * shard boundaries also fall on multiples of the accumulators' device-sum window
 * (`HostSum.BATCHES_PER_TRANSFER` batches summed in float32 before each float64 transfer): the
 * float32 partial sums are then the very ones of the single pass and the distributed matrix
 * equals it to float64 rounding, not only to float32 rounding.
 */
import { InvalidArgumentError } from '../errors.js';
import { HostSum } from '../statistics/host-sum.js';

/** One shard: examples [start, end) of the data, batches of `batchSize` from `start`. */
export interface ShardRange {
  /** 0-based position; partials are merged in this order. */
  readonly index: number;
  /** Stable id used in job ids and store keys: 's' and the zero-padded index ('s0003'). */
  readonly id: string;
  readonly start: number;
  readonly end: number;
}

/** Shard id of `index` ('s0003'): zero-padded so that ids sort as indices do. */
export function shardId(index: number): string {
  return `s${String(index).padStart(4, '0')}`;
}

/**
 * Up to `shards` contiguous batch-aligned ranges covering examples [0, n) with batches of
 * `batchSize` (fewer when there are fewer batches than shards).
 *
 * @example planShards(1000, 64, 4) // 16 batches → 4 shards of 4 batches: [0,256) [256,512) [512,768) [768,1000)
 */
export function planShards(n: number, batchSize: number, shards: number): ShardRange[] {
  for (const [name, v] of [['n', n], ['batchSize', batchSize], ['shards', shards]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`planShards: '${name}' must be a positive integer, received ${String(v)}`);
  }
  const batches = Math.ceil(n / batchSize);
  const count = Math.min(shards, batches);
  const window = HostSum.BATCHES_PER_TRANSFER;
  // Units of whole windows when every shard gets at least one; single batches otherwise.
  const unit = Math.floor(batches / window) >= count ? window : 1;
  const units = Math.ceil(batches / unit);
  const out: ShardRange[] = [];
  for (let i = 0; i < count; i++) {
    const firstBatch = Math.floor((i * units) / count) * unit;
    const endBatch = Math.min(batches, Math.floor(((i + 1) * units) / count) * unit);
    out.push({ index: i, id: shardId(i), start: firstBatch * batchSize, end: Math.min(n, endBatch * batchSize) });
  }
  return out;
}
