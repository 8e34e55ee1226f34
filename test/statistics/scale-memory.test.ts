/**
 * Memory at scale: what the diagonal and KFAC hold on the device, and what their passes hold at
 * their peak, with the numbers still checked independently.
 *   - HostSum in segments (one per layer) equals the whole-vector sum bit for bit, on both of its
 *     transfer paths (fewer than BATCHES_PER_TRANSFER batches, and more), and the float64
 *     reference Σ/n computed here; a segment of another size, or past the end, is refused.
 *   - HostSum's `flat` mode (one float32 tensor, segments added into it in place) and its
 *     `deviceMean` (the mean left on the device) give the float64 mean's numbers bit for bit;
 *     past BATCHES_PER_TRANSFER batches the mean is on the host (deviceMean declines).
 *   - FIM PMatDiag over at most 16 batches holds its diagonal as one float32 tensor (4·d bytes),
 *     which its device operations use as it is; over more it holds float64 on the host. FIM
 *     PMatKFAC leaves tf.memory() (tensors and bytes) as it found it. Their device operations
 *     (mv, getDiag, toTensor, mmap, mapTMmap) return the numbers of the float64 host algebra done
 *     here and leave one tensor (what they return).
 *   - The diagonal's pass peaks below 2.5·d float32 values above where it started (the flat sum,
 *     which becomes the result it returns, plus one layer's term and its activations: 1.77·d
 *     measured on wasm): concatenating the segments at the end (3.0·d measured), or a whole-vector
 *     concatenation beside the pending sum and the new sum (3.5·d), goes over.
 *   - PMatImplicit.mv is the dense M v (PMatDense, another statistic) and peaks below 3.5·d
 *     above its start, its result included (2.6·d measured; 4.5·d with whole-vector terms).
 *   - The KFAC pass peaks below 1.8× its factors (float32) above its start: the pending sums
 *     and one term (1.35× measured); every layer's terms held to the end of the batch, 2.3×.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { DisposedError, FIM, LayerCollection, PFMapDense, PMatDense, PMatDiag, PMatImplicit, PMatKFAC, PVector } from '../../src/index.js';
import { HostSum } from '../../src/statistics/host-sum.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, randomBatches } from '../support/models.js';
import { bruteForceFisher, relativeError } from '../support/reference.js';

/** The values of `t` as float64 (not disposed). */
const f64 = (t: tf.Tensor) => Float64Array.from(t.dataSync());

before(async () => {
  await useTestBackend();
});

/** A relu MLP of `hidden` equal layers of `width` units on `inputs` features, 3 outputs. */
function deepMlp(inputs: number, width: number, hidden: number): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: width, inputShape: [inputs], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.3, seed: 4 }) }));
  for (let i = 1; i < hidden; i++) m.add(tf.layers.dense({ units: width, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 + i }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.3, seed: 50 + i }) }));
  m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotNormal({ seed: 99 }) }));
  return m;
}

for (const batches of [5, 20]) {
  test(`HostSum in segments equals the whole-vector sum bit for bit and the float64 mean (${batches} batches)`, () => {
    const start = tf.memory().numTensors;
    const size = 50;
    const cut = 20;
    const whole = new HostSum(size);
    const parts = new HostSum(size);
    const reference = new Float64Array(size);
    for (let b = 0; b < batches; b++) {
      // Values of varied magnitude, so that float32 additions round differently per entry.
      const t = tf.tidy(() => tf.mul(tf.randomNormal([size], 0, 1, 'float32', 7 + b), tf.exp(tf.randomUniform([size], -3, 3, 'float32', 70 + b))));
      const v = t.dataSync();
      for (let k = 0; k < size; k++) reference[k]! += v[k]!;
      whole.add(t);
      const [first, second] = tf.split(t, [cut, size - cut]);
      // The later segment first: the order segments arrive in must not matter.
      parts.add(second!, cut);
      parts.add(first!, 0);
      tf.dispose([t, first!, second!]);
      whole.flush();
      parts.flush();
    }
    const n = 3 * batches;
    const a = whole.mean(n);
    const p = parts.mean(n);
    assert.deepEqual(Array.from(p), Array.from(a));
    for (let k = 0; k < size; k++) reference[k]! /= n;
    assert.ok(relativeError(p, reference) < 1e-6, `segments vs float64 reference: ${relativeError(p, reference)}`);
    whole.dispose();
    parts.dispose();
    assert.equal(tf.memory().numTensors, start);
  });

  test(`HostSum flat (in place) and deviceMean equal the float64 mean bit for bit (${batches} batches)`, () => {
    const start = tf.memory().numTensors;
    const size = 50;
    const cut = 20;
    const reference = new HostSum(size);
    // flat: mean on the host; flatDevice / parts / whole: mean left on the device when ≤ 16 batches.
    const flat = new HostSum(size, { flat: true });
    const flatDevice = new HostSum(size, { flat: true });
    const parts = new HostSum(size);
    const whole = new HostSum(size);
    for (let b = 0; b < batches; b++) {
      const t = tf.tidy(() => tf.mul(tf.randomNormal([size], 0, 1, 'float32', 7 + b), tf.exp(tf.randomUniform([size], -3, 3, 'float32', 70 + b))));
      reference.add(t);
      whole.add(t);
      for (const sum of [flat, flatDevice, parts]) {
        // Owned segments, the later one first.
        const [first, second] = tf.split(t, [cut, size - cut]);
        sum.addOwned(second!, cut);
        sum.addOwned(first!, 0);
      }
      t.dispose();
      for (const sum of [reference, flat, flatDevice, parts, whole]) sum.flush();
    }
    const n = 3 * batches;
    const expected = Array.from(reference.mean(n));
    assert.deepEqual(Array.from(flat.mean(n)), expected, 'flat, mean on the host');
    for (const [name, sum] of [['flat', flatDevice], ['segments', parts], ['whole', whole]] as const) {
      const onDevice = sum.deviceMean(n);
      if (batches > HostSum.BATCHES_PER_TRANSFER) {
        assert.equal(onDevice, null, `${name}: past ${HostSum.BATCHES_PER_TRANSFER} batches the sum is on the host`);
        assert.deepEqual(Array.from(sum.mean(n)), expected, `${name}: the host mean`);
      } else {
        assert.ok(onDevice !== null, `${name}: the mean stays on the device`);
        assert.deepEqual(Array.from(onDevice.dataSync()), expected, `${name}: deviceMean`);
        onDevice.dispose();
      }
    }
    for (const sum of [reference, flat, flatDevice, parts, whole]) sum.dispose();
    assert.equal(tf.memory().numTensors, start);
  });
}

test('HostSum.deviceMean declines segments that leave a gap (their mean is on the host, zeros there)', () => {
  const start = tf.memory().numTensors;
  const sum = new HostSum(10);
  const four = tf.tensor1d([1, 2, 3, 4]);
  sum.add(four, 6);
  assert.equal(sum.deviceMean(2), null);
  assert.deepEqual(Array.from(sum.mean(2)), [0, 0, 0, 0, 0, 0, 0.5, 1, 1.5, 2]);
  // flat mode (wasm only; elsewhere it keeps segments and declines as above): the gap reads 0,
  // even where the allocator hands back memory that held other values (freed just before).
  tf.fill([10], 7, 'float32').dispose();
  const flat = new HostSum(10, { flat: true });
  flat.add(four, 6);
  const m = flat.deviceMean(2);
  if (tf.getBackend() === 'wasm') {
    assert.ok(m !== null);
    assert.deepEqual(Array.from(m.dataSync()), [0, 0, 0, 0, 0, 0, 0.5, 1, 1.5, 2]);
  } else assert.equal(m, null);
  tf.dispose([four]);
  m?.dispose();
  sum.dispose();
  flat.dispose();
  assert.equal(tf.memory().numTensors, start);
});

test('HostSum refuses a segment of another size at an offset, or one past the end, and keeps nothing', () => {
  const start = tf.memory().numTensors;
  const sum = new HostSum(10);
  const four = tf.ones([4]);
  const five = tf.ones([5]);
  sum.add(four, 6);
  assert.throws(() => sum.add(five, 6), (e: unknown) => e instanceof RangeError && /5 values at offset 6, where 4/.test(e.message));
  assert.throws(() => sum.add(five, 7), (e: unknown) => e instanceof RangeError && /overflow a sum of 10/.test(e.message));
  sum.dispose();
  tf.dispose([four, five]);
  assert.equal(tf.memory().numTensors, start);
});

test('FIM PMatDiag holds one float32 tensor of d values; its diagonal is the brute-force one; its device operations use it and add nothing', async () => {
  const model = deepMlp(5, 8, 3);
  const lc = LayerCollection.fromModel(model);
  const data = randomBatches(model, 12, 4, 31);
  const d = lc.numel();
  const before = tf.memory();
  const diag = await FIM({ model, loader: data, representation: PMatDiag });
  assert.equal(tf.memory().numTensors, before.numTensors + 1);
  assert.equal(tf.memory().numBytes, before.numBytes + 4 * d);
  const F = bruteForceFisher(model, lc, data.map((b) => b.xs), 'classif_logits');
  const values = diag.values();
  assert.notEqual(diag.values(), values, 'values() of a device diagonal is a new copy each time');
  assert.equal(tf.memory().numTensors, before.numTensors + 1, 'values() keeps the device tensor');
  assert.ok(relativeError(values, Float64Array.from({ length: d }, (_, k) => F[k * d + k]!)) < 1e-4);

  const v = PVector.random(lc, 9);
  const x = f64(v.data);
  const count = tf.memory().numTensors;
  const bytes = tf.memory().numBytes;
  const mv = diag.mv(v);
  assert.equal(tf.memory().numTensors, count + 1);
  assert.equal(tf.memory().numBytes, bytes + 4 * d, 'mv makes its result only');
  assert.ok(relativeError(f64(mv.data), x.map((xk, k) => values[k]! * xk)) < 1e-6);
  mv.dispose();
  const got = diag.getDiag();
  assert.ok(relativeError(f64(got), values) < 1e-6);
  got.dispose();
  const dense = diag.toTensor();
  const expected = new Float64Array(d * d);
  for (let k = 0; k < d; k++) expected[k * d + k] = values[k]!;
  assert.ok(relativeError(f64(dense), expected) < 1e-6);
  dense.dispose();
  // A map J of 2 outputs × 3 examples: J diag(M) row by row, and Σ_k M_kk J_rk² per row.
  const jData = tf.randomNormal([2, 3, d], 0, 1, 'float32', 12) as tf.Tensor3D;
  const J = new PFMapDense(lc, jData);
  const j = f64(jData);
  const scaled = diag.mmap(J);
  assert.ok(relativeError(f64(scaled.data), j.map((y, i) => y * values[i % d]!)) < 1e-6);
  scaled.dispose();
  const quadratic = diag.mapTMmap(J, { reduction: 'diag' });
  const rows = Array.from({ length: 6 }, (_, r) => values.reduce((s, m, k) => s + m * j[r * d + k]! ** 2, 0));
  assert.ok(relativeError(f64(quadratic), rows) < 1e-5);
  quadratic.dispose();
  J.dispose();
  assert.equal(tf.memory().numTensors, count);
  diag.dispose();
  assert.equal(tf.memory().numTensors, before.numTensors + 1, 'dispose releases the diagonal (v is still held)');
  assert.throws(() => diag.trace(), DisposedError);
  assert.throws(() => diag.values(), DisposedError);
  v.dispose();
  disposeBatches(data);
  model.dispose();
});

test('FIM PMatDiag over more than 16 batches holds float64 on the host, the same numbers as over 16 on the device (1e-6)', async () => {
  const model = deepMlp(5, 8, 2);
  // 20 batches of 2: past BATCHES_PER_TRANSFER, the sums go to the float64 total.
  const data = randomBatches(model, 40, 2, 13);
  const before = tf.memory().numTensors;
  const many = await FIM({ model, loader: data, representation: PMatDiag });
  assert.equal(tf.memory().numTensors, before, 'nothing held on the device');
  // The same 40 examples in 10 batches of 4: the mean stays on the device.
  const xs = tf.concat(data.map((b) => b.xs));
  const ys = tf.concat(data.map((b) => b.ys));
  const fewer = Array.from({ length: 10 }, (_, i) => ({ xs: xs.slice(4 * i, 4), ys: ys.slice(4 * i, 4) }));
  const few = await FIM({ model, loader: fewer, representation: PMatDiag });
  assert.equal(tf.memory().numTensors, before + 2 + 20 + 1, 'one tensor: the diagonal');
  assert.ok(relativeError(many.values(), few.values()) < 1e-6, `${relativeError(many.values(), few.values())}`);
  assert.ok(Math.abs(many.trace() - few.trace()) / few.trace() < 1e-6);
  tf.dispose([xs, ys]);
  fewer.forEach((b) => tf.dispose([b.xs, b.ys]));
  many.dispose();
  few.dispose();
  assert.equal(tf.memory().numTensors, before);
  disposeBatches(data);
  model.dispose();
});

test('the diagonal pass peaks below 2.5·d float32 values above its start (no whole-vector copies beside the pending sum)', async () => {
  // Eight equal hidden layers: one layer's term is an eighth of d, a whole-vector copy all of it.
  const model = deepMlp(64, 64, 8);
  const lc = LayerCollection.fromModel(model);
  const data = randomBatches(model, 6, 2, 5);
  const d = lc.numel();
  const startBytes = tf.memory().numBytes;
  let diag: PMatDiag | undefined;
  const profile = await tf.profile(async () => {
    diag = (await FIM({ model, loader: data, representation: PMatDiag })) as PMatDiag;
  });
  const peak = profile.peakBytes - startBytes;
  assert.ok(peak < 2.5 * 4 * d, `peak ${peak} bytes above the start, d = ${d} (2.5·d float32 = ${10 * d})`);
  assert.equal(diag!.values().length, d);
  diag!.dispose();
  disposeBatches(data);
  model.dispose();
});

test('FIM PMatKFAC holds nothing on the device; mv and toTensor are A ⊗ G of its float64 factors and release what they upload', async () => {
  const model = deepMlp(5, 6, 2);
  const lc = LayerCollection.fromModel(model);
  const data = randomBatches(model, 12, 4, 37);
  const before = tf.memory();
  const kfac = (await FIM({ model, loader: data, representation: PMatKFAC })) as PMatKFAC;
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal(tf.memory().numBytes, before.numBytes);

  // Host float64 (A ⊗ G) in the [k, c] layout: block entry ((r, s), (r', s')) = A_rr' G_ss'.
  const d = lc.numel();
  const dense = new Float64Array(d * d);
  for (const e of lc.layers) {
    const { k, c, a, g } = kfac.layerFactors(e.id);
    for (let r = 0; r < k; r++) for (let s = 0; s < c; s++) for (let r2 = 0; r2 < k; r2++) for (let s2 = 0; s2 < c; s2++) {
      dense[(e.offset + r * c + s) * d + e.offset + r2 * c + s2] = a[r * k + r2]! * g[s * c + s2]!;
    }
  }
  const v = PVector.random(lc, 4);
  const x = f64(v.data);
  const count = tf.memory().numTensors;
  const mv = kfac.mv(v);
  assert.equal(tf.memory().numTensors, count + 1);
  const expected = Float64Array.from({ length: d }, (_, i) => x.reduce((s, xj, j) => s + dense[i * d + j]! * xj, 0));
  assert.ok(relativeError(f64(mv.data), expected) < 1e-5, `mv: ${relativeError(f64(mv.data), expected)}`);
  mv.dispose();
  const t = kfac.toTensor();
  assert.equal(tf.memory().numTensors, count + 1);
  assert.ok(relativeError(f64(t), dense) < 1e-6);
  t.dispose();
  assert.equal(tf.memory().numTensors, count);
  kfac.dispose();
  assert.throws(() => kfac.mv(v), DisposedError);
  assert.throws(() => kfac.trace(), DisposedError);
  v.dispose();
  disposeBatches(data);
  model.dispose();
});

test('PMatImplicit.mv is the dense M v and peaks below 3.5·d float32 values above its start (its result included)', async () => {
  // The numbers, on a model small enough for the dense M (computed by another statistic, JᵀJ).
  {
    const model = deepMlp(5, 8, 3);
    const lc = LayerCollection.fromModel(model);
    const data = randomBatches(model, 12, 4, 8);
    const d = lc.numel();
    const implicit = await FIM({ model, loader: data, representation: PMatImplicit });
    const dense = await FIM({ model, loader: data, representation: PMatDense });
    const v = PVector.random(lc, 6);
    const x = f64(v.data);
    const M = dense.values();
    const expected = Float64Array.from({ length: d }, (_, i) => x.reduce((s, xj, j) => s + M[i * d + j]! * xj, 0));
    const mv = await implicit.mv(v);
    assert.ok(relativeError(f64(mv.data), expected) < 1e-4, `mv: ${relativeError(f64(mv.data), expected)}`);
    mv.dispose();
    v.dispose();
    dense.dispose();
    implicit.dispose();
    disposeBatches(data);
    model.dispose();
  }
  // The memory, on eight equal layers (one layer's term is an eighth of d).
  const model = deepMlp(64, 64, 8);
  const lc = LayerCollection.fromModel(model);
  const data = randomBatches(model, 6, 2, 8);
  const d = lc.numel();
  const implicit = await FIM({ model, loader: data, representation: PMatImplicit });
  const v = PVector.random(lc, 6);
  const startBytes = tf.memory().numBytes;
  const count = tf.memory().numTensors;
  let mv: PVector | undefined;
  const profile = await tf.profile(async () => {
    mv = await implicit.mv(v);
  });
  const peak = profile.peakBytes - startBytes;
  assert.equal(tf.memory().numTensors, count + 1);
  assert.ok(peak < 3.5 * 4 * d, `peak ${peak} bytes above the start, d = ${d} (3.5·d float32 = ${14 * d})`);
  mv!.dispose();
  v.dispose();
  implicit.dispose();
  disposeBatches(data);
  model.dispose();
});

test('the KFAC pass peaks below 1.8× its factors in float32 above its start (each batch term released as it is added)', async () => {
  const model = deepMlp(64, 64, 8);
  const lc = LayerCollection.fromModel(model);
  const data = randomBatches(model, 6, 2, 9);
  const startBytes = tf.memory().numBytes;
  let kfac: PMatKFAC | undefined;
  const profile = await tf.profile(async () => {
    kfac = (await FIM({ model, loader: data, representation: PMatKFAC })) as PMatKFAC;
  });
  const factorValues = lc.layers.reduce((s, e) => {
    const f = kfac!.layerFactors(e.id);
    return s + f.k * f.k + f.c * f.c;
  }, 0);
  const peak = profile.peakBytes - startBytes;
  assert.ok(peak < 1.8 * 4 * factorValues, `peak ${peak} bytes above the start, factors ${factorValues} values`);
  kfac!.dispose();
  disposeBatches(data);
  model.dispose();
});
