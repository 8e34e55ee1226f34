/**
 * The spectral tools on the real engine (a redis-server of the test's own, two `nngeometry
 * worker` processes): the distributed matrix-free Fisher's product F v equals the single-process
 * PMatImplicit's, and `nngeometry spectrum --redis` prints and writes what the local command does.
 * Skips without redis-server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { FIM, PMatImplicit, PVector, loadModel } from '../../src/index.js';
import { distributedOperator } from '../../src/distributed/operator.js';
import { RedisServer, WorkerProcess, redisMissing, startTwoWorkerCluster, stopTwoWorkerCluster, tempDir } from './fixtures.js';
import { relativeDistance } from './entries.js';
import { runCli } from '../cli/support.js';

const missing = redisMissing();
if (missing) console.log(`# skipped: ${missing}`);

describe('spectral tools on BullMQ and Redis', { skip: missing ?? false }, () => {
  let redis: RedisServer;
  let workers: WorkerProcess[] = [];
  const tmp = tempDir();
  let modelPath = '';
  let dataPath = '';
  let xs: number[][] = [];
  const N = 256;
  const BATCH = 4;

  before(async () => {
    await useTestBackend();
    ({ redis, workers, modelPath, dataPath, xs } = await startTwoWorkerCluster(tmp.dir, N));
  });

  after(async () => {
    await stopTwoWorkerCluster(workers, redis);
    tmp.remove();
  });

  test('a distributed product F v (3 unequal shards, 2 workers) equals PMatImplicit.mv on one process (relative 1e-5), and leaves nothing in Redis', async () => {
    const before = tf.memory().numTensors;
    const op = await distributedOperator({ redis: redis.url, model: modelPath, data: dataPath, batchSize: BATCH, shards: 3, backoffMs: 100 });
    const far: Float32Array[] = [];
    const vectors: Float32Array[] = [];
    try {
      assert.equal(op.shards, 3);
      for (const seed of [1, 2]) {
        const v = PVector.random(op.layerCollection, seed);
        vectors.push(v.data.dataSync() as Float32Array);
        const Fv = await op.mv(v);
        far.push(Fv.data.dataSync() as Float32Array);
        Fv.dispose();
        v.dispose();
      }
      assert.equal(op.stats.products, 2);
      assert.equal(op.stats.workers.length, 2, 'both workers computed shards');
    } finally {
      await op.close();
    }
    assert.equal(tf.memory().numTensors, before, 'the operator leaves no tensor behind');
    assert.deepEqual((await redis.keys()).filter((k) => k.includes(':mv-')), [], 'no job or partial of a product is kept');
    const model = await loadModel(modelPath);
    const batches = [];
    for (let s = 0; s < N; s += BATCH) batches.push({ xs: tf.tensor2d(xs.slice(s, s + BATCH)) });
    try {
      const F = await FIM({ model, loader: batches, representation: PMatImplicit });
      try {
        for (const [i, v] of vectors.entries()) {
          const flat = tf.tensor1d(v);
          const pv = PVector.fromFlat(F.layerCollection, flat);
          flat.dispose();
          const near = await F.mv(pv);
          const d = relativeDistance(Float64Array.from(far[i]!), Float64Array.from(near.data.dataSync()));
          near.dispose();
          pv.dispose();
          assert.ok(d <= 1e-5, `product ${i}: relative distance ${d}`);
          // Not the zero vector nor v: a real product.
          assert.ok(relativeDistance(Float64Array.from(far[i]!), Float64Array.from(v)) > 0.1);
        }
      } finally {
        F.dispose();
      }
    } finally {
      batches.forEach((b) => b.xs.dispose());
      model.dispose();
    }
  });

  test('nngeometry spectrum --redis (a stored representation) prints and writes what the local command does, plus the run', async () => {
    const args = ['spectrum', '--model', modelPath, '--data', dataPath, '--representation', 'kfac', '--k', '3', '--trace', '--samples', '6', '--batch-size', String(BATCH), '--quiet'];
    const [far, near] = await Promise.all([
      runCli([...args, '--redis', redis.url, '--shards', '4', '--json', `${tmp.dir}/sp-far.json`]),
      runCli([...args, '--json', `${tmp.dir}/sp-near.json`]),
    ]);
    assert.equal(far.code, 0, far.stderr);
    assert.equal(near.code, 0, near.stderr);
    type Out = Record<string, unknown> & { eigenvalues: number[]; trace: { value: number; exact: number }; distributed?: { shards: number } };
    const a = JSON.parse(readFileSync(`${tmp.dir}/sp-far.json`, 'utf8')) as Out;
    const b = JSON.parse(readFileSync(`${tmp.dir}/sp-near.json`, 'utf8')) as Out;
    a.eigenvalues.forEach((e, i) => assert.ok(Math.abs(e - b.eigenvalues[i]!) <= 1e-6 * b.eigenvalues[0]!, `eigenvalue ${i + 1}: ${e} vs ${b.eigenvalues[i]}`));
    assert.ok(Math.abs(a.trace.exact - b.trace.exact) <= 1e-9 * b.trace.exact, `trace ${a.trace.exact} vs ${b.trace.exact}`);
    assert.equal(a.distributed?.shards, 4);
    const same = (x: Out) => ({ ...x, seconds: 0, eigshSeconds: 0, eigenvalues: 0, residuals: 0, trace: 0, distributed: 0 });
    assert.deepEqual(same(a), same(b));
    assert.match(far.stdout, /\nrun run-[0-9a-f]{20}: 4 shards, 0 retried, workers \S+/);
  });

  test('nngeometry spectrum --redis (matrix-free) runs eigsh on distributed products: the local eigenvalue (relative 1e-6), every product counted', async () => {
    const args = ['spectrum', '--model', modelPath, '--data', dataPath, '--count', '64', '--k', '1', '--batch-size', '8', '--quiet'];
    const [far, near] = await Promise.all([
      runCli([...args, '--redis', redis.url, '--shards', '2', '--json', `${tmp.dir}/im-far.json`]),
      runCli([...args, '--json', `${tmp.dir}/im-near.json`]),
    ]);
    assert.equal(far.code, 0, far.stderr);
    assert.equal(near.code, 0, near.stderr);
    type Out = { eigenvalues: number[]; products: number; route: string; distributed?: { shards: number; products: number; workers: string[] } };
    const a = JSON.parse(readFileSync(`${tmp.dir}/im-far.json`, 'utf8')) as Out;
    const b = JSON.parse(readFileSync(`${tmp.dir}/im-near.json`, 'utf8')) as Out;
    assert.equal(a.route, 'lanczos');
    assert.ok(Math.abs(a.eigenvalues[0]! - b.eigenvalues[0]!) <= 1e-6 * b.eigenvalues[0]!, `${a.eigenvalues[0]} vs ${b.eigenvalues[0]}`);
    assert.equal(a.distributed?.shards, 2);
    assert.equal(a.distributed?.products, a.products, 'every product of eigsh was a distributed pass');
    assert.match(far.stdout, new RegExp(`\n${a.products} distributed products of 2 shards, 0 retried, workers \\S+`));
  });
});
