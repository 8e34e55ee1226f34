/**
 * No tensor leaks on the paths of issue 4: for every kind fixture and architecture, FIM in every
 * representation the model supports (and the implicit matrix's products, EKFAC's updateDiag)
 * leaves tf.memory().numTensors where it found it once the result is disposed; so do a model
 * loaded from disk and disposed, and a refused computation (Kronecker on a layer without
 * factors, a mask).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import {
  FIM,
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PMatQuasiDiag,
  PVector,
  loadModel,
  saveModel,
  type PMat,
  type Representation,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import * as M from '../support/layer-models.js';

before(async () => {
  await useTestBackend();
});

/** Runs f (which must succeed, or fail when `refused`), disposes its result, and compares the tensor count. */
async function unchanged(what: string, f: () => Promise<unknown>, refused = false): Promise<void> {
  const n0 = tf.memory().numTensors;
  const r = refused ? await assert.rejects(f) : await f();
  if (r && typeof (r as { dispose?: unknown }).dispose === 'function') (r as { dispose(): void }).dispose();
  assert.equal(tf.memory().numTensors, n0, `${what}: numTensors`);
}

const fixtures: Array<[string, () => tf.LayersModel]> = [
  ['Conv1D', () => M.conv1dModel()],
  ['Conv2DTranspose', M.conv2dTransposeModel],
  ['DepthwiseConv2D', M.depthwiseModel],
  ['SeparableConv2D', () => M.separableModel()],
  ['BatchNormalization', () => M.batchNormModel({ center: false })],
  ['LayerNormalization', M.layerNormModel],
  ['Embedding', M.embeddingModel],
  ['PReLU', M.preluModel],
  ['generic', M.genericModel],
  ['residual CNN', M.residualCnn],
  ['transformer block', M.transformerBlock],
  ['LSTM classifier', M.lstmClassifier],
];

for (const [name, make] of fixtures) {
  test(`no leaks: FIM in every supported representation and their products: ${name}`, async () => {
    const model = make();
    const loader = M.layerBatches(model, 4, 2);
    const kronecker = LayerCollection.fromModel(model).layers.every((e) => e.kind.kronecker);
    const reps: Array<Representation<PMat>> = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatEKFACBlockDiag];
    // QuasiDiag needs each bias as the last row of [K, C]: not Conv2DTranspose's separate bias block.
    const quasiDiag = kronecker && LayerCollection.fromModel(model).layers.every((e) => !e.kind.kronecker!.separateBias);
    if (kronecker) reps.push(PMatKFAC);
    if (quasiDiag) reps.push(PMatQuasiDiag);
    for (const representation of reps) await unchanged(`${name} ${representation.representationName}`, () => FIM({ model, loader, representation }));
    if (kronecker && !quasiDiag) await unchanged(`${name} refused QuasiDiag`, () => FIM({ model, loader, representation: PMatQuasiDiag }), true);
    if (!kronecker) await unchanged(`${name} refused KFAC`, () => FIM({ model, loader, representation: PMatKFAC }), true);
    const im = await FIM({ model, loader, representation: PMatImplicit });
    const v = PVector.random(im.layerCollection, 3);
    await unchanged(`${name} implicit mv`, () => im.mv(v));
    await unchanged(`${name} implicit trace`, () => im.trace());
    if (kronecker) {
      const ekfac = await FIM({ model, loader, representation: PMatEKFAC });
      await unchanged(`${name} EKFAC updateDiag`, async () => {
        await ekfac.updateDiag(loader);
      });
      ekfac.dispose();
    }
    v.dispose();
    M.disposeLayerBatches(loader);
    model.dispose();
  });
}

test('no leaks: saving and loading a model, then disposing it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nngeometry-leaks-'));
  const model = M.transformerBlock();
  const n0 = tf.memory().numTensors;
  await saveModel(model, dir);
  const loaded = await loadModel(dir);
  loaded.dispose();
  assert.equal(tf.memory().numTensors, n0);
  model.dispose();
  await rm(dir, { recursive: true, force: true });
});
