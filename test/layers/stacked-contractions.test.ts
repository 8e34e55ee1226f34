/**
 * Every layer kind's contractions over k = 3 output-major stacked outputs (x [B, ...], g [3·B, ...])
 * equal the same contractions summed or laid side by side over the three single outputs
 * (k = 1 on each block of g), rel. 1e-5: squaredGradientSum, gradientDot, weightedGradientSum
 * and, for Kronecker kinds, eigenbasisSquaredSum and weightBiasCross. Covers the native stacked
 * rules (Dense, Conv1D, Conv2D, Embedding's Kronecker terms) and the tiling fallback of the
 * builders (per-example kinds, Conv2DTranspose, Embedding's token rules); each returns one
 * tensor and leaks none. The k = 1 contractions themselves are checked against per-example
 * gradients in kind-contractions.test.ts and layer-kinds.test.ts.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { LayerCollection, type LayerEntry } from '../../src/layers/layer-collection.js';
import { outputSlice } from '../../src/backend/stacking.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';
import * as M from '../support/layer-models.js';

before(async () => {
  await useTestBackend();
});

const arr = (t: tf.Tensor) => {
  const a = Array.from(t.dataSync());
  t.dispose();
  return a;
};

const K = 3;
const B = 2;

/** Layer input [B, ...] and stacked pre-activation gradients [K·B, ...]. */
function sample(e: LayerEntry, seed: number): { x: tf.Tensor; g: tf.Tensor } {
  const input = e.layer.input as tf.SymbolicTensor;
  const shape = [B, ...(input.shape.slice(1) as number[])];
  const x = input.dtype === 'int32' ? M.randomTokens(shape, seed) : tf.randomNormal(shape, 0, 1, 'float32', seed);
  const s = e.kind.preactivation(e.layer, x);
  const g = tf.randomNormal([K * B, ...s.shape.slice(1)], 0, 1, 'float32', seed + 1);
  s.dispose();
  return { x, g };
}

const fixtures: Array<[string, () => tf.LayersModel]> = [
  ['Conv1D + Dense', () => M.conv1dModel()],
  ['Conv2DTranspose + Conv2D', M.conv2dTransposeModel],
  ['DepthwiseConv2D', M.depthwiseModel],
  ['SeparableConv2D', () => M.separableModel()],
  ['BatchNormalization', () => M.batchNormModel()],
  ['LayerNormalization', M.layerNormModel],
  ['Embedding', M.embeddingModel],
  ['PReLU', M.preluModel],
  ['generic', M.genericModel],
];

for (const [name, make] of fixtures) {
  test(`stacked contractions (k = ${K}) equal the single-output ones per block: ${name}`, () => {
    const model = make();
    const before0 = tf.memory().numTensors;
    for (const e of LayerCollection.fromModel(model).layers) {
      const { x, g } = sample(e, 31);
      const v = tf.randomNormal([e.numel], 0, 1, 'float32', 7) as tf.Tensor1D;
      const u = tf.randomNormal([K * B], 0, 1, 'float32', 8) as tf.Tensor1D;
      const blocks = Array.from({ length: K }, (_, o) => outputSlice(g, o, B));
      const extra: tf.Tensor[] = [];
      const uBlocks = Array.from({ length: K }, (_, o) => tf.slice(u, [o * B], [B]) as tf.Tensor1D);
      const checks: Array<[string, () => tf.Tensor, () => tf.Tensor]> = [
        ['squaredGradientSum', () => e.kind.squaredGradientSum(e.layer, x, g, K), () => tf.addN(blocks.map((b) => e.kind.squaredGradientSum(e.layer, x, b, 1)))],
        ['gradientDot', () => e.kind.gradientDot(e.layer, x, g, v, K), () => tf.concat(blocks.map((b) => e.kind.gradientDot(e.layer, x, b, v, 1)))],
        [
          'weightedGradientSum',
          () => e.kind.weightedGradientSum(e.layer, x, g, u, K),
          () => tf.addN(blocks.map((b, o) => e.kind.weightedGradientSum(e.layer, x, b, uBlocks[o]!, 1))),
        ],
      ];
      const kr = e.kind.kronecker;
      if (kr) {
        const [rows, cols] = kr.factorSizes(e.layer);
        const inputSize = kr.rowFactor === 'gradients' ? cols : rows;
        const outputSize = kr.rowFactor === 'gradients' ? rows : cols;
        // Any orthonormal bases exercise the contraction: Q factors of random matrices.
        const uIn = tf.tidy(() => tf.linalg.qr(tf.randomNormal([inputSize, inputSize], 0, 1, 'float32', 5))[0] as tf.Tensor2D);
        const uOut = tf.tidy(() => tf.linalg.qr(tf.randomNormal([outputSize, outputSize], 0, 1, 'float32', 6))[0] as tf.Tensor2D);
        const projected = kr.projectInputs(e.layer, x, uIn);
        checks.push([
          'eigenbasisSquaredSum',
          () => kr.eigenbasisSquaredSum(e.layer, projected, g, uOut, K),
          () => tf.addN(blocks.map((b) => kr.eigenbasisSquaredSum(e.layer, projected, b, uOut, 1))),
        ]);
        if (kr.hasBias(e.layer)) {
          checks.push(['weightBiasCross', () => kr.weightBiasCross(e.layer, x, g, K), () => tf.addN(blocks.map((b) => kr.weightBiasCross(e.layer, x, b, 1)))]);
        }
        extra.push(uIn, uOut, projected);
      }
      for (const [what, stacked, perBlock] of checks) {
        const n0 = tf.memory().numTensors;
        const ours = stacked();
        assert.equal(tf.memory().numTensors, n0 + 1, `${e.id} ${what}: returns one tensor and leaks none`);
        const err = relativeError(arr(ours), arr(tf.tidy(perBlock)));
        assert.ok(err < 1e-5, `${e.id} (${e.kind.name}) ${what}: relative error ${err}`);
      }
      tf.dispose([x, g, v, u, ...blocks, ...uBlocks, ...extra]);
    }
    assert.equal(tf.memory().numTensors, before0, 'no tensor leaks');
    model.dispose();
  });
}
