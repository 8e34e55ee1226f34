/**
 * Durability of the merge: a worker that dies after storing a merge result but before its job
 * completes (the fault is injected by NNGEOMETRY_TEST_MERGE_FAULT: the first merge to store its
 * result SIGKILLs its worker) leaves the merge to be run again by another worker, which must still
 * find the children's partials. The run completes with the same bytes as an undisturbed run, and
 * once it has ended no partial but its result is left in Redis or in the store directory.
 * Skips, saying why, without redis-server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { FIM, PMatKFAC, loadModel } from '../../src/index.js';
import { distributedFIM } from '../../src/distributed/coordinator.js';
import { RedisServer, WorkerProcess, redisMissing, saveSmallData, saveSmallModel, tempDir } from './fixtures.js';
import { float64Entries, relativeDistance } from './entries.js';

const missing = redisMissing();
if (missing) console.log(`# skipped: ${missing}`);

describe('durable merges', { skip: missing ?? false }, () => {
  let redis: RedisServer;
  const tmp = tempDir();
  let modelPath = '';
  let dataPath = '';
  let marker = '';
  let workers: WorkerProcess[] = [];
  // 256 examples in batches of 4: 4 shards of 16 batches (whole accumulation windows, so float64
  // rounding from the single pass), merged by a tree of fan-in 2 (2 inner merges, then the root).
  const N = 256;
  const BATCH = 4;
  const start = () => WorkerProcess.start(redis.url, ['--lock-ms', '1500'], { NNGEOMETRY_TEST_MERGE_FAULT: marker });

  before(async () => {
    await useTestBackend();
    redis = await RedisServer.start();
    modelPath = await saveSmallModel(tmp.dir);
    dataPath = saveSmallData(tmp.dir, N);
    marker = join(tmp.dir, 'merge-fault');
    workers = [start(), start()];
    await Promise.all(workers.map((w) => w.waitFor('serving')));
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await redis?.stop();
    tmp.remove();
  });

  const run = (runId: string, extra: Partial<Parameters<typeof distributedFIM>[0]> = {}) =>
    distributedFIM({ redis: redis.url, model: modelPath, data: dataPath, representation: PMatKFAC, batchSize: BATCH, shards: 4, mergeFanIn: 2, backoffMs: 50, runId, ...extra });

  async function entriesOf(r: Awaited<ReturnType<typeof run>>): Promise<Float64Array> {
    try {
      return float64Entries(r.matrix);
    } finally {
      r.matrix.dispose();
      r.model.dispose();
    }
  }

  /** The worker that died of the injected fault (its exit is SIGKILL), or null. */
  const killed = () => workers.find((w) => w.child.signalCode === 'SIGKILL') ?? null;

  test('a worker killed after storing a merge result: the merge is re-run, the result is the same bytes, only the result is left in Redis', async () => {
    const faulty = await entriesOf(await run('durable'));
    assert.ok(existsSync(marker), 'a merge stored its result and its worker died');
    assert.ok(killed(), 'one worker was SIGKILLed in the merge');
    // The survivor computes the same run undisturbed.
    const clean = await entriesOf(await run('undisturbed'));
    assert.deepEqual(faulty, clean, 'bitwise the same entries');
    const [a, b] = await Promise.all(['durable', 'undisturbed'].map(async (id) => {
      const { Redis } = await import('ioredis');
      const c = new Redis(redis.url);
      try {
        return await c.getBuffer(`nngeometry:partial:${id}:result`);
      } finally {
        c.disconnect();
      }
    }));
    assert.ok(a && b && a.equals(b), 'the stored results are the same bytes');
    assert.deepEqual(await redis.keys('nngeometry:partial:durable:*'), ['nngeometry:partial:durable:result'], 'no shard or inner-merge partial left');
    // Independent check: the single-process FIM on the same batches.
    const model = await loadModel(modelPath);
    const { xs } = JSON.parse(readFileSync(dataPath, 'utf8')) as { xs: number[][] };
    const batches = [];
    for (let s = 0; s < N; s += BATCH) batches.push(tf.tensor2d(xs.slice(s, s + BATCH)));
    const ref = await FIM({ model, loader: batches, representation: PMatKFAC, workers: 1 });
    const d = relativeDistance(faulty, float64Entries(ref));
    ref.dispose();
    tf.dispose(batches);
    model.dispose();
    assert.ok(d <= 1e-9, `relative distance to the single pass ${d}`);
  });

  test('the same with --store DIR: a merge re-run after its worker died reads its children from the directory, which keeps only the result', async () => {
    // Replace the dead worker and arm the fault again: one of the two dies in the first merge.
    workers = workers.filter((w) => w !== killed());
    const fresh = start();
    workers.push(fresh);
    await fresh.waitFor('serving');
    rmSync(marker);
    const store = join(tmp.dir, 'store');
    const stored = await entriesOf(await run('stored', { store, maxRedisBytes: 16 }));
    assert.ok(existsSync(marker) && killed(), 'a worker died after storing a merge result');
    const clean = await entriesOf(await run('stored-clean'));
    assert.deepEqual(stored, clean, 'bitwise the same entries');
    assert.deepEqual(readdirSync(store).sort(), ['stored'], 'one folder per run');
    assert.deepEqual(readdirSync(join(store, 'stored')), ['result.ngp'], 'no shard or inner-merge partial left in the directory');
    assert.deepEqual(await redis.keys('nngeometry:partial:stored:*'), []);
  });

  test('a finished run whose result expired is computed again on the next request, to the same bytes', async () => {
    const first = await run('expires');
    assert.equal(first.reused, false);
    const before = await entriesOf(first);
    const { Redis } = await import('ioredis');
    const c = new Redis(redis.url);
    try {
      assert.equal(await c.del('nngeometry:partial:expires:result'), 1);
    } finally {
      c.disconnect();
    }
    const again = await run('expires');
    assert.equal(again.reused, false, 'recomputed, not reused');
    assert.deepEqual(await entriesOf(again), before);
    const third = await run('expires');
    assert.equal(third.reused, true);
    await entriesOf(third);
  });
});
