/**
 * On small classifiers (an MLP and a CNN), every representation's influence scores equal the
 * dense float64 computation with that representation's own matrix (relative 1e-4):
 * scores[q, t] = ∇ℓ_qᵀ (M + λI)⁻¹ ∇ℓ_t with M = F.toTensor() (PMatImplicit: the exact dense F),
 * and per-example gradients by brute-force autodiff, one example at a time.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  pairwiseInfluence,
  selfInfluence,
  type PMat,
  type PMatBase,
  type Representation,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../support/models.js';
import { influenceReference, perExampleLossGradients, relativeMaxError } from './float64.js';

before(async () => {
  await useTestBackend();
});

const REPS: Record<string, Representation<PMatBase>> = { PMatDense, PMatDiag, PMatBlockDiag, PMatKFAC, PMatEKFAC, PMatLowRank, PMatImplicit };

for (const [modelName, make] of [['MLP', () => mlp()], ['CNN', () => cnn()]] as const) {
  describe(`influence scores on the ${modelName}`, () => {
    let model: tf.Sequential;
    let d: number;
    let train: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
    let query: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
    let gTrain: Float64Array[];
    let gQuery: Float64Array[];
    let dense: Float64Array;

    before(async () => {
      model = make();
      const lc = LayerCollection.fromModel(model);
      d = lc.numel();
      // Three training batches (8, 8, 4 examples), two query batches (3, 2).
      train = randomBatches(model, 20, 8, 11);
      query = randomBatches(model, 5, 3, 41);
      gTrain = perExampleLossGradients(model, lc, train);
      gQuery = perExampleLossGradients(model, lc, query);
      const F = await FIM({ model, loader: train, representation: PMatDense });
      dense = Float64Array.from(F.toTensor().dataSync());
      F.dispose();
    });
    after(() => {
      disposeBatches(train);
      disposeBatches(query);
    });

    for (const [name, rep] of Object.entries(REPS)) {
      test(`${name}: pairwise and self-influence equal ∇ℓ_qᵀ(M + λI)⁻¹∇ℓ_t with its own matrix M (1e-4)`, async () => {
        const before = tf.memory().numTensors;
        const damping = 0.05;
        // The matrix the influence functions use: FIM over the training data (EKFAC: with updateDiag).
        let matrix: Float64Array;
        if (rep === PMatImplicit) matrix = dense;
        else {
          const F = (await FIM({ model, loader: train, representation: rep })) as unknown as PMat;
          if (F instanceof PMatEKFAC) await F.updateDiag(train);
          const t = F.toTensor();
          matrix = Float64Array.from(t.dataSync());
          t.dispose();
          F.dispose();
        }
        const ref = influenceReference(matrix, d, damping, gQuery, gTrain);
        const scores = await pairwiseInfluence({ model, trainLoader: train, queryLoader: query, representation: rep, damping, cg: { rtol: 1e-9, maxIter: 400 } });
        assert.deepEqual(scores.shape, [5, 20]);
        const err = relativeMaxError(scores.dataSync(), ref.flat());
        assert.ok(err < 1e-4, `${name}: pairwise relative error ${err}`);
        const self = await selfInfluence({ model, trainLoader: train, representation: rep, damping, cg: { rtol: 1e-9, maxIter: 400 } });
        const selfRef = influenceReference(matrix, d, damping, gTrain, gTrain).map((row, t) => row[t]!);
        const errSelf = relativeMaxError(self.dataSync(), selfRef);
        assert.ok(errSelf < 1e-4, `${name}: self-influence relative error ${errSelf}`);
        tf.dispose([scores, self]);
        assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
      });
    }

    test('the default damping is 0.1 × tr(F)/d (EKFAC, as kronfluence)', async () => {
      const F = await FIM({ model, loader: train, representation: PMatEKFAC });
      await F.updateDiag(train);
      const damping = (0.1 * F.trace()) / d;
      const t = F.toTensor();
      const ref = influenceReference(Float64Array.from(t.dataSync()), d, damping, gTrain, gTrain).map((row, i) => row[i]!);
      tf.dispose([t]);
      F.dispose();
      const self = await selfInfluence({ model, trainLoader: train });
      const err = relativeMaxError(self.dataSync(), ref);
      self.dispose();
      assert.ok(err < 1e-4, `relative error ${err}`);
    });
  });
}

test('(E)KFAC self-influence of a wide layer (factored per example) equals the diagonal of the pairwise scores (projected gradients) (1e-4)', async () => {
  // Dense 200 → 40: k²c + kc² ≈ 1.9·10⁶, above the size where self-influence factors U_Aᵀ∇WU_G.
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 40, inputShape: [200], activation: 'tanh' }), tf.layers.dense({ units: 5 })] });
  const train = randomBatches(model, 16, 6, 5);
  for (const representation of [PMatKFAC, PMatEKFAC] as Array<Representation<PMatBase>>) {
    const before = tf.memory().numTensors;
    const self = await selfInfluence({ model, trainLoader: train, representation, damping: 0.01 });
    const pairs = await pairwiseInfluence({ model, trainLoader: train, queryLoader: train, representation, damping: 0.01 });
    const diag = tf.tidy(() => tf.sum(tf.mul(pairs, tf.eye(16)), 1));
    const err = relativeMaxError(self.dataSync(), diag.dataSync());
    tf.dispose([self, pairs, diag]);
    assert.equal(tf.memory().numTensors, before);
    assert.ok(err < 1e-4, `${(representation as { representationName: string }).representationName}: relative error ${err}`);
  }
  disposeBatches(train);
  model.dispose();
});
