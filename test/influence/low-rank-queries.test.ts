/**
 * pairwiseInfluence({ queryRank: k }): each layer's preconditioned query gradient, as its
 * [inputs + 1, outputs] matrix, replaced by its best rank-k approximation. Reference: the dense
 * float64 preconditioning (M + λI)⁻¹∇ℓ_q with brute-force gradients, truncated by an independent
 * float64 SVD (power iteration with deflation), scored against brute-force training gradients.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, InvalidArgumentError, LayerCollection, PMatDense, pairwiseInfluence } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, randomBatches } from '../support/models.js';
import { perExampleLossGradients, relativeMaxError, solveDense } from './float64.js';

before(async () => {
  await useTestBackend();
});

/** Best rank-k approximation of M [r, c] (float64), by power iteration on MᵀM with deflation. */
function truncate(m: Float64Array, r: number, c: number, k: number): Float64Array {
  const rest = Float64Array.from(m);
  const out = new Float64Array(r * c);
  for (let j = 0; j < k; j++) {
    let v = Float64Array.from({ length: c }, (_, i) => 1 + 0.1 * i);
    for (let it = 0; it < 2000; it++) {
      const u = new Float64Array(r);
      for (let a = 0; a < r; a++) for (let b = 0; b < c; b++) u[a]! += rest[a * c + b]! * v[b]!;
      const w = new Float64Array(c);
      for (let a = 0; a < r; a++) for (let b = 0; b < c; b++) w[b]! += rest[a * c + b]! * u[a]!;
      const norm = Math.hypot(...w);
      v = w.map((x) => x / norm);
    }
    const u = new Float64Array(r);
    for (let a = 0; a < r; a++) for (let b = 0; b < c; b++) u[a]! += rest[a * c + b]! * v[b]!;
    for (let a = 0; a < r; a++) {
      for (let b = 0; b < c; b++) {
        out[a * c + b]! += u[a]! * v[b]!;
        rest[a * c + b]! -= u[a]! * v[b]!;
      }
    }
  }
  return out;
}

test('queryRank k: scores with each layer of the preconditioned queries truncated to rank k (1e-4), closer to the exact scores as k grows', async () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 16, inputShape: [20], activation: 'tanh' }), tf.layers.dense({ units: 10 })] });
  const lc = LayerCollection.fromModel(model);
  const d = lc.numel();
  const train = randomBatches(model, 12, 5, 3);
  const query = randomBatches(model, 4, 4, 21);
  const gTrain = perExampleLossGradients(model, lc, train);
  const gQuery = perExampleLossGradients(model, lc, query);
  const damping = 0.2;
  const F = await FIM({ model, loader: train, representation: PMatDense });
  const t = F.toTensor();
  const m = Float64Array.from(t.dataSync());
  t.dispose();
  for (let i = 0; i < d; i++) m[i * d + i]! += damping;
  const before = tf.memory().numTensors;
  const exact = await pairwiseInfluence({ model, trainLoader: train, queryLoader: query, curvature: F, damping });
  const exactValues = exact.dataSync();
  const errors: number[] = [];
  for (const k of [1, 2, 4]) {
    const scores = await pairwiseInfluence({ model, trainLoader: train, queryLoader: query, curvature: F, damping, queryRank: k });
    const want: number[] = [];
    for (const g of gQuery) {
      const pre = solveDense(m, d, g, 1);
      const approx = new Float64Array(d);
      // Layer blocks [inputs + 1, outputs]: [21, 16] at 0, [17, 10] at 336.
      for (const [offset, r, c] of [[0, 21, 16], [336, 17, 10]] as const) approx.set(truncate(pre.subarray(offset, offset + r * c), r, c, k), offset);
      for (const gt of gTrain) want.push(approx.reduce((s, v, i) => s + v * gt[i]!, 0));
    }
    const err = relativeMaxError(scores.dataSync(), want);
    assert.ok(err < 1e-4, `rank ${k}: relative error ${err}`);
    errors.push(relativeMaxError(scores.dataSync(), exactValues));
    scores.dispose();
  }
  assert.ok(errors[0]! > errors[1]! && errors[1]! > errors[2]!, `errors against the exact scores fall with the rank: ${errors}`);
  exact.dispose();
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(() => pairwiseInfluence({ model, trainLoader: train, queryLoader: query, curvature: F, queryRank: 0 }), (e: Error) => e instanceof InvalidArgumentError && /'queryRank' must be an integer ≥ 1, received 0/.test(e.message));
  F.dispose();
  disposeBatches(train);
  disposeBatches(query);
  model.dispose();
});
