/**
 * End-to-end architectures (issue 4): a residual CNN with BatchNormalization, a transformer-style
 * block (Embedding, learned positions, LayerNormalization, attention from Dense projections with
 * Dot and softmax layers, Dense on sequences, residual adds) and an LSTM classifier.
 * - PMatDense equals the brute-force Fisher (rel. 1e-4) and Diag/BlockDiag/LowRank/Implicit agree
 *   with it;
 * - the Kronecker representations refuse the layers without factors with their error, and work
 *   on the layers that have them: QuasiDiag holds the exact diagonal, EKFAC after updateDiag the
 *   exact block traces (1e-3), PMatEKFACBlockDiag mixes both;
 * - Jacobian equals the brute-force per-example Jacobian and GramMatrix equals J Jᵀ;
 * - functional graphs with two inputs, concatenation and a nested model of new kinds agree with
 *   brute force; a layer used twice is refused with a clear error; nothing leaks.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  GramMatrix,
  InvalidArgumentError,
  Jacobian,
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatKFAC,
  PMatQuasiDiag,
  UnsupportedLayerError,
  type PMat,
  type Representation,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { perExampleJacobian, relativeError } from '../support/reference.js';
import * as M from '../support/layer-models.js';
import { TOL, assertRepresentationsAgree, host, reference } from './agreement.js';

before(async () => {
  await useTestBackend();
});

const architectures: Array<[string, () => tf.LayersModel, string[]]> = [
  ['residual CNN with BatchNormalization', M.residualCnn, ['conv2d', 'batch_normalization', 'dense']],
  ['transformer block', M.transformerBlock, ['embedding', 'generic', 'layer_normalization', 'dense']],
  ['LSTM classifier', M.lstmClassifier, ['generic', 'dense']],
];

for (const [name, make, kinds] of architectures) {
  test(`${name}: PMatDense = brute force, and every per-example representation agrees with it`, async () => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    assert.deepEqual([...new Set(lc.layers.map((e) => e.kind.name))].sort(), [...kinds].sort());
    const batches = M.layerBatches(model, 5, 3);
    const n0 = tf.memory().numTensors;
    const F = await FIM({ model, loader: batches, representation: PMatDense });
    assert.equal(tf.memory().numTensors, n0 + 1, 'FIM leaves only its matrix');
    const err = relativeError(F.values(), reference(model, lc, batches.map((b) => b.xs), 'classif_logits'));
    assert.ok(err < TOL, `${name}: relative error ${err}`);
    await assertRepresentationsAgree(name, model, batches, F);
    assert.equal(tf.memory().numTensors, n0 + 1, 'the representations leak nothing');
    F.dispose();
    M.disposeLayerBatches(batches);
    model.dispose();
  });

  test(`${name}: Kronecker representations refuse the layers without factors and work on the others`, async () => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = M.layerBatches(model, 4, 4);
    const without = lc.layers.filter((e) => !e.kind.kronecker);
    for (const rep of [PMatKFAC, PMatEKFAC, PMatQuasiDiag] as Array<Representation<PMat>>) {
      await assert.rejects(
        () => FIM({ model, loader: batches, representation: rep }),
        (e: Error) => e instanceof UnsupportedLayerError && e.message.includes(`'${without[0]!.id}'`) && /PMatEKFACBlockDiag/.test(e.message),
        `${rep.representationName}`,
      );
    }
    const mixed = await FIM({ model, loader: batches, representation: PMatEKFACBlockDiag });
    const bd = await FIM({ model, loader: batches, representation: PMatBlockDiag });
    // the layers without factors get their exact blocks
    const d = lc.numel();
    const [ours, exact] = [host(mixed.toTensor()), host(bd.toTensor())];
    for (const e of without) {
      const pick = (m: Float64Array) => Float64Array.from({ length: e.numel * e.numel }, (_, k) => m[(e.offset + Math.floor(k / e.numel)) * d + e.offset + (k % e.numel)]!);
      assert.ok(relativeError(pick(ours), pick(exact)) < TOL, `${e.id}: exact block in PMatEKFACBlockDiag`);
    }
    // the layers with factors: KFAC, EKFAC and QuasiDiag on the restricted collection
    const kron = LayerCollection.fromLayers(model, lc.layers.filter((e) => e.kind.kronecker).map((e) => e.id));
    const spec = { model, loader: batches, layerCollection: kron };
    const kfac = await FIM({ ...spec, representation: PMatKFAC });
    assert.ok(Number.isFinite(kfac.trace()) && kfac.trace() > 0, 'KFAC trace');
    const ekfac = await FIM({ ...spec, representation: PMatEKFAC });
    await ekfac.updateDiag(batches);
    const kbd = await FIM({ ...spec, representation: PMatBlockDiag });
    assert.ok(Math.abs(ekfac.trace() - kbd.trace()) < 1e-3 * kbd.trace(), 'EKFAC (updated) trace = exact block trace');
    const q = await FIM({ ...spec, representation: PMatQuasiDiag });
    const diag = await FIM({ ...spec, representation: PMatDiag });
    assert.ok(relativeError(host(q.getDiag()), diag.values()) < TOL, 'QuasiDiag diagonal');
    [mixed, bd, kfac, ekfac, kbd, q, diag].forEach((o) => o.dispose());
    M.disposeLayerBatches(batches);
    model.dispose();
  });
}

for (const [name, make] of architectures) {
  test(`${name}: Jacobian = brute-force per-example Jacobian and GramMatrix = J Jᵀ (rel. 1e-4)`, async () => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = M.layerBatches(model, 4, 2);
    const J = await Jacobian({ model, loader: batches });
    const [o, n, d] = J.data.shape;
    const ours = Float64Array.from(J.data.dataSync());
    J.dispose();
    // brute force, example by example: rows ∂f_c(x_i)/∂θ through tfjs-layers' own forward
    const ref = new Float64Array(o * n * d);
    let i = 0;
    for (const { xs } of batches) {
      for (let r = 0; r < (xs as tf.Tensor).shape[0]!; r++, i++) {
        const xi = tf.slice(xs as tf.Tensor, [r], [1]);
        perExampleJacobian(model, lc, xi).jac.forEach((row, c) => ref.set(row, (c * n + i) * d));
        xi.dispose();
      }
    }
    assert.ok(relativeError(ours, ref) < TOL, `Jacobian: ${relativeError(ours, ref)}`);
    const K = await GramMatrix({ model, loader: batches });
    const m = o * n;
    const jjt = new Float64Array(m * m);
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) for (let k = 0; k < d; k++) jjt[a * m + b]! += ref[a * d + k]! * ref[b * d + k]!;
    assert.ok(relativeError(K.values(), jjt) < TOL, `GramMatrix: ${relativeError(K.values(), jjt)}`);
    K.dispose();
    M.disposeLayerBatches(batches);
    model.dispose();
  });
}

test('two inputs (tokens and features), concatenation and a nested Sequential of new kinds: PMatDense = brute force', async () => {
  const inner = tf.sequential({ name: 'inner_block' });
  inner.add(tf.layers.conv1d({ inputShape: [4, 3], filters: 2, kernelSize: 2, activation: 'tanh', kernelInitializer: 'glorotNormal', biasInitializer: 'randomNormal' }));
  inner.add(tf.layers.layerNormalization({ betaInitializer: 'randomNormal' }));
  inner.add(tf.layers.prelu({ alphaInitializer: tf.initializers.constant({ value: 0.2 }) }));
  const tokens = tf.input({ shape: [4], dtype: 'int32' });
  const features = tf.input({ shape: [2] });
  const embedded = tf.layers.embedding({ inputDim: M.VOCAB, outputDim: 3, embeddingsInitializer: 'randomNormal' }).apply(tokens) as tf.SymbolicTensor;
  const seq = tf.layers.flatten().apply(inner.apply(embedded)) as tf.SymbolicTensor;
  const side = tf.layers.dense({ units: 2, activation: 'tanh', biasInitializer: 'randomNormal' }).apply(features) as tf.SymbolicTensor;
  const joined = tf.layers.concatenate().apply([seq, side]) as tf.SymbolicTensor;
  const model = tf.model({ inputs: [tokens, features], outputs: tf.layers.dense({ units: 3 }).apply(joined) as tf.SymbolicTensor });
  const lc = LayerCollection.fromModel(model);
  assert.ok(lc.ids().some((id) => id.startsWith('inner_block/')), `nested ids: ${lc.ids().join(', ')}`);
  const batches = M.layerBatches(model, 5, 3);
  const F = await FIM({ model, loader: batches, representation: PMatDense });
  const err = relativeError(F.values(), reference(model, lc, batches.map((b) => b.xs), 'classif_logits'));
  assert.ok(err < TOL, `relative error ${err}`);
  F.dispose();
  M.disposeLayerBatches(batches);
  model.dispose();
});

test('wrapper layers (TimeDistributed, Bidirectional) through the generic kind: PMatDense = brute force', async () => {
  const m = tf.sequential();
  m.add(tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 3, biasInitializer: 'randomNormal' }), inputShape: [3, 2] }));
  m.add(tf.layers.bidirectional({ layer: tf.layers.gru({ units: 2 }) as tf.RNN }));
  m.add(tf.layers.dense({ units: 3 }));
  const lc = LayerCollection.fromModel(m);
  assert.deepEqual(lc.layers.map((e) => e.kind.name), ['generic', 'generic', 'dense']);
  const batches = M.layerBatches(m, 4, 2);
  const F = await FIM({ model: m, loader: batches, representation: PMatDense });
  const err = relativeError(F.values(), reference(m, lc, batches.map((b) => b.xs), 'classif_logits'));
  assert.ok(err < TOL, `relative error ${err}`);
  F.dispose();
  M.disposeLayerBatches(batches);
  m.dispose();
});

test('frozen layers tfjs cannot differentiate through (dilated Conv1D, BatchNormalization without center) before collected layers', async () => {
  const m = tf.sequential();
  m.add(tf.layers.conv1d({ inputShape: [6, 2], filters: 3, kernelSize: 2, dilationRate: 2, activation: 'tanh', biasInitializer: 'randomNormal', trainable: false }));
  m.add(tf.layers.batchNormalization({ center: false, gammaInitializer: 'randomUniform', trainable: false }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 4, activation: 'tanh', biasInitializer: 'randomNormal' }));
  m.add(tf.layers.dense({ units: 3 }));
  const lc = LayerCollection.fromModel(m);
  assert.deepEqual(lc.layers.map((e) => e.kind.name), ['dense', 'dense']);
  const batches = M.layerBatches(m, 4, 2);
  const F = await FIM({ model: m, loader: batches, representation: PMatDense });
  const err = relativeError(F.values(), reference(m, lc, batches.map((b) => b.xs), 'classif_logits'));
  assert.ok(err < TOL, `relative error ${err}`);
  F.dispose();
  M.disposeLayerBatches(batches);
  m.dispose();
});

test('a layer used twice in one forward pass (shared weights) is refused with a clear error, and leaks nothing', async () => {
  const shared = tf.layers.layerNormalization({ name: 'shared_ln' });
  const x = tf.input({ shape: [3] });
  const h = tf.layers.dense({ units: 3 }).apply(shared.apply(x)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: x, outputs: shared.apply(h) as tf.SymbolicTensor });
  const xs = tf.ones([2, 3]);
  const n0 = tf.memory().numTensors;
  await assert.rejects(
    () => FIM({ model, loader: [xs], representation: PMatDense }),
    (e: Error) => e instanceof InvalidArgumentError && /shared_ln/.test(e.message) && /more than once/.test(e.message),
  );
  assert.equal(tf.memory().numTensors, n0);
  xs.dispose();
  model.dispose();
});

test('masks (Embedding maskZero) are refused: the executor does not propagate them', async () => {
  const m = tf.sequential();
  m.add(tf.layers.embedding({ inputDim: M.VOCAB, outputDim: 2, inputLength: 3, maskZero: true, name: 'masking_emb' }));
  m.add(tf.layers.lstm({ units: 2 }));
  const xs = tf.tensor2d([[1, 2, 0]], [1, 3], 'float32');
  await assert.rejects(() => FIM({ model: m, loader: [xs], representation: PMatDiag }), (e: Error) => e instanceof UnsupportedLayerError && /masking_emb/.test(e.message) && /mask/.test(e.message));
  xs.dispose();
  m.dispose();
});
