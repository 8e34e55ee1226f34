/**
 * PMatMixed computes its groups in one shared pass over the data (SharedPass): one forward and
 * backward pass per batch for all groups, a one-shot loader serves them all, and a failing or
 * pass-less group neither hangs the others nor leaks.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, FIMMonteCarlo, InvalidArgumentError, LayerCollection, PMatBlockDiag, PMatDiag, PMatEKFAC, PMatEKFACBlockDiag, PMatImplicit, PMatKFAC, PMatMixed, type PMat, type Representation } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError, host } from '../support/reference.js';
import * as M from '../support/layer-models.js';

before(async () => {
  await useTestBackend();
});

test('mixed groups share one pass: progress once per batch, same matrix as each group computed alone (1e-6), from a one-shot generator too', async () => {
  const model = M.residualCnn(); // conv/dense (EKFAC) and BatchNormalization (dense blocks)
  const batches = M.layerBatches(model, 6, 2);
  const progress: number[] = [];
  const n0 = tf.memory().numTensors;
  const mixed = (await FIM({ model, loader: batches, representation: PMatEKFACBlockDiag, onProgress: (p) => progress.push(p.examplesDone) })) as PMatMixed;
  assert.deepEqual(progress, [2, 4, 6], 'one pass over the 3 batches for both groups');
  assert.equal(mixed.parts().length, 2);
  for (const { matrix, layerIds } of mixed.parts()) {
    const rep = (matrix instanceof PMatEKFAC ? PMatEKFAC : PMatBlockDiag) as Representation<PMat>;
    const alone = await FIM({ model, loader: batches, representation: rep, layerCollection: LayerCollection.fromLayers(model, layerIds) });
    const err = relativeError(host((matrix as PMat & { toTensor(): tf.Tensor }).toTensor()), host((alone as PMat & { toTensor(): tf.Tensor }).toTensor()));
    assert.ok(err < 1e-6, `group ${matrix.constructor.name}: relative error ${err}`);
    alone.dispose();
  }
  // A generator can be iterated once: separate passes per group would see no data the second time.
  async function* oneShot() {
    for (const b of batches) yield b;
  }
  const fromGenerator = await FIM({ model, loader: oneShot(), representation: PMatEKFACBlockDiag });
  const err = relativeError(host(fromGenerator.toTensor()), host(mixed.toTensor()));
  assert.ok(err < 1e-6, `one-shot generator: relative error ${err}`);
  fromGenerator.dispose();
  mixed.dispose();
  assert.equal(tf.memory().numTensors, n0, 'no tensor leaks');
  M.disposeLayerBatches(batches);
});

test('mixed Monte-Carlo Fisher: one sampled label per example shared by the groups (KFAC + dense blocks = each group alone with the same seed, 1e-6)', async () => {
  const model = M.residualCnn();
  const batches = M.layerBatches(model, 4, 2);
  const KFACBlockDiag = PMatMixed.fromMapping({ default: PMatBlockDiag, kronecker: PMatKFAC }, 'PMatKFACBlockDiag');
  const mixed = (await FIMMonteCarlo({ model, loader: batches, representation: KFACBlockDiag, trials: 1, seed: 5 })) as PMatMixed;
  for (const { matrix, layerIds } of mixed.parts()) {
    const rep = (matrix instanceof PMatKFAC ? PMatKFAC : PMatBlockDiag) as Representation<PMat>;
    const alone = await FIMMonteCarlo({ model, loader: batches, representation: rep, layerCollection: LayerCollection.fromLayers(model, layerIds), trials: 1, seed: 5 });
    const err = relativeError(host((matrix as PMat & { toTensor(): tf.Tensor }).toTensor()), host((alone as PMat & { toTensor(): tf.Tensor }).toTensor()));
    assert.ok(err < 1e-6, `group ${matrix.constructor.name}: relative error ${err}`);
    alone.dispose();
  }
  mixed.dispose();
  M.disposeLayerBatches(batches);
});

test('a group that fails or has no pass neither hangs the shared pass nor leaks', async () => {
  const model = M.residualCnn();
  const batches = M.layerBatches(model, 4, 2);
  const n0 = tf.memory().numTensors;
  const failing: Representation<PMat> = {
    representationName: 'Failing',
    compute: async () => {
      throw new InvalidArgumentError('this representation always fails');
    },
  };
  await assert.rejects(FIM({ model, loader: batches, representation: PMatMixed.fromMapping({ default: failing, kronecker: PMatEKFAC }) }), /always fails/);
  await assert.rejects(FIM({ model, loader: batches, representation: PMatMixed.fromMapping({ default: PMatImplicit as unknown as Representation<PMat>, kronecker: PMatDiag }) }), /not a stored representation/);
  assert.equal(tf.memory().numTensors, n0, 'no tensor leaks');
  M.disposeLayerBatches(batches);
});
