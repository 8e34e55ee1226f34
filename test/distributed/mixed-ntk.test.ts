/**
 * PMatMixed and the empirical NTK on the real engine (a redis-server of the test's own, two
 * `nngeometry worker` processes): a mixed mapping by names gives the single-process PMatMixed
 * (with its EKFAC group's updateDiag), and the NTK assembled from tiles of example pairs gives
 * `GramMatrix` on the same batches (bit for bit), through the library and through `nngeometry ntk --redis`.
 * The references are computed here from the test's own arrays. Skips without redis-server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { DistributedError, FIM, GramMatrix, PMatBlockDiag, PMatEKFAC, PMatMixed, loadModel } from '../../src/index.js';
import { distributedFIM } from '../../src/distributed/coordinator.js';
import { distributedNTK } from '../../src/distributed/ntk-coordinator.js';
import { mixedRepresentation, type NamedMixedMapping } from '../../src/distributed/mixed-plan.js';
import { RedisServer, WorkerProcess, redisMissing, startTwoWorkerCluster, stopTwoWorkerCluster, tempDir } from './fixtures.js';
import { float64Entries, relativeDistance } from './entries.js';
import { runCli } from '../cli/support.js';

const missing = redisMissing();
if (missing) console.log(`# skipped: ${missing}`);

describe('PMatMixed and the NTK on BullMQ and Redis', { skip: missing ?? false }, () => {
  let redis: RedisServer;
  let workers: WorkerProcess[] = [];
  const tmp = tempDir();
  let modelPath = '';
  let dataPath = '';
  let xs: number[][] = [];
  let ys: number[] = [];
  // The FIM: 512 examples in batches of 4 (8 shards of 16 batches, whole accumulation windows).
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

  function batchesOf(n: number, size: number, labels: boolean) {
    const out = [];
    for (let s = 0; s < n; s += size) out.push(labels ? { xs: tf.tensor2d(xs.slice(s, s + size)), ys: tf.tensor1d(ys.slice(s, s + size), 'int32') } : { xs: tf.tensor2d(xs.slice(s, s + size)) });
    return out;
  }

  for (const [title, mapping] of [
    ['EKFAC on one layer, BlockDiag on the other', { default: 'PMatBlockDiag', byLayerId: { hidden: 'PMatEKFAC' } }],
    ['EKFAC and KFAC groups stay apart', { default: 'PMatKFAC', byLayerId: { hidden: 'PMatEKFAC' } }],
  ] as ReadonlyArray<[string, NamedMixedMapping]>) {
    test(`PMatMixed by names (${title}): 2 workers × 8 shards equal the single-process PMatMixed with updateDiag (relative 1e-9)`, async (t) => {
      const representation = mixedRepresentation(mapping);
      const before = tf.memory().numTensors;
      const run = await distributedFIM({ redis: redis.url, model: modelPath, data: dataPath, representation, batchSize: BATCH, shards: 8, backoffMs: 100 });
      let far: Float64Array;
      try {
        assert.ok(run.matrix instanceof PMatMixed);
        assert.deepEqual(
          run.matrix.parts().map((p) => [p.matrix.constructor.name, p.layerIds]),
          [[PMatEKFAC.name, ['hidden']], [mapping.default === 'PMatKFAC' ? 'PMatKFAC' : PMatBlockDiag.name, ['logits']]],
        );
        assert.equal(run.shards, 8);
        far = float64Entries(run.matrix);
      } finally {
        run.matrix.dispose();
        run.model.dispose();
      }
      assert.equal(tf.memory().numTensors, before, 'the coordinator leaves no tensor behind');
      const model = await loadModel(modelPath);
      const batches = batchesOf(N, BATCH, true);
      try {
        const M = (await FIM({ model, loader: batches, representation, workers: 1 })) as PMatMixed;
        try {
          await M.updateDiag(batches);
          const near = float64Entries(M);
          const d = relativeDistance(far, near);
          t.diagnostic(`relative distance ${d}`);
          assert.ok(d <= 1e-9, `relative distance ${d}`);
        } finally {
          M.dispose();
        }
      } finally {
        batches.forEach((b) => tf.dispose(Object.values(b)));
        model.dispose();
      }
    });
  }

  test('a PMatMixed in function form is refused, naming the declarative form as the way out', async () => {
    const functionForm = PMatMixed.fromMapping({ default: PMatBlockDiag, kronecker: PMatEKFAC });
    await assert.rejects(
      distributedFIM({ redis: redis.url, model: modelPath, data: dataPath, representation: functionForm }),
      (e: Error) => e instanceof DistributedError && /holds representation classes \(functions\), which cannot travel to workers; describe it by names instead, e\.g\. mixedRepresentation\(/.test(e.message),
    );
    assert.throws(() => mixedRepresentation({ default: 'PMatBlockDiag', byLayerKind: { dense: 'PMatKFACX' as 'PMatKFAC' } }), /byLayerKind\['dense'\] must be one of PMatDense/);
  });

  // The NTK: 96 examples in batches of 8 (12 batches), at least 6 tiles: 3 blocks of 32, tiles (i, j), i ≤ j.
  const NTK_N = 96;
  const NTK_BATCH = 8;

  test('the NTK from 6 tiles on 2 workers equals GramMatrix on the same batches (relative 1e-9), centered too', async (t) => {
    const before = tf.memory().numTensors;
    const run = await distributedNTK({ redis: redis.url, model: modelPath, data: dataPath, count: NTK_N, batchSize: NTK_BATCH, shards: 6, backoffMs: 100 });
    const far = run.kernel.values().slice();
    assert.equal(run.shards, 6);
    assert.deepEqual([run.kernel.numOutputs, run.kernel.numExamples], [4, NTK_N]);
    run.kernel.dispose();
    run.model.dispose();
    // Centered: the same tiles (the run is reused), centered on the assembled kernel.
    const centered = await distributedNTK({ redis: redis.url, model: modelPath, data: dataPath, count: NTK_N, batchSize: NTK_BATCH, shards: 6, centering: true });
    assert.equal(centered.reused, true, 'the same tiles, reused');
    const farCentered = centered.kernel.values().slice();
    centered.kernel.dispose();
    centered.model.dispose();
    assert.equal(tf.memory().numTensors, before, 'the coordinator leaves no tensor behind');
    const model = await loadModel(modelPath);
    const batches = batchesOf(NTK_N, NTK_BATCH, false);
    try {
      for (const [centering, got] of [[false, far], [true, farCentered]] as const) {
        const K = await GramMatrix({ model, loader: batches, centering });
        try {
          const d = relativeDistance(got, K.values());
          t.diagnostic(`centering ${centering}: relative distance ${d}`);
          assert.ok(d <= 1e-9, `centering ${centering}: relative distance ${d}`);
          // Every tile multiplies each pair of batches exactly as the single process does.
          assert.deepEqual(got, K.values(), `centering ${centering}: bit for bit`);
        } finally {
          K.dispose();
        }
      }
    } finally {
      batches.forEach((b) => tf.dispose(Object.values(b)));
      model.dispose();
    }
  });

  test('nngeometry ntk --redis prints and writes what the local command does, plus the run id, tiles and retries', async () => {
    const args = ['ntk', '--model', modelPath, '--data', dataPath, '--count', String(NTK_N), '--batch-size', String(NTK_BATCH), '--top', '3', '--quiet'];
    const [far, near] = await Promise.all([
      runCli([...args, '--redis', redis.url, '--shards', '6', '--json', `${tmp.dir}/ntk-far.json`]),
      runCli([...args, '--json', `${tmp.dir}/ntk-near.json`]),
    ]);
    assert.equal(far.code, 0, far.stderr);
    assert.equal(near.code, 0, near.stderr);
    const a = JSON.parse(readFileSync(`${tmp.dir}/ntk-far.json`, 'utf8')) as Record<string, unknown> & { eigenvalues: number[]; distributed: { runId: string; shards: number; retries: number } };
    const b = JSON.parse(readFileSync(`${tmp.dir}/ntk-near.json`, 'utf8')) as Record<string, unknown> & { eigenvalues: number[] };
    for (const k of ['trace', 'frobenius'] as const) assert.ok(Math.abs((a[k] as number) - (b[k] as number)) <= 1e-9 * Math.abs(b[k] as number), `${k}: ${a[k]} vs ${b[k]}`);
    a.eigenvalues.forEach((e, i) => assert.ok(Math.abs(e - b.eigenvalues[i]!) <= 1e-9 * Math.abs(b.eigenvalues[0]!), `eigenvalue ${i + 1}: ${e} vs ${b.eigenvalues[i]}`));
    const same = (x: Record<string, unknown>) => ({ ...x, seconds: 0, trace: 0, frobenius: 0, eigenvalues: 0, distributed: 0 });
    assert.deepEqual(same(a), same(b));
    assert.equal(a.distributed.shards, 6);
    assert.equal(a.distributed.retries, 0);
    const table = (out: string) => out.split('\n').filter((l) => !/time \(s\)|^run /.test(l)).join('\n').trim();
    assert.equal(table(far.stdout), table(near.stdout));
    assert.match(far.stdout, new RegExp(`\nrun ${a.distributed.runId}: 6 tiles, 0 retried, workers \\S+`));
  });
});
