/**
 * Kronecker factors of the new kinds (Conv1D, Embedding) against the exact block (rel. 1e-4):
 * - identical inputs and one position ⇒ KFAC = the exact block-diagonal (Embedding of one token);
 * - inputs and output gradients constant over the S shared positions ⇒ exact block =
 *   S·(A ⊗ G) for 'expand' and A ⊗ G for 'reduce' (CONVENTIONS.md);
 * - Embedding's 'expand' A is the diagonal of the token frequencies;
 * - EKFAC's updated diagonal is the exact block projected on the Kronecker eigenbasis;
 * - QuasiDiag (Conv1D) holds the exact diagonal and weight–bias cross terms;
 * - the kinds without factors are refused by KFAC with the error naming PMatEKFACBlockDiag, which
 *   computes them (dense blocks) next to EKFAC for the others.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatBlockDiag, PMatDense, PMatEKFAC, PMatEKFACBlockDiag, PMatKFAC, PMatQuasiDiag, UnsupportedLayerError } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError, host } from '../support/reference.js';
import * as M from '../support/layer-models.js';

const TOL = 1e-4;

before(async () => {
  await useTestBackend();
});

const init = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed });

/** valid Conv1D (no zero padding) → global average pooling → dense: constant inputs stay constant over positions. */
function constantConv1d(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv1d({ inputShape: [5, 2], filters: 3, kernelSize: 2, kernelInitializer: init(1), biasInitializer: init(2) }));
  m.add(tf.layers.globalAveragePooling1d({}));
  m.add(tf.layers.dense({ units: 3, kernelInitializer: init(3), biasInitializer: init(4) }));
  return m;
}

/** Embedding over T tokens → global average pooling → dense. */
function pooledEmbedding(t: number): tf.LayersModel {
  const x = tf.input({ shape: [t], dtype: 'int32' });
  const e = tf.layers.embedding({ inputDim: M.VOCAB, outputDim: 3, embeddingsInitializer: init(5) }).apply(x) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling1d({}).apply(e) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: tf.layers.dense({ units: 3, kernelInitializer: init(6), biasInitializer: init(7) }).apply(pooled) as tf.SymbolicTensor });
}

/** The first layer alone (the one under test). */
const firstLayer = (model: tf.LayersModel) => LayerCollection.fromLayers(model, [LayerCollection.fromModel(model).ids()[0]!]);

test('Embedding of one token, identical inputs: KFAC equals the exact block', async () => {
  const model = pooledEmbedding(1);
  const lc = firstLayer(model);
  const xs = tf.fill([4, 1], 2, 'int32');
  const kfac = await FIM({ model, loader: [xs], representation: PMatKFAC, layerCollection: lc });
  const bd = await FIM({ model, loader: [xs], representation: PMatBlockDiag, layerCollection: lc });
  const err = relativeError(host(kfac.toTensor()), host(bd.toTensor()));
  assert.ok(err < TOL, `relative error ${err}`);
  [kfac, bd, xs].forEach((o) => o.dispose());
  model.dispose();
});

test("constant over positions: exact block = S·(A ⊗ G) ('expand') = A ⊗ G ('reduce') for Conv1D (S = 4) and Embedding (S = 3)", async () => {
  const cases: Array<[string, tf.LayersModel, tf.Tensor, number]> = [
    ['Conv1D', constantConv1d(), tf.tile(tf.tensor3d([[[0.7, -1.3]]]), [3, 5, 1]), 4],
    ['Embedding', pooledEmbedding(3), tf.fill([3, 3], 4, 'int32'), 3],
  ];
  for (const [name, model, xs, s] of cases) {
    const lc = firstLayer(model);
    const bd = await FIM({ model, loader: [xs], representation: PMatBlockDiag, layerCollection: lc });
    const expand = await FIM({ model, loader: [xs], representation: PMatKFAC, layerCollection: lc });
    const reduce = await FIM({ model, loader: [xs], representation: PMatKFAC.with({ kfacType: 'reduce' }), layerCollection: lc });
    const exact = host(bd.toTensor());
    const e1 = relativeError(host(expand.toTensor()).map((x) => s * x), exact);
    const e2 = relativeError(host(reduce.toTensor()), exact);
    assert.ok(e1 < TOL, `${name} expand: ${e1}`);
    assert.ok(e2 < TOL, `${name} reduce: ${e2}`);
    [bd, expand, reduce, xs].forEach((o) => o.dispose());
    model.dispose();
  }
});

test("Embedding's 'expand' input factor is diag(token frequencies)", async () => {
  const model = M.embeddingModel();
  const lc = firstLayer(model);
  const tokens = [[0, 1, 1, 5], [2, 2, 2, 1], [5, 0, 3, 3]];
  const xs = tf.tensor2d(tokens, [3, 4], 'int32');
  const kfac = await FIM({ model, loader: [xs], representation: PMatKFAC, layerCollection: lc });
  const { k, a } = kfac.layerFactors(lc.ids()[0]!);
  assert.equal(k, M.VOCAB);
  const expected = new Float64Array(k * k);
  for (const t of tokens.flat()) expected[t * k + t]! += 1 / tokens.length;
  // A is known up to the scale split between A and G: compare the normalised factors
  const scale = a[k + 1]! / expected[k + 1]!;
  assert.ok(relativeError(Float64Array.from(a, (x) => x / scale), expected) < TOL, 'A = diag(counts)/n');
  [kfac, xs].forEach((o) => o.dispose());
  model.dispose();
});

test('EKFAC after updateDiag: the diagonal is the exact block projected on the Kronecker eigenbasis (Conv1D, Embedding)', async () => {
  for (const make of [() => M.conv1dModel(), M.embeddingModel]) {
    const model = make();
    const lc = LayerCollection.fromLayers(model, LayerCollection.fromModel(model).ids().slice(0, 1));
    const batches = M.layerBatches(model, 6, 3);
    const ekfac = await FIM({ model, loader: batches, representation: PMatEKFAC, layerCollection: lc });
    const bd = await FIM({ model, loader: batches, representation: PMatBlockDiag, layerCollection: lc });
    const n0 = tf.memory().numTensors;
    await ekfac.updateDiag(batches);
    assert.equal(tf.memory().numTensors, n0, 'updateDiag keeps the tensor count');
    for (const blk of ekfac.eigenBlocks()) {
      const n = blk.k * blk.c;
      const block = bd.block(blk.id);
      const projected = new Float64Array(n);
      for (let p = 0; p < blk.k; p++) {
        for (let q = 0; q < blk.c; q++) {
          // column (p, q) of U_A ⊗ U_G
          const u = new Float64Array(n);
          for (let r = 0; r < blk.k; r++) for (let s = 0; s < blk.c; s++) u[r * blk.c + s] = blk.uA[r * blk.k + p]! * blk.uG[s * blk.c + q]!;
          let acc = 0;
          for (let i = 0; i < n; i++) {
            if (u[i] === 0) continue;
            let row = 0;
            for (let j = 0; j < n; j++) row += block[i * n + j]! * u[j]!;
            acc += u[i]! * row;
          }
          projected[p * blk.c + q] = acc;
        }
      }
      assert.ok(relativeError(blk.diagonal, projected) < TOL, `${blk.id}: ${relativeError(blk.diagonal, projected)}`);
    }
    [ekfac, bd].forEach((o) => o.dispose());
    M.disposeLayerBatches(batches);
    model.dispose();
  }
});

test('QuasiDiag on Conv1D: the exact diagonal and weight–bias cross terms', async () => {
  const model = M.conv1dModel();
  const lc = firstLayer(model);
  const batches = M.layerBatches(model, 6, 3);
  const dense = await FIM({ model, loader: batches, representation: PMatDense, layerCollection: lc });
  const q = await FIM({ model, loader: batches, representation: PMatQuasiDiag, layerCollection: lc });
  const d = lc.numel();
  const c = 3; // filters
  const full = dense.values();
  const expected = new Float64Array(d * d);
  for (let j = 0; j < d; j++) expected[j * d + j] = full[j * d + j]!;
  for (let j = 0; j < d - c; j++) {
    const b = d - c + (j % c);
    expected[j * d + b] = full[j * d + b]!;
    expected[b * d + j] = full[b * d + j]!;
  }
  assert.ok(relativeError(host(q.toTensor()), expected) < TOL, `QuasiDiag: ${relativeError(host(q.toTensor()), expected)}`);
  [dense, q].forEach((o) => o.dispose());
  M.disposeLayerBatches(batches);
  model.dispose();
});

test('layers without Kronecker factors: KFAC refuses them naming PMatEKFACBlockDiag, which gives them exact blocks', async () => {
  for (const make of [M.depthwiseModel, () => M.separableModel(), () => M.batchNormModel(), M.layerNormModel, M.preluModel, M.genericModel]) {
    const model = make();
    const batches = M.layerBatches(model, 4, 4);
    const lc = LayerCollection.fromModel(model);
    const without = lc.layers.find((e) => !e.kind.kronecker)!;
    await assert.rejects(
      () => FIM({ model, loader: batches, representation: PMatKFAC }),
      (e: Error) => e instanceof UnsupportedLayerError && e.message.includes(`'${without.id}'`) && /PMatEKFACBlockDiag/.test(e.message),
    );
    const mixed = await FIM({ model, loader: batches, representation: PMatEKFACBlockDiag });
    const bd = await FIM({ model, loader: batches, representation: PMatBlockDiag });
    const [ours, exact] = [host(mixed.toTensor()), host(bd.toTensor())];
    const d = lc.numel();
    const slice = (m: Float64Array) => Float64Array.from({ length: without.numel * without.numel }, (_, k) => m[(without.offset + Math.floor(k / without.numel)) * d + without.offset + (k % without.numel)]!);
    assert.ok(relativeError(slice(ours), slice(exact)) < TOL, `${without.id}: PMatEKFACBlockDiag block`);
    [mixed, bd].forEach((o) => o.dispose());
    M.disposeLayerBatches(batches);
    model.dispose();
  }
});
