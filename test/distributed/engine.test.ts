/**
 * Distributed passes on the real engine: a redis-server of the test's own and two `nngeometry
 * worker` processes. Each matrix is compared with the single-process FIM of the library on the
 * same batches, computed here independently of the distributed code (batches built from the
 * test's own arrays). Skips, saying why, without redis-server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { DistributedError, FIM, FIMMonteCarlo, PMatDense, PMatDiag, PMatEKFAC, PMatKFAC, PMatQuasiDiag, PMatImplicit, loadModel, type PMatBase } from '../../src/index.js';
import { distributedFIM } from '../../src/distributed/coordinator.js';
import { RedisServer, WorkerProcess, redisMissing, startTwoWorkerCluster, stopTwoWorkerCluster, tempDir } from './fixtures.js';
import { float64Entries, relativeDistance } from './entries.js';
import { runCli } from '../cli/support.js';

const missing = redisMissing();
if (missing) console.log(`# skipped: ${missing}`);

describe('distributed passes on BullMQ and Redis', { skip: missing ?? false }, () => {
  let redis: RedisServer;
  let workers: WorkerProcess[] = [];
  const tmp = tempDir();
  let modelPath = '';
  let dataPath = '';
  let xs: number[][] = [];
  let ys: number[] = [];
  // 512 examples in batches of 4: 128 batches, 8 shards of 16 (whole accumulation windows).
  const N = 512;
  const BATCH = 4;

  before(async () => {
    await useTestBackend();
    ({ redis, workers, modelPath, dataPath, xs, ys } = await startTwoWorkerCluster(tmp.dir, N));
  });

  after(async () => {
    await stopTwoWorkerCluster(workers, redis);
    tmp.remove();
  });

  /** The library's single-process FIM on the same batches (with EKFAC's updateDiag). */
  async function local(representation: { representationName: string }, mc?: { trials: number; seed: number }): Promise<Float64Array> {
    const model = await loadModel(modelPath);
    const batches = [];
    for (let s = 0; s < N; s += BATCH) batches.push({ xs: tf.tensor2d(xs.slice(s, s + BATCH)), ys: tf.tensor1d(ys.slice(s, s + BATCH), 'int32') });
    try {
      const rep = representation as typeof PMatDiag;
      const M: PMatBase = mc
        ? await FIMMonteCarlo({ model, loader: batches, representation: rep, trials: mc.trials, seed: mc.seed })
        : await FIM({ model, loader: batches, representation: rep, workers: 1 });
      if (M instanceof PMatEKFAC) await M.updateDiag(batches);
      try {
        return float64Entries(M);
      } finally {
        M.dispose();
      }
    } finally {
      batches.forEach((b) => tf.dispose([b.xs, b.ys]));
      model.dispose();
    }
  }

  async function distributed(representation: { representationName: string }, extra: Partial<Parameters<typeof distributedFIM>[0]> = {}) {
    const run = await distributedFIM({ redis: redis.url, model: modelPath, data: dataPath, representation: representation as typeof PMatDiag, batchSize: BATCH, shards: 8, backoffMs: 100, ...extra });
    try {
      return { ...run, entries: float64Entries(run.matrix) };
    } finally {
      run.matrix.dispose();
      run.model.dispose();
    }
  }

  for (const rep of [PMatDiag, PMatKFAC, PMatEKFAC, PMatDense, PMatQuasiDiag]) {
    test(`${rep.representationName}: 2 workers × 8 shards equal the single-process pass (relative 1e-9)`, async () => {
      const before = tf.memory().numTensors;
      const run = await distributed(rep);
      assert.equal(tf.memory().numTensors, before, 'the coordinator leaves no tensor behind');
      assert.equal(run.shards, 8);
      assert.equal(run.examples, N);
      const ref = await local(rep);
      const d = relativeDistance(run.entries, ref);
      assert.ok(d <= 1e-9, `relative distance ${d}`);
    });
  }

  test('Monte-Carlo and merge trees: the same Fisher with 2 workers and with 1 (per-shard seeds from (seed, shard); the tree depends on the shards only)', async () => {
    // A merge tree of fan-in 2 over 8 shards (8 → 4 → 2 → 1): still the single pass, and bitwise the same with 1 worker below.
    const treeTwo = await distributed(PMatDiag, { mergeFanIn: 2, runId: 'tree-two-workers' });
    const d = relativeDistance(treeTwo.entries, await local(PMatDiag));
    assert.ok(d <= 1e-9, `merge tree: relative distance ${d}`);
    const inner = (await redis.keys('bull:nngeometry-merge:tree-two-workers-m*')).filter((k) => /-m\d-\d{4}$/.test(k));
    assert.equal(inner.length, 4 + 2, 'inner merge jobs: 4 over pairs of shards, 2 over pairs of those');
    const two = await distributed(PMatDiag, { trials: 2, seed: 5, runId: 'mc-two-workers' });
    // The estimate differs from the closed form (a real sample) but not between worker counts.
    const exact = await local(PMatDiag);
    assert.ok(relativeDistance(two.entries, exact) > 1e-3, 'a Monte-Carlo estimate, not the closed form');
    const oneWorkerStopped = await workers[1]!.stop('SIGTERM');
    assert.equal(oneWorkerStopped, 0, 'a worker exits 0 on SIGTERM');
    const one = await distributed(PMatDiag, { trials: 2, seed: 5, runId: 'mc-one-worker' });
    assert.deepEqual(one.workers.length, 1);
    assert.ok(relativeDistance(one.entries, two.entries) <= 1e-12, `relative distance ${relativeDistance(one.entries, two.entries)}`);
    const treeOne = await distributed(PMatDiag, { mergeFanIn: 2, runId: 'tree-one-worker' });
    assert.deepEqual(treeOne.workers.length, 1);
    assert.deepEqual(treeOne.entries, treeTwo.entries, 'the same merge tree gives the same bytes with 1 worker and with 2');
    const otherSeed = await distributed(PMatDiag, { trials: 2, seed: 6, runId: 'mc-other-seed' });
    assert.ok(relativeDistance(otherSeed.entries, two.entries) > 1e-4, 'another seed samples other labels');
    workers[1] = WorkerProcess.start(redis.url, ['--lock-ms', '3000']);
    await workers[1].waitFor('serving');
  });

  test('a request made twice joins the first run: every shard is computed once', async () => {
    const [a, b] = await Promise.all([distributed(PMatKFAC, { runId: 'twice' }), distributed(PMatKFAC, { runId: 'twice' })]);
    assert.deepEqual(a.entries, b.entries);
    assert.equal([a.reused, b.reused].filter(Boolean).length, 1, 'one of the two joined the other');
    const later = await distributed(PMatKFAC, { runId: 'twice' });
    assert.equal(later.reused, true);
    const computed = workers.map((w) => (w.output.match(/shard s0003 of run twice: \d+ examples/g) ?? []).length).reduce((x, y) => x + y, 0);
    assert.equal(computed, 1, 'shard s0003 ran once');
  });

  test('nngeometry fim --redis prints and writes what the local command does, plus the run id, shards and retries', async () => {
    const args = ['fim', '--model', modelPath, '--data', dataPath, '--representation', 'kfac', '--batch-size', String(BATCH), '--quiet'];
    const [far, near] = await Promise.all([
      runCli([...args, '--redis', redis.url, '--shards', '8', '--json', `${tmp.dir}/far.json`]),
      runCli([...args, '--json', `${tmp.dir}/near.json`]),
    ]);
    assert.equal(far.code, 0, far.stderr);
    assert.equal(near.code, 0, near.stderr);
    const a = JSON.parse(readFileSync(`${tmp.dir}/far.json`, 'utf8')) as Record<string, unknown> & { distributed: { runId: string; shards: number; retries: number } };
    const b = JSON.parse(readFileSync(`${tmp.dir}/near.json`, 'utf8')) as Record<string, unknown>;
    for (const k of ['trace', 'frobenius', 'topEigenvalue'] as const) {
      assert.ok(Math.abs((a[k] as number) - (b[k] as number)) <= 1e-9 * Math.abs(b[k] as number), `${k}: ${a[k]} vs ${b[k]}`);
    }
    assert.deepEqual({ ...a, seconds: 0, trace: 0, frobenius: 0, topEigenvalue: 0, layers: 0, distributed: 0 }, { ...b, seconds: 0, trace: 0, frobenius: 0, topEigenvalue: 0, layers: 0, distributed: 0 });
    assert.equal(a.distributed.shards, 8);
    assert.equal(a.distributed.retries, 0);
    // The same printed table but for the time row; then the run's line.
    const table = (out: string) => out.split('\n').filter((l) => !/time \(s\)|^run /.test(l)).join('\n').trim();
    assert.equal(table(far.stdout), table(near.stdout));
    assert.match(far.stdout, new RegExp(`\nrun ${a.distributed.runId}: 8 shards, 0 retried, workers \\S+`));
  });

  test('PMatImplicit and representations with options are refused, naming what can be sharded', async () => {
    await assert.rejects(distributed(PMatImplicit), (e: Error) => e instanceof DistributedError && /cannot be computed in shards \(supported: PMatDense.*PMatEKFACBlockDiag and mixedRepresentation/.test(e.message));
    await assert.rejects(distributed(PMatKFAC.with({ kfacType: 'reduce' })), (e: Error) => e instanceof DistributedError && /PMatKFAC with options .* pass the class itself/.test(e.message));
  });
});
