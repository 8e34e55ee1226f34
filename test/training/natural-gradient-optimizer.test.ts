/**
 * NaturalGradientOptimizer against references built independently in float64 from the public
 * matrices: the velocity after each step equals Σ μ^… (F̄_snapshot + λI)⁻¹(∇L + w·θ), with
 * F̄ the hand-computed moving average of the per-batch Fishers (FIM), its dense Kronecker
 * products and a Gauss–Jordan solve (rel. 1e-5), with and without KL clipping; the average
 * equals its closed form; refreshes happen on schedule (counted forward passes); state
 * round-trips; bad input is typed and leaves no tensor and no weight changed.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  DisposedError, FIM, InvalidArgumentError, LayerCollection, NaturalGradientOptimizer, PMatDiag, PMatEKFAC, PMatKFAC, PVector,
  UnsupportedLayerError, loadOptimizerState, serializeOptimizerState, type PMat,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { batchNormModel } from '../support/layer-models.js';
import { flatGradient, host, relativeError } from '../support/reference.js';

const TOL = 1e-5;

before(async () => {
  await useTestBackend();
});

/** The model's current weights on the host (float64). */
function weightsOf(model: tf.LayersModel, lc: LayerCollection): Float64Array {
  const v = PVector.fromModel(model, lc);
  const out = host(v.toFlat());
  v.dispose();
  return out;
}

/** Mean softmax cross-entropy with tfjs's own loss (independent of the optimizer's). */
function ceLoss(model: tf.LayersModel, b: { xs: tf.Tensor; ys: tf.Tensor }): tf.Scalar {
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(b.ys as tf.Tensor1D, 4), model.apply(b.xs) as tf.Tensor) as tf.Scalar);
}

/** Dense block-diagonal matrix of Kronecker blocks A ⊗ G in the [k, c] layout, float64. */
function denseKfac(lc: LayerCollection, factors: Array<{ k: number; c: number; a: Float64Array; g: Float64Array }>): Float64Array {
  const d = lc.numel();
  const m = new Float64Array(d * d);
  lc.layers.forEach((e, l) => {
    const { k, c, a, g } = factors[l]!;
    for (let r = 0; r < k; r++) for (let s = 0; s < c; s++) for (let r2 = 0; r2 < k; r2++) for (let s2 = 0; s2 < c; s2++) {
      m[(e.offset + r * c + s) * d + e.offset + r2 * c + s2] = a[r * k + r2]! * g[s * c + s2]!;
    }
  });
  return m;
}

/** (M + λI)⁻¹ g by Gauss–Jordan with partial pivoting (float64). */
function gaussSolve(m: Float64Array, g: Float64Array, damping: number): Float64Array {
  const d = g.length;
  const a = new Float64Array(m);
  const b = new Float64Array(g);
  for (let i = 0; i < d; i++) a[i * d + i] += damping;
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r * d + c]!) > Math.abs(a[p * d + c]!)) p = r;
    for (let j = 0; j < d; j++) [a[c * d + j], a[p * d + j]] = [a[p * d + j]!, a[c * d + j]!];
    [b[c], b[p]] = [b[p]!, b[c]!];
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = a[r * d + c]! / a[c * d + c]!;
      if (f === 0) continue;
      for (let j = c; j < d; j++) a[r * d + j] -= f * a[c * d + j]!;
      b[r] -= f * b[c]!;
    }
  }
  return b.map((x, i) => x / a[i * d + i]!);
}

const ema = (old: Float64Array | null, fresh: Float64Array, decay: number) => (old ? old.map((x, i) => decay * x + (1 - decay) * fresh[i]!) : new Float64Array(fresh));

interface Schedule {
  steps: number;
  curvatureUpdateEvery: number;
  inverseUpdateEvery: number;
  decay: number;
  momentum: number;
  damping: number;
  learningRate: number;
  weightDecay: number;
  klClip: number | null;
}

/**
 * Runs the optimizer and, before each step, the reference: the Fisher of the batch at the
 * current weights (FIM, exact), averaged and snapshotted by hand on the schedule, as a dense
 * matrix; Δ by Gauss–Jordan; ν and the momentum by hand. Compares the velocity after each step.
 */
async function checkAgainstDense(representation: typeof PMatKFAC | typeof PMatDiag, s: Schedule): Promise<number[]> {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 6 * s.steps, 6, 300);
  const opt = new NaturalGradientOptimizer({ model, representation, fisher: 'exact', ...s, steps: undefined } as never);
  let average: { a: Float64Array[]; g: Float64Array[] } | Float64Array | null = null;
  let snapshot: Float64Array | null = null;
  let velocity = new Float64Array(lc.numel());
  const clips: number[] = [];
  for (let j = 0; j < s.steps; j++) {
    const b = batches[j]!;
    const theta = weightsOf(model, lc);
    const g = flatGradient(lc, () => ceLoss(model, b)).map((x, i) => x + s.weightDecay * theta[i]!);
    if (j % s.curvatureUpdateEvery === 0) {
      const F = (await FIM({ model, loader: [b], representation: representation as never })) as PMat;
      if (F instanceof PMatKFAC) {
        const prev = average as { a: Float64Array[]; g: Float64Array[] } | null;
        average = {
          a: lc.layers.map((e, l) => ema(prev?.a[l] ?? null, F.layerFactors(e.id).a, s.decay)),
          g: lc.layers.map((e, l) => ema(prev?.g[l] ?? null, F.layerFactors(e.id).g, s.decay)),
        };
      } else {
        average = ema(average as Float64Array | null, (F as PMatDiag).values(), s.decay);
      }
      F.dispose();
    }
    if (j % s.inverseUpdateEvery === 0) {
      if (average instanceof Float64Array) {
        const d = lc.numel();
        snapshot = new Float64Array(d * d);
        average.forEach((x, i) => (snapshot![i * d + i] = x));
      } else {
        const av = average!;
        snapshot = denseKfac(lc, lc.layers.map((_e, l) => ({ k: Math.round(Math.sqrt(av.a[l]!.length)), c: Math.round(Math.sqrt(av.g[l]!.length)), a: av.a[l]!, g: av.g[l]! })));
      }
    }
    const delta = gaussSolve(snapshot!, g, s.damping);
    const dg = delta.reduce((acc, x, i) => acc + x * g[i]!, 0);
    const clip = s.klClip === null ? 1 : Math.min(1, Math.sqrt(s.klClip / (s.learningRate ** 2 * dg)));
    clips.push(clip);
    velocity = velocity.map((v, i) => s.momentum * v + clip * delta[i]!);
    await opt.step(b);
    assert.ok(Math.abs(opt.lastStep!.clip - clip) < 1e-6 * clip, `step ${j}: ν ${opt.lastStep!.clip} vs ${clip}`);
    const got = opt.velocityVector();
    const err = relativeError(host(got.toFlat()), velocity);
    got.dispose();
    assert.ok(err < TOL, `${representation.representationName} step ${j}: velocity rel. error ${err}`);
    // The weights moved by −η·v (float32 cancellation in θ_new − θ: loose tolerance).
    const moved = weightsOf(model, lc).map((x, i) => x - theta[i]!);
    assert.ok(relativeError(moved, velocity.map((v) => -s.learningRate * v)) < 1e-3);
  }
  opt.dispose();
  disposeBatches(batches);
  model.dispose();
  return clips;
}

const SCHEDULE: Schedule = { steps: 6, curvatureUpdateEvery: 2, inverseUpdateEvery: 4, decay: 0.8, momentum: 0.5, damping: 0.1, learningRate: 0.05, weightDecay: 0.01, klClip: null };

test('KFAC: velocity = momentum sum of (F̄_snapshot + λI)⁻¹(g + wθ) from the dense Kronecker products, curvature every 2, inverse every 4 (rel. 1e-5)', async () => {
  await checkAgainstDense(PMatKFAC, SCHEDULE);
});

test('KFAC with KL clipping active: ν = min(1, √(κ/(η²Δᵀg))) < 1 and the same velocity identity (rel. 1e-5)', async () => {
  const clips = await checkAgainstDense(PMatKFAC, { ...SCHEDULE, steps: 3, klClip: 1e-6 });
  assert.ok(clips.every((c) => c < 1), `clipping was active: ${clips}`);
});

test('Diag: the same identity with the averaged diagonal Fisher (rel. 1e-5)', async () => {
  await checkAgainstDense(PMatDiag, { ...SCHEDULE, steps: 4, curvatureUpdateEvery: 1, inverseUpdateEvery: 2 });
});

test('EKFAC: Δ uses the eigenbasis of the averaged factors and the average of the batch second moments in it (rel. 1e-5)', async () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 12, 6, 500);
  const s = { damping: 0.05, learningRate: 0.02, decay: 0.6 };
  const opt = new NaturalGradientOptimizer({ model, representation: PMatEKFAC, fisher: 'exact', momentum: 0, klClip: null, curvatureUpdateEvery: 1, inverseUpdateEvery: 10, ...s });
  // Reference basis: EKFAC of batch 0 at θ₀; its updateDiag on a batch gives the second moments at the current weights.
  const E = await FIM({ model, loader: [batches[0]!], representation: PMatEKFAC });
  let average: Float64Array[] | null = null;
  for (let j = 0; j < 2; j++) {
    const g = flatGradient(lc, () => ceLoss(model, batches[j]!));
    await E.updateDiag([batches[j]!]);
    average = E.eigenBlocks().map((b, i) => ema(average?.[i] ?? null, b.diagonal, s.decay));
    // Dense (U_A ⊗ U_G) diag(D̄) (U_A ⊗ U_G)ᵀ per block.
    const d = lc.numel();
    const m = new Float64Array(d * d);
    E.eigenBlocks().forEach((b, i) => {
      const n = b.k * b.c;
      const q = (row: number, col: number) => b.uA[Math.floor(row / b.c) * b.k + Math.floor(col / b.c)]! * b.uG[(row % b.c) * b.c + (col % b.c)]!;
      for (let r = 0; r < n; r++) for (let t = 0; t < n; t++) {
        let acc = 0;
        for (let e = 0; e < n; e++) acc += q(r, e) * average![i]![e]! * q(t, e);
        m[(b.offset + r) * d + b.offset + t] = acc;
      }
    });
    const delta = gaussSolve(m, g, s.damping);
    await opt.step(batches[j]!);
    const got = opt.velocityVector();
    const err = relativeError(host(got.toFlat()), delta);
    got.dispose();
    assert.ok(err < TOL, `EKFAC step ${j}: rel. error ${err}`);
  }
  E.dispose();
  opt.dispose();
  disposeBatches(batches);
  model.dispose();
});

test('the moving average equals its closed form εᵏ⁻¹F₁ + Σⱼ (1−ε)εᵏ⁻ʲFⱼ after 4 curvature updates (rel. 1e-6)', async () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 24, 6, 700);
  const decay = 0.7;
  const opt = new NaturalGradientOptimizer({ model, learningRate: 0.1, fisher: 'exact', curvatureUpdateEvery: 1, decay });
  const perBatch: Array<Array<{ a: Float64Array; g: Float64Array }>> = [];
  for (const b of batches) {
    const F = await FIM({ model, loader: [b], representation: PMatKFAC });
    perBatch.push(lc.layers.map((e) => ({ a: new Float64Array(F.layerFactors(e.id).a), g: new Float64Array(F.layerFactors(e.id).g) })));
    F.dispose();
    await opt.step(b);
  }
  const k = batches.length;
  const weight = (j: number) => (j === 0 ? decay ** (k - 1) : (1 - decay) * decay ** (k - 1 - j));
  const avg = opt.averagedCurvature() as PMatKFAC;
  lc.layers.forEach((e, l) => {
    for (const key of ['a', 'g'] as const) {
      const want = perBatch[0]![l]![key].map((_, i) => perBatch.reduce((s, f, j) => s + weight(j) * f[l]![key][i]!, 0));
      const err = relativeError(avg.layerFactors(e.id)[key], want);
      assert.ok(err < 1e-6, `layer ${e.id} ${key}: ${err}`);
    }
  });
  avg.dispose();
  opt.dispose();
  disposeBatches(batches);
  model.dispose();
});

/** Identity layer that counts its forward calls by mode: the optimizer's gradient passes run with training: true, the engine's curvature passes with training: false. */
class PassCounter extends tf.layers.Layer {
  static className = 'PassCounterForTests';
  calls = { training: 0, inference: 0 };
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    if (kwargs?.training) this.calls.training++;
    else this.calls.inference++;
    return Array.isArray(inputs) ? inputs[0]! : inputs;
  }
}
tf.serialization.registerClass(PassCounter);

test('schedule: curvature passes exactly on steps ≡ 0 mod curvatureUpdateEvery, rebuilds on ≡ 0 mod inverseUpdateEvery (counted passes)', async () => {
  // Layer calls per engine pass over one batch (the batched backward may re-run a generic layer), measured on one FIM.
  const probe = new PassCounter({});
  const probeModel = tf.sequential();
  probeModel.add(tf.layers.dense({ units: 6, inputShape: [5], activation: 'tanh' }));
  probeModel.add(probe);
  probeModel.add(tf.layers.dense({ units: 4 }));
  const probeBatches = randomBatches(probeModel, 4, 4, 901);
  (await FIM({ model: probeModel, loader: probeBatches, representation: PMatKFAC })).dispose();
  const perPass = probe.calls.inference;
  assert.ok(perPass >= 1);
  disposeBatches(probeBatches);
  probeModel.dispose();
  for (const [representation, extraPasses] of [
    [PMatKFAC, 0],
    // EKFAC: one second-moment pass at every curvature step and at every rebuild (steps 0, 3, 5, 6).
    [PMatEKFAC, 4],
    [PMatDiag, 0],
  ] as const) {
    const counter = new PassCounter({});
    const model = tf.sequential();
    model.add(tf.layers.dense({ units: 6, inputShape: [5], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }));
    model.add(counter);
    model.add(tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }));
    const batches = randomBatches(model, 7 * 4, 4, 900);
    const opt = new NaturalGradientOptimizer({ model, representation, learningRate: 0.01, curvatureUpdateEvery: 3, inverseUpdateEvery: 5, seed: 3 });
    const refreshed: Array<[boolean, boolean]> = [];
    for (const b of batches) {
      await opt.step(b);
      refreshed.push([opt.lastStep!.curvatureUpdated, opt.lastStep!.inverseUpdated]);
    }
    assert.deepEqual(refreshed.map(([c]) => c), [true, false, false, true, false, false, true]);
    assert.deepEqual(refreshed.map(([, i]) => i), [true, false, false, false, false, true, false]);
    assert.equal(counter.calls.training, 7, 'one gradient forward per step');
    assert.equal(counter.calls.inference, perPass * (3 + extraPasses), `${representation.representationName}: curvature passes`);
    assert.equal(opt.curvatureUpdates, 3);
    assert.equal(opt.inverseUpdates, 2);
    opt.dispose();
    disposeBatches(batches);
    model.dispose();
  }
});

test('adaptive damping: λ moves by ω = (19/20)^T₁ per curvature step and training still reduces the loss; no tensor leaks', async () => {
  const model = mlp();
  const batches = randomBatches(model, 6, 6, 1100);
  const opt = new NaturalGradientOptimizer({ model, learningRate: 0.2, damping: 1, adaptiveDamping: true, curvatureUpdateEvery: 2, inverseUpdateEvery: 2, seed: 4 });
  const losses: number[] = [];
  await opt.step(batches[0]!);
  const before = tf.memory().numTensors;
  const omega = (19 / 20) ** 2;
  for (let i = 0; i < 12; i++) {
    const damping = opt.damping;
    losses.push(await opt.step(batches[0]!));
    const ratio = opt.damping / damping;
    if (opt.lastStep!.curvatureUpdated) assert.ok([omega, 1, 1 / omega].some((r) => Math.abs(ratio - r) < 1e-12), `ratio ${ratio}`);
    else assert.equal(ratio, 1);
  }
  assert.equal(tf.memory().numTensors, before, 'steps leak no tensor');
  assert.ok(losses[losses.length - 1]! < 0.8 * losses[0]!, `loss ${losses[0]} → ${losses[losses.length - 1]}`);
  opt.dispose();
  disposeBatches(batches);
  model.dispose();
});

test('state save/load: an optimizer restored from bytes continues exactly like the original (rel. 1e-6), for KFAC, EKFAC and Diag', async () => {
  for (const representation of [PMatKFAC, PMatEKFAC, PMatDiag]) {
    const model = mlp();
    const lc = LayerCollection.fromModel(model);
    const batches = randomBatches(model, 30, 6, 1300);
    const options = { model, representation, learningRate: 0.05, curvatureUpdateEvery: 2, inverseUpdateEvery: 3, seed: 11, adaptiveDamping: true };
    const a = new NaturalGradientOptimizer(options);
    for (let i = 0; i < 3; i++) await a.step(batches[i]!);
    const bytes = serializeOptimizerState(a);
    const theta3 = PVector.fromModel(model, lc);
    for (let i = 3; i < 5; i++) await a.step(batches[i]!);
    const thetaA = weightsOf(model, lc);
    theta3.copyToModel(model);
    const b = new NaturalGradientOptimizer(options);
    loadOptimizerState(b, bytes);
    // Loading again replaces the state (an EKFAC basis holds device tensors): nothing accumulates.
    const n1 = tf.memory().numTensors;
    loadOptimizerState(b, bytes);
    assert.equal(tf.memory().numTensors, n1, 'reloading leaves no tensor behind');
    assert.equal(b.iterations, 3);
    for (let i = 3; i < 5; i++) await b.step(batches[i]!);
    const thetaB = weightsOf(model, lc);
    const theta3h = host(theta3.toFlat());
    const err = relativeError(thetaB.map((x, i) => x - theta3h[i]!), thetaA.map((x, i) => x - theta3h[i]!));
    assert.ok(err < 1e-5, `${representation.representationName}: ${err}`);
    // A corrupted or foreign state is refused with a typed error.
    const bad = bytes.slice();
    bad[bad.length - 5] ^= 0xff;
    assert.throws(() => loadOptimizerState(b, bad), /corrupt|checksum|PersistenceError/i);
    const other = new NaturalGradientOptimizer({ ...options, representation: representation === PMatDiag ? PMatKFAC : PMatDiag });
    assert.throws(() => loadOptimizerState(other, bytes), InvalidArgumentError);
    [a, b, other].forEach((o) => o.dispose());
    theta3.dispose();
    disposeBatches(batches);
    model.dispose();
  }
});

test('bad input: negative learning rate or damping, a batch without labels, uncoverable layers, wrong targets — typed errors, no leak, weights untouched', async () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const [b] = randomBatches(model, 4, 4, 1500);
  assert.throws(() => new NaturalGradientOptimizer({ model, learningRate: -1 }), InvalidArgumentError);
  assert.throws(() => new NaturalGradientOptimizer({ model, learningRate: 0.1, damping: -1e-3 }), /damping/);
  assert.throws(() => new NaturalGradientOptimizer({ model, learningRate: 0.1, curvatureUpdateEvery: 0 }), /curvatureUpdateEvery/);
  assert.throws(() => new NaturalGradientOptimizer({ model, learningRate: 0.1, momentum: 1 }), /momentum/);
  assert.throws(() => new NaturalGradientOptimizer({ model, learningRate: 0.1, representation: PMatEKFAC, fisher: 'empirical' } as never), /fisher/);
  assert.throws(() => new NaturalGradientOptimizer({ model, learningRate: 0.1, learningrate: 1 } as never), /learningRate/);
  const bn = batchNormModel();
  assert.throws(() => new NaturalGradientOptimizer({ model: bn, learningRate: 0.1 }), (e: Error) => e instanceof UnsupportedLayerError && /PMatDiag/.test(e.message));
  bn.dispose();
  const opt = new NaturalGradientOptimizer({ model, learningRate: 0.1 });
  const theta = weightsOf(model, lc);
  const wrongYs = tf.zeros([4, 3]);
  const wrongXs = tf.zeros([4, 6]);
  const before = tf.memory().numTensors;
  await assert.rejects(opt.step({ xs: b!.xs }), /no targets 'ys'/);
  await assert.rejects(opt.step({ xs: b!.xs, ys: wrongYs }), /targets 'ys' have shape/);
  await assert.rejects(opt.step({ xs: wrongXs, ys: b!.ys }), /input/);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
  tf.dispose([wrongYs, wrongXs]);
  assert.deepEqual(weightsOf(model, lc), theta, 'weights untouched');
  opt.dispose();
  await assert.rejects(opt.step(b!), DisposedError);
  disposeBatches([b!]);
  model.dispose();
});

test('Monte-Carlo Fisher: the same seed gives the same trajectory exactly, another seed another one', async () => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const theta0 = PVector.fromModel(model, lc);
  const batches = randomBatches(model, 18, 6, 1700);
  const trajectory = async (seed: number) => {
    theta0.copyToModel(model);
    const opt = new NaturalGradientOptimizer({ model, learningRate: 0.05, curvatureUpdateEvery: 1, inverseUpdateEvery: 1, seed });
    for (const b of batches) await opt.step(b);
    opt.dispose();
    return weightsOf(model, lc);
  };
  const a = await trajectory(7);
  assert.deepEqual(await trajectory(7), a);
  assert.ok(relativeError(await trajectory(8), a) > 1e-6, 'another seed samples other labels');
  theta0.dispose();
  disposeBatches(batches);
  model.dispose();
});
