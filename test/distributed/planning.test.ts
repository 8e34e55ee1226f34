/**
 * The parts of a distributed run that need no Redis: shard planning, per-shard seeds, the
 * fan-in's deduplication and ordering, the merge tree, NTK tiles, run ids, and the
 * shared-directory partial store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { DistributedError, InvalidArgumentError } from '../../src/index.js';
import { planShards } from '../../src/distributed/shard-plan.js';
import { canonicalJson, runIdFor, shardSeed, sha256 } from '../../src/distributed/hash.js';
import { mergeTree, type MergeNode } from '../../src/distributed/merge-tree.js';
import { assembleKernel, ntkTilePlan, tileFromUnion } from '../../src/distributed/ntk-tiles.js';
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
  // A merge job of a merge tree holds shards first … first + count − 1.
  assert.deepEqual(orderShardResults({ a: result(4), b: result(3) }, 2, 3).ordered.map((r) => r.index), [3, 4]);
  assert.throws(() => orderShardResults({ a: result(4), b: result(3) }, 2, 4), /shard 5 missing/);
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

test('run ids count nested definitions in full (a PMatMixed group changed is another run)', () => {
  const pass = { compute: 'PMatMixed', mixed: [{ representation: 'PMatEKFAC', layerIds: ['a'] }, { representation: 'PMatBlockDiag', layerIds: ['b'] }] };
  const other = { compute: 'PMatMixed', mixed: [{ representation: 'PMatEKFAC', layerIds: ['a'] }, { representation: 'PMatKFAC', layerIds: ['b'] }] };
  assert.notEqual(runIdFor('run', pass), runIdFor('run', other));
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: null } }), '{"a":{"c":null,"d":[1,{"e":3,"f":2}]},"b":1}');
  assert.match(runIdFor('run', pass), /^run-[0-9a-f]{20}$/);
});

/** Leaves of a merge tree in order, and the largest fan-in and depth. */
function walk(node: MergeNode, depth = 0): { leaves: number[]; fanIn: number; depths: Set<number> } {
  const out = { leaves: [] as number[], fanIn: node.children.length, depths: new Set<number>() };
  node.children.forEach((c, k) => {
    if (typeof c === 'number') {
      out.leaves.push(c);
      out.depths.add(depth);
      assert.equal(c, node.first + k, 'unit children are contiguous from first');
    } else {
      assert.equal(c.index, node.first + k, 'node children are contiguous from first');
      assert.equal(c.level, depth + 1);
      const w = walk(c, depth + 1);
      out.leaves.push(...w.leaves);
      out.fanIn = Math.max(out.fanIn, w.fanIn);
      w.depths.forEach((d) => out.depths.add(d));
    }
  });
  return out;
}

test('the merge tree covers every shard once, in order, with at most fanIn children and all shards at one depth', () => {
  for (const [units, fanIn, depth] of [[1, 8, 0], [8, 8, 0], [9, 8, 1], [64, 8, 1], [65, 8, 2], [128, 8, 2], [10, 2, 3], [5, Infinity, 0]] as const) {
    const root = mergeTree(units, fanIn);
    assert.equal(root.level, 0);
    const w = walk(root);
    assert.deepEqual(w.leaves, Array.from({ length: units }, (_, i) => i), `${units}/${fanIn}: leaves`);
    assert.ok(w.fanIn <= fanIn, `${units}/${fanIn}: fan-in ${w.fanIn}`);
    assert.deepEqual([...w.depths], [depth], `${units}/${fanIn}: depth`);
  }
  // Even groups: 10 shards with fan-in 8 are two merges of 5, not 8 and 2.
  assert.deepEqual(mergeTree(10, 8).children.map((c) => (c as MergeNode).children.length), [5, 5]);
  assert.throws(() => mergeTree(4, 1), (e: Error) => e instanceof InvalidArgumentError && /'mergeFanIn' must be an integer ≥ 2, received 1/.test(e.message));
});

test('NTK tiles: B blocks with B(B+1)/2 ≥ the requested tiles, batch-aligned, i ≤ j', () => {
  const tiles = ntkTilePlan(96, 8, 6);
  assert.equal(tiles.length, 6);
  assert.deepEqual(tiles.map((t) => [t.start, t.end, t.columns!.start, t.columns!.end]), [[0, 32, 0, 32], [0, 32, 32, 64], [0, 32, 64, 96], [32, 64, 32, 64], [32, 64, 64, 96], [64, 96, 64, 96]]);
  assert.deepEqual(tiles.map((t) => t.id), ['t0000', 't0001', 't0002', 't0003', 't0004', 't0005']);
  assert.equal(ntkTilePlan(96, 8, 7).length, 10, '7 tiles asked: 4 blocks, 10 tiles');
  assert.equal(ntkTilePlan(16, 8, 50).length, 3, 'two batches: two blocks at most');
});

test('NTK tiles cut from the kernel of their examples and placed back give the kernel exactly', () => {
  // A symmetric kernel of O = 2 outputs on n = 7 examples with distinct entries (rows o·n + i).
  const O = 2;
  const n = 7;
  const size = O * n;
  const K = new Float64Array(size * size);
  for (let r = 0; r < size; r++) for (let c = r; c < size; c++) K[r * size + c] = K[c * size + r] = 1 + r * 100 + c + 0.25;
  // The kernel of the examples idx (in that order), as GramMatrix gives it on those batches.
  const sub = (idx: number[]) => {
    const m = idx.length;
    const out = new Float64Array((O * m) ** 2);
    for (let o = 0; o < O; o++) for (let i = 0; i < m; i++) for (let p = 0; p < O; p++) for (let j = 0; j < m; j++) out[(o * m + i) * O * m + p * m + j] = K[(o * n + idx[i]!) * size + p * n + idx[j]!]!;
    return out;
  };
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);
  const blocks = [[0, 3], [3, 5], [5, 7]] as const;
  const tiles: Array<{ bytes: Uint8Array; start: number; end: number; columns: { start: number; end: number } }> = [];
  for (let i = 0; i < 3; i++) {
    for (let j = i; j < 3; j++) {
      const [r0, r1] = blocks[i]!;
      const [c0, c1] = blocks[j]!;
      const same = i === j;
      const union = same ? sub(range(r0, r1)) : sub([...range(r0, r1), ...range(c0, c1)]);
      const t = tileFromUnion(union, O, r1 - r0, c1 - c0, same);
      // An unaligned copy, as bytes from a store may be.
      const bytes = new Uint8Array(t.byteLength + 1).subarray(1);
      bytes.set(new Uint8Array(t.buffer));
      tiles.push({ bytes, start: r0, end: r1, columns: { start: c0, end: c1 } });
    }
  }
  assert.deepEqual(assembleKernel({ outputs: O, examples: n, centering: false }, tiles), K);
  assert.throws(() => assembleKernel({ outputs: O, examples: n, centering: false }, tiles.slice(1)), /the tiles cover 40 of the 49 example pairs/);
  assert.throws(() => assembleKernel({ outputs: O, examples: n, centering: false }, [{ ...tiles[0]!, bytes: tiles[0]!.bytes.subarray(8) }]), /tile 0 has 280 bytes, expected 288/);
});

test('a mixed mapping by names resolves to PMatMixed groups by precedence (id, kind, Kronecker, default); PMatEKFACBlockDiag is known by name', async () => {
  const { tf } = await import('../../src/tf.js');
  const { LayerCollection, PMatEKFACBlockDiag, PMatKFAC } = await import('../../src/index.js');
  const { mixedGroups, mixedRepresentation, namedMappingOf } = await import('../../src/distributed/mixed-plan.js');
  const model = tf.sequential({
    layers: [tf.layers.dense({ name: 'd1', inputShape: [3], units: 4 }), tf.layers.batchNormalization({ name: 'bn' }), tf.layers.dense({ name: 'd2', units: 2 }), tf.layers.dense({ name: 'd3', units: 2 })],
  });
  try {
    const lc = LayerCollection.fromModel(model);
    const known = namedMappingOf(PMatEKFACBlockDiag)!;
    assert.deepEqual(known, { default: 'PMatBlockDiag', kronecker: 'PMatEKFAC' });
    assert.deepEqual(mixedGroups(lc, known), [{ representation: 'PMatEKFAC', layerIds: ['d1', 'd2', 'd3'] }, { representation: 'PMatBlockDiag', layerIds: ['bn'] }]);
    // Precedence: by id over by kind over kronecker over default; groups in order of first layer.
    const mapping = { default: 'PMatDiag', kronecker: 'PMatEKFAC', byLayerKind: { dense: 'PMatKFAC' }, byLayerId: { d3: 'PMatDense' } } as const;
    assert.deepEqual(mixedGroups(lc, mapping), [
      { representation: 'PMatKFAC', layerIds: ['d1', 'd2'] },
      { representation: 'PMatDiag', layerIds: ['bn'] },
      { representation: 'PMatDense', layerIds: ['d3'] },
    ]);
    assert.deepEqual(namedMappingOf(mixedRepresentation(mapping)), mapping);
    assert.equal(namedMappingOf(PMatKFAC), null);
    assert.throws(() => mixedGroups(lc, { default: 'PMatKFAC' }), (e: Error) => e instanceof DistributedError && /gives PMatKFAC to layer 'bn' \(batch_normalization\), which has no Kronecker factors; map it to PMatBlockDiag/.test(e.message));
    assert.throws(() => mixedGroups(lc, { default: 'PMatDiag', byLayerId: { nope: 'PMatDense' } }), /'byLayerId' names layer 'nope', which the layer collection does not hold \(layers: d1, bn, d2, d3\)/);
  } finally {
    model.dispose();
  }
});
