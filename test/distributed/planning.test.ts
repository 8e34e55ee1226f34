/**
 * The parts of a distributed run that need no Redis: shard planning, per-shard seeds, the
 * fan-in's deduplication and ordering, and the shared-directory partial store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { DistributedError, InvalidArgumentError } from '../../src/index.js';
import { planShards } from '../../src/distributed/shard-plan.js';
import { shardSeed, sha256 } from '../../src/distributed/hash.js';
import { orderShardResults } from '../../src/distributed/shard-results.js';
import { PartialStore } from '../../src/distributed/partial-store.js';
import type { ShardResult } from '../../src/distributed/protocol.js';
import { tempDir } from './fixtures.js';

test('shards cover the examples once, contiguously, on batch edges, in order', () => {
  for (const [n, b, k] of [[1000, 64, 4], [1000, 64, 7], [513, 4, 8], [100, 10, 3], [5, 2, 8], [8192, 64, 128], [4096, 64, 3]] as const) {
    const shards = planShards(n, b, k);
    assert.equal(shards.length, Math.min(k, Math.ceil(n / b)), `${n}/${b}/${k}: shard count`);
    assert.equal(shards[0]!.start, 0);
    assert.equal(shards.at(-1)!.end, n);
    shards.forEach((s, i) => {
      assert.equal(s.index, i);
      assert.equal(s.id, `s${String(i).padStart(4, '0')}`);
      assert.ok(s.end > s.start, `${n}/${b}/${k}: shard ${i} is empty`);
      assert.equal(s.start % b, 0, `${n}/${b}/${k}: shard ${i} starts mid-batch`);
      if (i > 0) assert.equal(s.start, shards[i - 1]!.end, `${n}/${b}/${k}: gap or overlap before shard ${i}`);
    });
  }
});

test('with enough batches, shard edges fall on 16-batch accumulation windows and sizes differ by at most one window', () => {
  // 8,192 examples in batches of 64: 128 batches = 8 windows; 3 shards → 3, 2, 3 windows or similar.
  const shards = planShards(8192, 64, 3);
  for (const s of shards.slice(1)) assert.equal((s.start / 64) % 16, 0, `shard ${s.id} starts at batch ${s.start / 64}`);
  const windows = shards.map((s) => (s.end - s.start) / (64 * 16));
  assert.ok(Math.max(...windows) - Math.min(...windows) <= 1, `windows per shard ${windows}`);
  // Fewer windows than shards: single batches then (128 batches, 16 shards of 8).
  assert.deepEqual(planShards(8192, 64, 16).map((s) => (s.end - s.start) / 64), Array(16).fill(8));
});

test('planShards refuses non-integer and non-positive sizes, naming the argument', () => {
  assert.throws(() => planShards(0, 4, 2), (e: Error) => e instanceof InvalidArgumentError && /'n' must be a positive integer/.test(e.message));
  assert.throws(() => planShards(10, 2.5, 2), /'batchSize' must be a positive integer, received 2.5/);
  assert.throws(() => planShards(10, 2, 0), /'shards' must be a positive integer/);
});

test('shard seeds depend only on (seed, shard): fixed values, distinct across shards and seeds', () => {
  assert.equal(shardSeed(0, 0), Number.parseInt(sha256('nngeometry-shard-seed:0:0').slice(0, 8), 16));
  const seeds = new Set<number>();
  for (let seed = 0; seed < 4; seed++) for (let k = 0; k < 64; k++) seeds.add(shardSeed(seed, k));
  assert.equal(seeds.size, 256);
  for (const s of seeds) assert.ok(Number.isSafeInteger(s) && s >= 0 && s < 2 ** 32);
});

const result = (index: number, hash = `h${index}`, examples = 10): ShardResult => ({
  shard: `s${String(index).padStart(4, '0')}`, index, examples, worker: 'w', seconds: 0, partial: { store: 'redis', key: `k${index}`, sha256: hash, bytes: 1 },
});

test('the fan-in keeps one result per shard, in shard order, whatever the delivery order', () => {
  const { ordered, duplicates } = orderShardResults({ 'q:r-s0002': result(2), 'q:r-s0000': result(0), 'q:x-s0002': result(2), 'q:r-s0001': result(1) }, 3);
  assert.deepEqual(ordered.map((r) => r.index), [0, 1, 2]);
  assert.equal(duplicates, 1);
});

test('the fan-in refuses a missing shard and a shard delivered twice with different bytes', () => {
  assert.throws(() => orderShardResults({ a: result(0), b: result(2) }, 3), (e: Error) => e instanceof DistributedError && /shard 1 missing/.test(e.message));
  assert.throws(() => orderShardResults({ a: result(0), b: result(1), c: result(1, 'other') }, 2), /shard s0001 was delivered twice with different results/);
  assert.throws(() => orderShardResults({ a: result(0), b: result(1), c: result(5) }, 2), /3 shard results for 2 shards/);
});

test('directory store: atomic files under the run, content hash checked on read, keys confined', async () => {
  const tmp = tempDir();
  const noRedis = {} as Redis; // a directory store never touches Redis
  try {
    const store = new PartialStore(noRedis, tmp.dir, 16);
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
    const ref = await store.put('run-1', 's0000', bytes, 60);
    assert.deepEqual(ref, { store: 'directory', key: 'run-1/s0000.ngp', sha256: sha256(bytes), bytes: 100 });
    assert.deepEqual(readdirSync(join(tmp.dir, 'run-1')), ['s0000.ngp'], 'no temporary file left');
    assert.deepEqual(await store.get(ref), bytes);
    // One flipped byte: refused by its hash.
    const path = join(tmp.dir, 'run-1', 's0000.ngp');
    const flipped = readFileSync(path);
    flipped[50] ^= 1;
    writeFileSync(path, flipped);
    await assert.rejects(store.get(ref), (e: Error) => e instanceof DistributedError && /fails its content hash/.test(e.message));
    // Truncated: refused by its size before reading.
    writeFileSync(path, flipped.subarray(0, 10));
    await assert.rejects(store.get(ref), /has 10 bytes, its reference says 100/);
    await assert.rejects(store.put('../escape', 's0000', bytes, 60), /run id '..\/escape' must be 1–128 letters/);
    await assert.rejects(store.get({ ...ref, key: '../../etc/passwd' }), /leaves the store directory/);
    await store.removeRun('run-1').catch(() => undefined);
  } finally {
    tmp.remove();
  }
});

test('Redis-only store: a partial above the size limit asks for a shared directory', async () => {
  const store = new PartialStore({} as Redis, null, 16);
  await assert.rejects(store.put('run-1', 's0000', new Uint8Array(17), 60), /the partial of s0000 is 17 bytes, above the 16 bytes kept in Redis; pass a directory every worker shares \(--store DIR/);
});
