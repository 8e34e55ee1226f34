/**
 * The fan-in of a pass: the shard results BullMQ hands the merge job (one per child job), made
 * safe for at-least-once delivery. A shard delivered twice (a job re-run after its worker was
 * presumed dead, a flow enqueued again) is counted once; a missing shard or two different
 * partials for one shard fail the merge; the survivors come back in shard order so that the
 * merge, and so the result, does not depend on the order in which workers finished.
 */
import { DistributedError } from '../errors.js';
import type { ShardResult } from './protocol.js';

/**
 * One result per shard id, in shard order, and how many duplicates were dropped; the results
 * must be those of shards `first` … `first + shards − 1` (a merge job of a merge tree holds a
 * contiguous range).
 *
 * @example orderShardResults({ 'bull:q:r-s0001': b, 'bull:q:r-s0000': a }, 2) // { ordered: [a, b], duplicates: 0 }
 */
export function orderShardResults(values: Readonly<Record<string, ShardResult>>, shards: number, first = 0): { ordered: ShardResult[]; duplicates: number } {
  const byShard = new Map<string, ShardResult>();
  let duplicates = 0;
  for (const r of Object.values(values)) {
    const seen = byShard.get(r.shard);
    if (seen) {
      // The same shard twice: its partial must be the same bytes (the computation is deterministic).
      if (seen.partial.sha256 !== r.partial.sha256 || seen.examples !== r.examples || seen.index !== r.index) {
        throw new DistributedError(`merge: shard ${r.shard} was delivered twice with different results (sha256 ${seen.partial.sha256.slice(0, 12)}… and ${r.partial.sha256.slice(0, 12)}…)`);
      }
      duplicates++;
      continue;
    }
    byShard.set(r.shard, r);
  }
  const ordered = [...byShard.values()].sort((a, b) => a.index - b.index);
  const present = new Set(ordered.map((r) => r.index));
  const missing: number[] = [];
  for (let i = first; i < first + shards; i++) if (!present.has(i)) missing.push(i);
  if (missing.length || ordered.length !== shards) {
    throw new DistributedError(`merge: ${missing.length ? `shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing` : `${ordered.length} shard results for ${shards} shards`}`);
  }
  return { ordered, duplicates };
}
