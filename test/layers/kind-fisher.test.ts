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
import { FIM, LayerCollection, PMatBlockDiag, PMatDense, PMatDiag, PMatImplicit, PMatLowRank, PVector, type PMat, type Representation } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { type RefVariant, bruteForceFisher, relativeError, selectSubmatrix } from '../support/reference.js';
import * as M from '../support/layer-models.js';
import { differentiableTwin, needsTwin } from './twins.js';

const TOL = 1e-4;

before(async () => {
  await useTestBackend();
});

type Batches = ReturnType<typeof M.layerBatches>;

/** The brute-force Fisher, through the differentiable twin when the model needs one. */
function reference(model: tf.LayersModel, lc: LayerCollection, batches: Batches, variant: RefVariant): Float64Array {
  const xs = batches.map((b) => b.xs as tf.Tensor);
  if (!needsTwin(model)) return bruteForceFisher(model, lc, xs, variant);
  const { twin, map } = differentiableTwin(model as tf.Sequential);
  const twinLc = LayerCollection.fromModel(twin);
  const full = bruteForceFisher(twin, twinLc, xs, variant);
  twin.dispose();
  return selectSubmatrix(full, twinLc.numel(), map);
}

async function fim<T extends PMat>(model: tf.LayersModel, batches: Batches, representation: Representation<T>, variant: RefVariant = 'classif_logits'): Promise<T> {
  return FIM({ model, loader: batches, representation, variant });
}

const host = (t: tf.Tensor): Float64Array => {
  const a = Float64Array.from(t.dataSync());
  t.dispose();
  return a;
};

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
    for (const variant of ['regression', 'classif_logits'] as const) {
      const n0 = tf.memory().numTensors;
      const F = await fim(model, batches, PMatDense, variant);
      assert.equal(tf.memory().numTensors, n0 + 1, `${name} ${variant}: FIM must leave only the matrix it returns`);
      const err = relativeError(F.values(), reference(model, lc, batches, variant));
      assert.ok(err <= TOL, `${name} ${variant}: relative error ${err}`);
      if (variant === 'regression') {
        F.dispose();
        continue;
      }
      const d = lc.numel();
      const full = F.values();
      const diagRef = Float64Array.from({ length: d }, (_, i) => full[i * d + i]!);
      const diag = await fim(model, batches, PMatDiag);
      assert.ok(relativeError(diag.values(), diagRef) < TOL, `${name}: PMatDiag`);
      const bd = await fim(model, batches, PMatBlockDiag);
      const blocks = new Float64Array(d * d);
      for (const e of lc.layers) {
        for (let r = e.offset; r < e.offset + e.numel; r++) for (let c = e.offset; c < e.offset + e.numel; c++) blocks[r * d + c] = full[r * d + c]!;
      }
      assert.ok(relativeError(host(bd.toTensor()), blocks) < TOL, `${name}: PMatBlockDiag`);
      const lr = await fim(model, batches, PMatLowRank);
      assert.ok(relativeError(host(lr.toTensor()), full) < TOL, `${name}: PMatLowRank`);
      const im = await fim(model, batches, PMatImplicit);
      const v = PVector.random(lc, 5);
      const mvRef = F.mv(v);
      const mv = await im.mv(v);
      assert.ok(relativeError(host(mv.toFlat()), host(mvRef.toFlat())) < TOL, `${name}: PMatImplicit mv`);
      assert.ok(Math.abs((await im.vTMv(v)) - F.vTMv(v)) <= TOL * Math.abs(F.vTMv(v)), `${name}: PMatImplicit vTMv`);
      assert.ok(Math.abs((await im.trace()) - F.trace()) <= TOL * F.trace(), `${name}: PMatImplicit trace`);
      [F, diag, bd, lr, v, mvRef, mv].forEach((o) => o.dispose());
    }
    M.disposeLayerBatches(batches);
    model.dispose();
  });
}
