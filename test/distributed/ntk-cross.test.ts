/**
 * The cross block of the tangent kernel that an off-diagonal NTK tile computes: for a tile
 * (I, J) fed as I's batches followed by J's, tangentKernelCross must give bit for bit the
 * entries K[·, I, ·, J] of the whole kernel over all the batches (what the local GramMatrix
 * computes), for an MLP and a CNN (weight-shared positions), with several row chunks, for blocks
 * that are not adjacent in the data; a batch straddling the boundary is refused. No Redis.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection } from '../../src/index.js';
import { jacobianOutputs } from '../../src/metrics/jacobian.js';
import { accumulate } from '../../src/statistics/statistic.js';
import { tangentKernel, tangentKernelCross } from '../../src/statistics/tangent-kernel.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../support/models.js';

before(async () => {
  await useTestBackend();
});

const specOf = (model: tf.LayersModel, loader: Array<{ xs: tf.Tensor }>) => ({ model, layerCollection: LayerCollection.fromModel(model), loader, outputs: jacobianOutputs() });

for (const [name, make, chunk] of [['MLP', () => mlp(), 6], ['CNN', () => cnn(), 2048]] as const) {
  test(`${name}: the cross block of I (batches 0–1) and J (batches 3–5, a different size) equals the whole kernel's entries bit for bit${chunk < 2048 ? ', in row chunks' : ''}`, async () => {
    const model = make();
    const batches = randomBatches(model, 18, 3); // 6 batches of 3
    const n0 = tf.memory().numTensors;
    try {
      const whole = await accumulate(specOf(model, batches.map((b) => ({ xs: b.xs }))), tangentKernel(LayerCollection.fromModel(model), chunk));
      const I = batches.slice(0, 2);
      const J = batches.slice(3, 6);
      const cross = await accumulate(specOf(model, [...I, ...J].map((b) => ({ xs: b.xs }))), tangentKernelCross(LayerCollection.fromModel(model), 6, chunk));
      const O = whole.outputs;
      const n = 18;
      assert.equal(cross.value.length, O * 6 * O * 9);
      // K[o, i, p, j] with i ∈ I = examples 0–5 and j ∈ J = examples 9–17.
      const expected = new Float64Array(O * 6 * O * 9);
      for (let o = 0; o < O; o++) for (let i = 0; i < 6; i++) for (let p = 0; p < O; p++) for (let j = 0; j < 9; j++) expected[(o * 6 + i) * O * 9 + p * 9 + j] = whole.value[(o * n + i) * O * n + p * n + 9 + j]!;
      assert.deepEqual(cross.value, expected, 'bit for bit');
      assert.ok(expected.some((v) => v !== 0), 'a non-trivial block');
      assert.equal(tf.memory().numTensors, n0, 'no tensor left');
    } finally {
      disposeBatches(batches);
      model.dispose();
    }
  });
}

test('a batch straddling the boundary between rows and columns is refused, naming it, leaving no tensor', async () => {
  const model = mlp();
  const batches = randomBatches(model, 8, 4);
  const n0 = tf.memory().numTensors;
  try {
    await assert.rejects(
      accumulate(specOf(model, batches.map((b) => ({ xs: b.xs }))), tangentKernelCross(LayerCollection.fromModel(model), 6)),
      /the batch of examples 4–7 straddles the boundary 6 between rows and columns/,
    );
    await assert.rejects(accumulate(specOf(model, batches.map((b) => ({ xs: b.xs }))), tangentKernelCross(LayerCollection.fromModel(model), 8)), /'rowExamples' must be an integer in \[1, 7\]/);
    assert.equal(tf.memory().numTensors, n0);
  } finally {
    disposeBatches(batches);
    model.dispose();
  }
});
