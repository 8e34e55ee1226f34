/**
 * FIMMonteCarlo: with 200 sampled labels per example (32 examples) it is within 10% (relative Frobenius) of
 * the closed-form FIM of the same variant, for every variant (segmentation against the per-pixel
 * closed form); 2·KL(θ, θ±dw) ≈ dwᵀF̂dw within 5%; the same seed gives the identical matrix and
 * every representation sees the same samples (Diag, BlockDiag, LowRank, Implicit agree with
 * Dense to 1e-4); bad options get typed errors naming the option. No call leaks a tensor.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  FIMMonteCarlo,
  InvalidArgumentError,
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatImplicit,
  PMatLowRank,
  PVector,
  type MonteCarloVariant,
} from '../../src/index.js';
import type { CotangentSource } from '../../src/backend/pass.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { relativeError, host } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

/** Conv net with a per-pixel class output [B, 3, 3, 3]. */
function segmentationModel(): tf.Sequential {
  let seed = 40;
  const init = () => tf.initializers.randomNormal({ mean: 0, stddev: 0.6, seed: seed++ });
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'tanh', inputShape: [3, 3, 2], kernelInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.conv2d({ filters: 3, kernelSize: 1, kernelInitializer: init(), biasInitializer: init() }));
  return m;
}

/** Closed-form per-pixel Fisher: rows (s, k) of diag(√p_s)(I − 1p_sᵀ) on pixel s, zero elsewhere. */
function segmentationFisherRows(classes: number): CotangentSource {
  return {
    description: 'per-pixel classif_logits (test reference)',
    needsTargets: false,
    cotangents: (output) => {
      const [b, c] = output.shape;
      const f = output.dataSync();
      const m = new Float32Array(c * b * c);
      for (let i = 0; i < b; i++) {
        for (let s = 0; s < c; s += classes) {
          const row = Array.from(f.subarray(i * c + s, i * c + s + classes));
          const mx = Math.max(...row);
          const e = row.map((v) => Math.exp(v - mx));
          const z = e.reduce((x, y) => x + y, 0);
          const p = e.map((v) => v / z);
          for (let k = 0; k < classes; k++) {
            for (let j = 0; j < classes; j++) m[((s + k) * b + i) * c + s + j] = Math.sqrt(p[k]!) * ((k === j ? 1 : 0) - p[j]!);
          }
        }
      }
      return tf.tensor3d(m, [c, b, c]);
    },
  };
}

const cases: Array<[MonteCarloVariant, () => tf.LayersModel]> = [
  ['classif_logits', () => mlp()],
  ['classif_logsoftmax', () => mlp({ head: 'logsoftmax' })],
  ['classif_probs', () => mlp({ head: 'probs' })],
  ['classif_binary_logits', () => mlp()],
  ['regression', () => mlp()],
  ['segmentation_logits', () => segmentationModel()],
];

for (const [variant, make] of cases) {
  test(`FIMMonteCarlo with 200 trials is within 10% of FIM (relative Frobenius): ${variant}`, async (t) => {
    const model = make();
    const lc = LayerCollection.fromModel(model);
    const batches = randomBatches(model, 32, 16);
    const sigma2 = variant === 'regression' ? { sigma2: 0.7 } : {};
    const n0 = tf.memory().numTensors;
    const mc = await FIMMonteCarlo({ model, loader: batches, representation: PMatDense, variant, trials: 200, seed: 1, ...sigma2 });
    assert.equal(tf.memory().numTensors, n0 + 1, 'FIMMonteCarlo leaves only the matrix it returns');
    const exact =
      variant === 'segmentation_logits'
        ? await PMatDense.compute({ model, layerCollection: lc, loader: batches, outputs: segmentationFisherRows(3) })
        : await FIM({ model, loader: batches, representation: PMatDense, variant, ...sigma2 });
    const err = relativeError(mc.values(), exact.values());
    t.diagnostic(`relative Frobenius error ${err.toFixed(4)}`);
    assert.ok(err < 0.1, `${variant}: relative error ${err}`);
    [mc, exact].forEach((m) => m.dispose());
    model.dispose();
    disposeBatches(batches);
  });
}

function logSoftmax(f: Float64Array): Float64Array {
  const m = Math.max(...f);
  const z = Math.log(f.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
  return f.map((v) => v - z);
}

/** 2·KL(p(f_a) ‖ p(f_b)) for one example, in float64. */
function twiceKL(variant: MonteCarloVariant, a: Float64Array, b: Float64Array, sigma2: number): number {
  if (variant === 'classif_logits') {
    const [la, lb] = [logSoftmax(a), logSoftmax(b)];
    return 2 * la.reduce((s, v, k) => s + Math.exp(v) * (v - lb[k]!), 0);
  }
  if (variant === 'classif_binary_logits') {
    return 2 * a.reduce((s, v, k) => {
      const [p, q] = [1 / (1 + Math.exp(-v)), 1 / (1 + Math.exp(-b[k]!))];
      return s + p * Math.log(p / q) + (1 - p) * Math.log((1 - p) / (1 - q));
    }, 0);
  }
  return a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0) / sigma2;
}

for (const variant of ['classif_logits', 'classif_binary_logits', 'regression'] as const) {
  test(`2·KL(θ, θ±dw) ≈ dwᵀF̂dw within 5% for FIMMonteCarlo: ${variant}`, async (t) => {
    const model = mlp();
    const lc = LayerCollection.fromModel(model);
    const batches = randomBatches(model, 16, 16);
    const sigma2 = 0.7;
    const F = await FIMMonteCarlo({ model, loader: batches, representation: PMatImplicit, variant, trials: 500, seed: 3, ...(variant === 'regression' ? { sigma2 } : {}) });
    const direction = PVector.random(lc, 9);
    const dw = direction.scale(1e-3 / direction.norm());
    const quad = await F.vTMv(dw);
    const outputs = () => {
      const y = host(model.predict(batches[0]!.xs) as tf.Tensor);
      return Array.from({ length: 16 }, (_, i) => y.subarray(i * 4, (i + 1) * 4));
    };
    const w0 = PVector.fromModel(model, lc);
    const f0 = outputs();
    dw.addToModel(model);
    const plus = outputs();
    w0.copyToModel(model);
    const back = dw.scale(-1);
    back.addToModel(model);
    const minus = outputs();
    w0.copyToModel(model);
    const kl = f0.reduce((s, a, i) => s + twiceKL(variant, a, plus[i]!, sigma2) + twiceKL(variant, a, minus[i]!, sigma2), 0) / (2 * f0.length);
    const gap = Math.abs(kl - quad) / quad;
    t.diagnostic(`relative gap ${gap.toFixed(4)}`);
    assert.ok(gap < 0.05, `2KL ${kl} vs dwᵀF̂dw ${quad}: relative gap ${gap}`);
    [direction, dw, w0, back].forEach((x) => x.dispose());
    model.dispose();
    disposeBatches(batches);
  });
}

test('the same seed gives the identical matrix; another seed a different one', async () => {
  const model = mlp();
  const batches = randomBatches(model, 10, 4);
  const a = await FIMMonteCarlo({ model, loader: batches, representation: PMatDense, trials: 2, seed: 5 });
  const b = await FIMMonteCarlo({ model, loader: batches, representation: PMatDense, trials: 2, seed: 5 });
  const c = await FIMMonteCarlo({ model, loader: batches, representation: PMatDense, trials: 2, seed: 6 });
  assert.deepEqual(Array.from(a.values()), Array.from(b.values()));
  assert.ok(relativeError(c.values(), a.values()) > 1e-3);
  [a, b, c].forEach((m) => m.dispose());
  model.dispose();
  disposeBatches(batches);
});

test('every representation computes the same sampled matrix for a seed (rel. 1e-4)', async (t) => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 10, 4);
  const opts = { model, loader: batches, trials: 3, seed: 11, variant: 'classif_binary_logits' as const };
  const dense = await FIMMonteCarlo({ ...opts, representation: PMatDense });
  const d = lc.numel();
  const full = dense.values();
  const diag = await FIMMonteCarlo({ ...opts, representation: PMatDiag });
  const bd = await FIMMonteCarlo({ ...opts, representation: PMatBlockDiag });
  const lr = await FIMMonteCarlo({ ...opts, representation: PMatLowRank });
  const im = await FIMMonteCarlo({ ...opts, representation: PMatImplicit });
  const blocks = new Float64Array(d * d);
  for (const e of lc.layers) {
    for (let r = 0; r < e.numel; r++) for (let c = 0; c < e.numel; c++) blocks[(e.offset + r) * d + e.offset + c] = full[(e.offset + r) * d + e.offset + c]!;
  }
  const v = PVector.random(lc, 4);
  const mvD = host(dense.mv(v).toFlat());
  const errs = {
    diag: relativeError(diag.values(), Float64Array.from({ length: d }, (_, i) => full[i * d + i]!)),
    blockDiag: relativeError(host(bd.toTensor()), blocks),
    lowRank: relativeError(host(lr.toTensor()), full),
    implicit: relativeError(host((await im.mv(v)).toFlat()), mvD),
  };
  t.diagnostic(JSON.stringify(Object.fromEntries(Object.entries(errs).map(([k, e]) => [k, e.toExponential(2)]))));
  for (const [name, err] of Object.entries(errs)) assert.ok(err < 1e-4, `${name}: relative error ${err}`);
  [dense, diag, bd, lr, v].forEach((m) => m.dispose());
  model.dispose();
  disposeBatches(batches);
});

test('bad options get typed errors naming the option, and leak nothing', async () => {
  const model = mlp();
  const xs = tf.randomNormal([4, 5], 0, 1, 'float32', 1);
  const base = { model, loader: { xs }, representation: PMatDiag };
  const n0 = tf.memory().numTensors;
  const rejects = (o: object, pattern: RegExp) =>
    assert.rejects(() => FIMMonteCarlo({ ...base, ...o } as never), (e: Error) => e instanceof InvalidArgumentError && pattern.test(e.message));
  await rejects({ variant: 'fisher' }, /unknown variant "fisher".*classif_logits.*segmentation_logits/);
  await rejects({ variant: 'empirical' }, /unknown variant "empirical"/);
  await rejects({ trials: 0 }, /'trials'.*integer ≥ 1.*0/);
  await rejects({ trials: 2.5 }, /'trials'.*2\.5/);
  await rejects({ seed: 0.5 }, /'seed'/);
  await rejects({ sigma2: 2 }, /'sigma2'.*regression/);
  await rejects({ variant: 'regression', sigma2: -1 }, /'sigma2'.*> 0/);
  await rejects({ representation: undefined }, /'representation'/);
  await rejects({ variant: 'classif_probs' }, /classif_probs.*not probability distributions/);
  assert.equal(tf.memory().numTensors, n0, 'errors leave nothing behind');
  xs.dispose();
  model.dispose();
});

test('the result is typed as the representation class, as FIM types it (a compile error without the overload)', async () => {
  const model = mlp();
  const xs = tf.randomNormal([6, 5], 0, 1, 'float32', 3);
  // Without FIMMonteCarlo's representation overload the result is PMatBase and these two
  // assignments fail the typecheck that `npm test` runs first.
  const diag: PMatDiag = await FIMMonteCarlo({ model, loader: { xs }, representation: PMatDiag, trials: 3, seed: 2 });
  const dense: PMatDense = await FIMMonteCarlo({ model, loader: { xs }, representation: PMatDense, trials: 3, seed: 2 });
  assert.ok(diag instanceof PMatDiag && dense instanceof PMatDense);
  // Same samples: the diagonal is the dense matrix's diagonal (float32 accumulation: 1e-5 relative).
  const fromDense = host(dense.toTensor()).filter((_, i) => i % (diag.values().length + 1) === 0);
  assert.ok(relativeError(fromDense, diag.values()) < 1e-5);
  diag.dispose();
  dense.dispose();
  xs.dispose();
  model.dispose();
});
