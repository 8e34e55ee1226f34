/**
 * Every layer kind of issue 4 in a tiny model: PMatDense equals the brute-force Fisher from
 * per-example autodiff through tfjs-layers' own forward (reference.ts; through a differentiable
 * twin where tfjs cannot differentiate the layer itself, twins.ts) for classif_logits and
 * regression (relative Frobenius error ≤ 1e-4); PMatDiag, PMatBlockDiag, PMatLowRank and
 * PMatImplicit agree with PMatDense (diagonal, diagonal blocks, trace/mv/vTMv; ≤ 1e-4); and FIM
 * leaves no tensor behind but the ones it returns.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatDense } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';
import * as M from '../support/layer-models.js';
import { TOL, assertRepresentationsAgree, reference } from './agreement.js';

before(async () => {
  await useTestBackend();
});

const models: Array<[string, () => tf.LayersModel]> = [
  ['Conv1D', () => M.conv1dModel()],
  ['Conv1D dilated', () => M.conv1dModel({ dilation: 2 })],
  ['Conv2DTranspose', M.conv2dTransposeModel],
  ['DepthwiseConv2D', M.depthwiseModel],
  ['SeparableConv2D', () => M.separableModel()],
  ['SeparableConv2D dilated', () => M.separableModel({ dilation: 2 })],
  ['BatchNormalization', () => M.batchNormModel()],
  ['BatchNormalization scale: false', () => M.batchNormModel({ scale: false })],
  ['BatchNormalization center: false', () => M.batchNormModel({ center: false })],
  ['LayerNormalization', M.layerNormModel],
  ['Embedding', M.embeddingModel],
  ['PReLU', M.preluModel],
  ['generic (SimpleRNN, GRU, custom layer)', M.genericModel],
];

for (const [name, make] of models) {
  test(`PMatDense = brute-force Fisher (classif_logits, regression) and Diag/BlockDiag/LowRank/Implicit agree with it: ${name}`, async () => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = M.layerBatches(model, 5, 3);
    const xs = batches.map((b) => b.xs);
    for (const variant of ['regression', 'classif_logits'] as const) {
      const n0 = tf.memory().numTensors;
      const F = await FIM({ model, loader: batches, representation: PMatDense, variant });
      assert.equal(tf.memory().numTensors, n0 + 1, `${name} ${variant}: FIM must leave only the matrix it returns`);
      const err = relativeError(F.values(), reference(model, lc, xs, variant));
      assert.ok(err <= TOL, `${name} ${variant}: relative error ${err}`);
      if (variant === 'classif_logits') await assertRepresentationsAgree(name, model, batches, F);
      F.dispose();
    }
    M.disposeLayerBatches(batches);
    model.dispose();
  });
}
