/**
 * One finiteness policy. On a model whose Fisher statistics overflow float32 (first-layer
 * weights of 1e20: activations ~2e20 past 2^64 ≈ 1.8e19, whose squares exceed 3.4e38, while the
 * logits stay ~1), every representation — stored ones at FIM, the matrix-free one at each
 * operation — throws the same NonFiniteError with the same message (from the pass, naming the
 * layer), leaves no tensor and the model's weights untouched. Before, KFAC, QuasiDiag, LowRank,
 * Implicit and a KFAC group of a PMatMixed returned trace = Infinity (classif_logits: Dense,
 * BlockDiag and LowRank gave a finite matrix while Diag threw), and EKFAC leaked the blocks of
 * the layers before the failing one. Just below the bound (5e18: inputs ~1e19, their sums over a
 * batch overflow) each representation's own check throws NonFiniteError or the result is finite:
 * never Infinity. The control row: at 1e17 every representation works and the traces agree with
 * the dense one (rel. 1e-4).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  FIMMonteCarlo,
  LayerCollection,
  NonFiniteError,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PMatMixed,
  PMatQuasiDiag,
  PVector,
  terminateWorkers,
  type PMatBase,
  type Representation,
} from '../../src/index.js';
import { kfacEigenBlocks } from '../../src/object/pspace/ekfac.js';
import { useTestBackend } from '../support/backend.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

let model: tf.LayersModel;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;

before(async () => {
  await useTestBackend();
  model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [3], activation: 'relu' }), tf.layers.dense({ units: 3 })] });
  batches = [0, 1].map((k) => ({ xs: tf.randomUniform([4, 3], 0.5, 1, 'float32', 3 + k), ys: tf.tensor1d([0, 1, 2, k], 'int32') }));
});

after(async () => {
  await terminateWorkers();
  batches.forEach((b) => tf.dispose([b.xs, b.ys]));
  model.dispose();
});

/** First layer's kernel filled with `scale` (zero bias), the last layer's kernel ~ 1/scale so that the logits stay O(1). */
function setScale(scale: number): void {
  tf.tidy(() => {
    model.layers[0]!.setWeights([tf.fill([3, 4], scale), tf.zeros([4])]);
    model.layers[1]!.setWeights([tf.mul(tf.randomNormal([4, 3], 0, 1, 'float32', 1), 1 / scale), tf.tensor1d([0.1, -0.2, 0.3])]);
  });
}

const weights = () => model.getWeights().map((w) => Array.from(w.dataSync()));

const REPS: Record<string, Representation<Loose>> = {
  PMatDense,
  PMatDiag,
  PMatBlockDiag,
  PMatLowRank,
  PMatKFAC,
  'PMatKFAC (reduce)': PMatKFAC.with({ kfacType: 'reduce' }),
  PMatEKFAC,
  'PMatEKFAC (reduce)': PMatEKFAC.with({ kfacType: 'reduce' }),
  PMatQuasiDiag,
  PMatEKFACBlockDiag,
  'PMatMixed (diag + KFAC)': PMatMixed.fromMapping({ default: PMatDiag, byLayerKind: { dense: PMatKFAC } }),
};

const OVERFLOW = /float32 overflow of the Fisher statistics.*Rescale the weights or the inputs/;

/** Asserts a NonFiniteError naming the overflow, no tensor left, the model untouched; returns the message. */
async function expectOverflow(run: () => Promise<unknown>): Promise<string> {
  const n0 = tf.memory().numTensors;
  const w0 = weights();
  let message = '';
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof NonFiniteError, `expected NonFiniteError, got ${String(e)}`);
    assert.match((e as Error).message, OVERFLOW);
    message = (e as Error).message;
    return true;
  });
  assert.equal(tf.memory().numTensors, n0, 'tensors leaked when throwing');
  assert.deepEqual(weights(), w0, 'the model was modified');
  return message;
}

/** Messages of the overflow rows, by variant then representation. */
const messages: Record<string, Record<string, string>> = { classif_logits: {}, regression: {} };

for (const variant of ['classif_logits', 'regression'] as const) {
  for (const [name, representation] of Object.entries(REPS)) {
    test(`overflow (${variant}): FIM ${name} throws NonFiniteError naming the overflow, without leaking`, async () => {
      setScale(1e20);
      messages[variant]![name] = await expectOverflow(() => FIM({ model, loader: batches, representation, variant, workers: 1 }));
    });
  }
  test(`overflow (${variant}): PMatImplicit throws the same error at trace, mv and vTMv`, async () => {
    setScale(1e20);
    const F = await FIM({ model, loader: batches, representation: PMatImplicit, variant, workers: 1 });
    const v = PVector.fromModel(model);
    try {
      messages[variant]!['PMatImplicit.trace'] = await expectOverflow(() => F.trace());
      messages[variant]!['PMatImplicit.mv'] = await expectOverflow(() => F.mv(v));
      messages[variant]!['PMatImplicit.vTMv'] = await expectOverflow(() => F.vTMv(v));
    } finally {
      v.dispose();
      F.dispose();
    }
  });
}

for (const variant of ['classif_logits', 'regression'] as const) {
  test(`overflow (${variant}): every representation gave the same message, naming the layer`, () => {
    const all = Object.entries(messages[variant]!);
    assert.equal(all.length, Object.keys(REPS).length + 3);
    for (const [name, m] of all) assert.equal(m, all[0]![1], `${name} differs from ${all[0]![0]}`);
    assert.match(all[0]![1], /layer '.*': its inputs reach 2\.\d+e\+20, at or past 2\^64/);
  });
}

test('just below the bound (5e18): no representation returns Infinity; KFAC, EKFAC, QuasiDiag and Implicit (silent before) throw NonFiniteError', async () => {
  setScale(5e18);
  const mustThrow = new Set(['PMatKFAC', 'PMatKFAC (reduce)', 'PMatEKFAC', 'PMatQuasiDiag', 'PMatMixed (diag + KFAC)', 'PMatImplicit']);
  for (const [name, representation] of Object.entries({ ...REPS, PMatImplicit })) {
    const n0 = tf.memory().numTensors;
    let outcome: string;
    try {
      const F = (await FIM({ model, loader: batches, representation, variant: 'regression', workers: 1 })) as Loose;
      try {
        const t = await F.trace();
        assert.ok(Number.isFinite(t), `${name}: trace ${t}`);
        outcome = 'finite';
      } finally {
        F.dispose();
      }
    } catch (e) {
      if (!(e instanceof NonFiniteError)) throw e;
      assert.match(e.message, OVERFLOW);
      outcome = 'NonFiniteError';
    }
    assert.equal(tf.memory().numTensors, n0, `${name}: tensors leaked`);
    if (mustThrow.has(name)) assert.equal(outcome, 'NonFiniteError', name);
  }
});

test('overflow: FIMMonteCarlo (KFAC, LowRank) throws the same error', async () => {
  setScale(1e20);
  for (const representation of [PMatKFAC, PMatLowRank] as Array<Representation<PMatBase>>) {
    await expectOverflow(() => FIMMonteCarlo({ model, loader: batches, representation, seed: 3, trials: 2 }));
  }
});

test('overflow with workers: 2: the thread share and this thread agree on the error (KFAC)', async () => {
  setScale(1e20);
  await expectOverflow(() => FIM({ model, loader: batches, representation: PMatKFAC, workers: 2 }));
});

test('control: at 1e17 (large, no overflow) every representation works and its trace is the dense one (rel. 1e-4)', async () => {
  setScale(1e17);
  const traces: Record<string, number> = {};
  const n0 = tf.memory().numTensors;
  for (const [name, representation] of Object.entries({ ...REPS, PMatImplicit })) {
    const F = (await FIM({ model, loader: batches, representation, variant: 'regression', workers: 1 })) as Loose;
    traces[name] = await F.trace();
    F.dispose();
  }
  assert.equal(tf.memory().numTensors, n0);
  const dense = traces.PMatDense!;
  assert.ok(Number.isFinite(dense) && dense > 1e30, `dense trace ${dense}`);
  for (const [name, t] of Object.entries(traces)) assert.ok(Math.abs(t - dense) <= 1e-4 * dense, `${name}: trace ${t} vs dense ${dense}`);
});

test('kfacEigenBlocks: a factor that fails its eigendecomposition releases the blocks already built (5 tensors each)', () => {
  const eye = Float64Array.of(1, 0, 0, 1);
  const n0 = tf.memory().numTensors;
  assert.throws(
    () => kfacEigenBlocks([{ k: 2, c: 2, a: eye, g: eye }, { k: 2, c: 2, a: Float64Array.of(NaN, 0, 0, 1), g: eye }]),
    (e: unknown) => e instanceof NonFiniteError,
  );
  assert.equal(tf.memory().numTensors, n0);
});

test('PMatBlockDiag.fromBlocks: a non-finite block after a good one leaks nothing (every block is checked before any is wrapped)', () => {
  const lc = LayerCollection.fromModel(model);
  const [a, b] = lc.layers.map((e) => e.numel);
  const n0 = tf.memory().numTensors;
  assert.throws(
    () => PMatBlockDiag.fromBlocks(lc, [new Float64Array(a! * a!), Float64Array.from({ length: b! * b! }, (_, k) => (k === 3 ? Infinity : 0))]),
    (e: unknown) => e instanceof NonFiniteError,
  );
  assert.equal(tf.memory().numTensors, n0);
});
