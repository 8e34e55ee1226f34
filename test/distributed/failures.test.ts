/**
 * Failure semantics of distributed passes on the real engine (BullMQ, redis-server, worker
 * processes of the CLI): a worker killed mid-shard, a shard whose data throws, a worker whose
 * model differs, Redis unreachable or stopped mid-run. Skips, saying why, without redis-server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { DistributedError, FIM, PMatDiag, loadModel } from '../../src/index.js';
import { distributedFIM } from '../../src/distributed/coordinator.js';
import { dataHash, modelHash } from '../../src/distributed/hash.js';
import { SHARD_QUEUE, type ShardJobData } from '../../src/distributed/protocol.js';
import { runCli } from '../cli/support.js';
import { ROOT, RedisServer, WorkerProcess, freePort, redisMissing, saveSmallData, saveSmallModel, tempDir } from './fixtures.js';
import { float64Entries, relativeDistance } from './entries.js';

const missing = redisMissing();
if (missing) console.log(`# skipped: ${missing}`);

describe('distributed failure semantics', { skip: missing ?? false }, () => {
  let redis: RedisServer;
  const tmp = tempDir();
  let modelPath = '';
  let dataPath = '';
  /** Two workers with 2-second locks (a dead worker's shard is re-run about 4 s later). */
  let workers: WorkerProcess[] = [];

  before(async () => {
    await useTestBackend();
    redis = await RedisServer.start();
    modelPath = await saveSmallModel(tmp.dir);
    // 8,192 examples in batches of 2: 4,096 batches, 4 shards of 1,024 batches; a shard takes over a
    // second even on an idle machine, so a worker killed 200 ms after starting one is mid-shard.
    dataPath = saveSmallData(tmp.dir, 8192, 'long.json');
    workers = [WorkerProcess.start(redis.url, ['--lock-ms', '2000']), WorkerProcess.start(redis.url, ['--lock-ms', '2000'])];
    await Promise.all(workers.map((w) => w.waitFor('serving')));
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await redis?.stop();
    tmp.remove();
  });

  /** Keys of run `runId` left in Redis (jobs, partials, claim). */
  async function leftovers(runId: string): Promise<string[]> {
    return (await redis.keys()).filter((k) => k.includes(runId));
  }

  test('a poisoned shard (labels its model cannot take) fails the run with its error after its retries, leaving no job', async () => {
    const n = 64;
    const path = saveSmallData(tmp.dir, n, 'poisoned.json');
    const json = JSON.parse(readFileSync(path, 'utf8')) as { xs: number[][]; ys: number[] };
    json.ys[41] = 9; // shard s0002 of [0,16) [16,32) [32,48) [48,64); the model has 4 classes
    writeFileSync(path, JSON.stringify(json));
    const t0 = performance.now();
    await assert.rejects(
      distributedFIM({ redis: redis.url, model: modelPath, data: path, representation: PMatDiag, variant: 'empirical', batchSize: 4, shards: 4, attempts: 3, backoffMs: 50, runId: 'poisoned' }),
      (e: Error) => e instanceof DistributedError && /shard s0002 \(examples 32–47\) failed after 3 attempts: .*label/i.test(e.message),
    );
    assert.ok(performance.now() - t0 < 60_000);
    assert.deepEqual(await leftovers('poisoned'), [], 'no job, partial or claim left in Redis');
  });

  test('a worker whose model differs from the coordinator\u2019s refuses the shard at once (no retries)', async () => {
    const { Queue, Job } = await import('bullmq');
    const queue = new Queue(SHARD_QUEUE, { connection: { url: redis.url } });
    try {
      const pass = {
        model: modelPath, modelHash: '0'.repeat(64), data: dataPath, dataHash: await dataHash(dataPath), scale: null, batchSize: 2, layerIds: ['hidden', 'logits'],
        compute: 'PMatDiag' as const, variant: 'classif_logits', seed: 0, backend: 'wasm',
      };
      assert.notEqual(await modelHash(modelPath), pass.modelHash);
      await queue.add('shard', { runId: 'mismatch', pass, index: 0, shard: 's0000', start: 0, end: 2, storeDirectory: null, maxRedisBytes: 1 << 20 } satisfies ShardJobData, { jobId: 'mismatch-s0000', attempts: 3 });
      let job;
      for (let i = 0; i < 300; i++) {
        job = await Job.fromId(queue, 'mismatch-s0000');
        if (job && (await job.getState()) === 'failed') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(await job!.getState(), 'failed');
      assert.equal(job!.attemptsMade, 1, 'refused without retries');
      assert.match(job!.failedReason, /the model at .* differs from the coordinator's \(sha256 [0-9a-f]{12}…, expected 000000000000…\)/);
      await job!.remove();
    } finally {
      await queue.close();
    }
  });

  test('a worker killed (SIGKILL) in the middle of a shard: its shard is re-run by the other, the result is unchanged', async () => {
    const [a, b] = workers as [WorkerProcess, WorkerProcess];
    let killed = false;
    // Kill worker a 200 ms after it starts its first shard of this run (its start is logged), so the
    // kill always lands mid-shard whatever the machine's speed.
    const killer = a.waitFor(/of run killed: started/, 120_000).then(async () => {
      await new Promise((r) => setTimeout(r, 200));
      killed = true;
      a.child.kill('SIGKILL');
    });
    killer.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
    const run = await distributedFIM({
      redis: redis.url, model: modelPath, data: dataPath, representation: PMatDiag, batchSize: 2, shards: 4, runId: 'killed', backoffMs: 100,
    });
    await killer;
    try {
      assert.ok(killed, 'a worker was killed mid-shard');
      assert.ok(run.retries >= 1, `retries ${run.retries}`);
      assert.deepEqual(run.workers, [b.output.match(/worker (\S+) serving/)![1]!], 'every merged shard comes from the surviving worker');
      const model = await loadModel(modelPath);
      const { xs } = JSON.parse(readFileSync(dataPath, 'utf8')) as { xs: number[][] };
      const batches = [];
      for (let s = 0; s < xs.length; s += 2) batches.push(tf.tensor2d(xs.slice(s, s + 2)));
      const ref = await FIM({ model, loader: batches, representation: PMatDiag, workers: 1 });
      const d = relativeDistance(float64Entries(run.matrix), float64Entries(ref));
      ref.dispose();
      tf.dispose(batches);
      model.dispose();
      assert.ok(d <= 1e-9, `relative distance to the single pass ${d}`);
    } finally {
      run.matrix.dispose();
      run.model.dispose();
    }
  });

  test('Ctrl-C on fim --redis cancels the run: exit code 2, one line, no job or partial left', async () => {
    // A Redis no worker serves: the run's jobs wait until the coordinator is interrupted.
    const idle = await RedisServer.start();
    try {
      const { spawn } = await import('node:child_process');
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'fim', '--model', modelPath, '--data', dataPath, '--redis', idle.url, '--run-id', 'cancelled', '--quiet'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      for (let i = 0; i < 600 && !(await idle.keys('bull:nngeometry-merge:cancelled')).length; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal((await idle.keys('*cancelled-s0000*')).length > 0, true, 'the shard jobs were enqueued');
      child.kill('SIGINT');
      assert.equal(await exited, 2, stderr);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr, /^nngeometry: distributedFIM: run cancelled was cancelled; its pending jobs were removed/);
      assert.deepEqual((await idle.keys()).filter((k) => k.includes('cancelled')), []);
    } finally {
      await idle.stop();
    }
  });

  test('Redis unreachable: one line on stderr and exit code 2 (fim --redis and worker)', async () => {
    const port = await freePort();
    const [fim, w] = await Promise.all([
      runCli(['fim', '--model', modelPath, '--data', join(tmp.dir, 'poisoned.json'), '--redis', `redis://127.0.0.1:${port}`, '--quiet']),
      runCli(['worker', '--redis', `redis://127.0.0.1:${port}`]),
    ]);
    assert.equal(fim.code, 2, fim.stderr);
    assert.equal(fim.stderr.trim().split('\n').length, 1, fim.stderr);
    assert.match(fim.stderr, /^nngeometry: distributedFIM: Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED\); start redis-server there or pass the right --redis URL/);
    assert.equal(w.code, 2, w.stderr);
    assert.match(w.stderr.trim(), /^nngeometry: worker: Redis at .* is unreachable/);
  });

  test('Redis stopped in the middle of a run: a clear error, no hang', async () => {
    let stopped = false;
    const t0 = performance.now();
    await assert.rejects(
      distributedFIM({
        redis: redis.url, model: modelPath, data: dataPath, representation: PMatDiag, batchSize: 2, shards: 4, runId: 'redis-stops', redisTimeoutMs: 2000,
        onProgress: (p) => {
          if (!stopped && p.examplesDone > 50) {
            stopped = true;
            void redis.stop();
          }
        },
      }),
      (e: Error) => e instanceof DistributedError && /Redis at redis:\/\/127\.0\.0\.1:\d+ stopped answering during run redis-stops/.test(e.message),
    );
    assert.ok(stopped);
    assert.ok(performance.now() - t0 < 30_000, 'gave up within the timeout');
  });
});
