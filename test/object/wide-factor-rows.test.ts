/**
 * A wide input factor held as its rows only (A = RᵀR, `factorsFromRows`), against the same
 * factor held as the k×k array A: every PMatKFAC method gives the same numbers (1e-10 relative
 * for the float64 algebra, 1e-5 for float32 device products), none of them forms A, and the
 * memory the matrix and its derived blocks hold is the rows, not A, nor any device copy.
 *   - factors built here (k = 38: not a multiple of 4 or 8, m = 7 ≤ k/4 rows; a second, narrow
 *     layer of 6×3) with A formed independently by a triple loop;
 *   - a model pass (a dense layer of 300 inputs on 48 examples, k = 301): the factor comes back
 *     as rows; the pass never forms the 301² sum on the device; an inverse holds no tensor;
 *   - a pass whose rows outgrow their budget (k/4) after 18 batches of 4 (past HostSum's
 *     16-batch transfer): the folded sum equals (1/n) Σ x̃x̃ᵀ from the layer's inputs;
 *   - inputs whose k×k float32 sum would overflow: the rows give A exactly in float64.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatEKFAC, PMatKFAC, PVector, deserialize, mergePartial, serialize } from '../../src/index.js';
import { initLinalg } from '../../src/linalg/index.js';
import { factorsFromRows, holdsInputFactor, type KroneckerFactors } from '../../src/statistics/kronecker-factors.js';
import { kfacEigenBlocks } from '../../src/object/pspace/ekfac.js';
import { storedBytesOf } from '../../src/object/pspace/registry.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, randomBatches } from '../support/models.js';
import { host, relativeError } from '../support/reference.js';
import { gramLoop, random, spd } from '../support/factors.js';

const F64_TOL = 1e-10;
const F32_TOL = 1e-5;
const REGUL = 1e-2;

before(async () => {
  await useTestBackend();
  await initLinalg();
});

/** Dense 37 → 5 (k = 38 with the bias), dense 5 → 3 (k = 6). */
function smallModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 5, inputShape: [37], activation: 'tanh' }));
  m.add(tf.layers.dense({ units: 3 }));
  return m;
}

const K = 38;
const C = 5;
const M = 7;

/** The same matrix twice: A of the first layer as 7 rows, and as the 38×38 array. */
function pair(lc: LayerCollection, seed: number) {
  const next = random(seed);
  const rows = Float64Array.from({ length: M * K }, next);
  const g = spd(C, next);
  const second: KroneckerFactors = { k: 6, c: 3, a: spd(6, next), g: spd(3, next) };
  const copy = (f: KroneckerFactors): KroneckerFactors => ({ k: f.k, c: f.c, a: f.a.slice(), g: f.g.slice() });
  const fromRows = new PMatKFAC(lc, [factorsFromRows({ k: K, c: C, aRows: rows, g: g.slice() }), copy(second)]);
  const dense = new PMatKFAC(lc, [{ k: K, c: C, a: gramLoop(rows, M, K), g }, copy(second)]);
  return { fromRows, dense, rows };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

test('rows-only A: every PMatKFAC method equals the k×k route (1e-10 in float64, 1e-5 on the device) without forming A', () => {
  const model = smallModel();
  const lc = LayerCollection.fromModel(model);
  const { fromRows, dense } = pair(lc, 3);
  const wide = () => fromRows.layerFactors(lc.ids()[0]!);
  const v = PVector.random(lc, 5);

  assert.ok(rel(fromRows.trace(), dense.trace()) < F64_TOL, 'trace');
  assert.ok(rel(fromRows.norm('fro'), dense.norm('fro')) < F64_TOL, 'Frobenius norm');
  assert.ok(rel(fromRows.norm(2), dense.norm(2)) < F64_TOL, 'spectral norm');
  // A has rank 7 < 38: the smallest eigenvalue is 0 on both routes (up to the direct solver's round-off).
  assert.ok(Math.abs(fromRows.norm(-2) - dense.norm(-2)) < F64_TOL * dense.norm(2), 'min eigenvalue product');
  assert.ok(rel(fromRows.logdet({ regul: REGUL }), dense.logdet({ regul: REGUL })) < F64_TOL, 'logdet');
  assert.ok(relativeError(host(fromRows.getDiag()), host(dense.getDiag())) < 1e-7, 'getDiag (float64 then float32)');

  const float64 = (what: string, a: PVector, b: PVector) => {
    const e = relativeError(host(a.data), host(b.data));
    assert.ok(e < F64_TOL, `${what}: ${e}`);
  };
  float64('solve (exact damping)', fromRows.solve(v, { regul: REGUL }), dense.solve(v, { regul: REGUL }));
  float64('solve (π damping)', fromRows.solve(v, { regul: REGUL, damping: 'pi' }), dense.solve(v, { regul: REGUL, damping: 'pi' }));
  for (const [what, a, b] of [
    ['inv', fromRows.inv({ regul: REGUL }), dense.inv({ regul: REGUL })],
    ['pow(1/2)', fromRows.pow(0.5, { regul: REGUL }), dense.pow(0.5, { regul: REGUL })],
    ['pow(−1/3)', fromRows.pow(-1 / 3, { regul: REGUL }), dense.pow(-1 / 3, { regul: REGUL })],
  ] as const) {
    // The EKFAC blocks' float64 solves read U_A as its range on the rows route, explicitly on the other.
    float64(`${what}: its solve`, a.solve(v, { regul: 0.3 }), b.solve(v, { regul: 0.3 }));
    assert.ok(rel(a.trace(), b.trace()) < F64_TOL, `${what}: trace`);
    assert.ok(relativeError(host(a.mv(v).data), host(b.mv(v).data)) < F32_TOL, `${what}: mv`);
    a.dispose();
    b.dispose();
  }
  const piRows = fromRows.inv({ regul: REGUL, damping: 'pi' }) as PMatKFAC;
  const piDense = dense.inv({ regul: REGUL, damping: 'pi' }) as PMatKFAC;
  assert.ok(relativeError(piRows.layerFactors(lc.ids()[0]!).a, piDense.layerFactors(lc.ids()[0]!).a) < F64_TOL, 'inv (π damping): A⁻¹');
  const mmRows = fromRows.mm(dense);
  const mmDense = dense.mm(dense);
  assert.ok(relativeError(mmRows.layerFactors(lc.ids()[0]!).a, mmDense.layerFactors(lc.ids()[0]!).a) < F64_TOL, 'mm: A A′');
  const eRows = fromRows.eigendecomposition()[0]!;
  const eDense = dense.eigendecomposition()[0]!;
  const lmax = eDense.eigenvaluesA[K - 1]!;
  assert.ok(eRows.eigenvaluesA.every((x, i) => Math.abs(x - Math.max(eDense.eigenvaluesA[i]!, 0)) < F64_TOL * lmax), 'eigenvalues of A');

  assert.ok(relativeError(host(fromRows.mv(v).data), host(dense.mv(v).data)) < F32_TOL, 'mv (Rᵀ(RV) on the device)');
  assert.ok(rel(fromRows.vTMv(v), dense.vTMv(v)) < F32_TOL, 'vTMv');
  assert.ok(relativeError(host(fromRows.toTensor()), host(dense.toTensor())) < F32_TOL, 'toTensor');
  const scaled = fromRows.scale(2.5);
  assert.ok(rel(scaled.trace(), 2.5 * dense.trace()) < F64_TOL, 'scale: trace');
  assert.equal(holdsInputFactor(scaled.layerFactors(lc.ids()[0]!)), false, 'scale keeps A as rows');
  // None of the above formed A (eigendecomposition() materialises U_A's null-space basis, not A).
  assert.equal(holdsInputFactor(wide()), false, 'A never formed');
  // Reading `a` forms A = RᵀR (and keeps it), equal to the triple loop's.
  assert.ok(relativeError(wide().a, dense.layerFactors(lc.ids()[0]!).a) < 1e-14, 'A read from the rows');
  assert.equal(holdsInputFactor(wide()), true);
  // The EKFAC on the same eigenbasis (what PMatEKFAC builds from KFAC factors) solves alike.
  const { fromRows: r2, dense: d2 } = pair(lc, 3);
  const ekRows = new PMatEKFAC(lc, kfacEigenBlocks(lc.ids().map((id) => r2.layerFactors(id))), 'kfac', null);
  const ekDense = new PMatEKFAC(lc, kfacEigenBlocks(lc.ids().map((id) => d2.layerFactors(id))), 'kfac', null);
  float64('EKFAC from the factors: solve', ekRows.solve(v, { regul: REGUL }), ekDense.solve(v, { regul: REGUL }));
  [fromRows, dense, piRows, piDense, mmRows, mmDense, scaled, r2, d2, ekRows, ekDense, v].forEach((o) => o.dispose());
  model.dispose();
});

test('rows-only A: save/load keeps the rows ("ar0"), mergePartial merges the rows, both equal the k×k route to 1e-10', () => {
  const model = smallModel();
  const lc = LayerCollection.fromModel(model);
  const one = pair(lc, 7);
  const two = pair(lc, 8);
  const v = PVector.random(lc, 6);
  const loaded = deserialize(serialize(one.fromRows), model) as PMatKFAC;
  const f = loaded.layerFactors(lc.ids()[0]!);
  assert.equal(holdsInputFactor(f), false, 'loaded as rows');
  assert.deepEqual(f.aRows, one.rows);
  assert.ok(relativeError(host(loaded.solve(v, { regul: REGUL }).data), host(one.dense.solve(v, { regul: REGUL }).data)) < F64_TOL, 'loaded solve');
  // What the matrix stores: 7×38 rows instead of 38×38, plus G and the second layer.
  const held = storedBytesOf(one.fromRows)!;
  assert.equal(held, 8 * (M * K + C * C + 36 + 9));
  assert.equal(storedBytesOf(one.dense), 8 * (K * K + C * C + 36 + 9));
  assert.equal(holdsInputFactor(one.fromRows.layerFactors(lc.ids()[0]!)), false, 'storedBytes does not form A');

  // 3 and 5 "examples": A = (3/8) A₁ + (5/8) A₂ = [√(3/8) R₁; √(5/8) R₂]ᵀ[…], 14 rows ≤ 38/4? No: 14 > 9.5, so the merge forms A.
  const mergedWide = mergePartial([{ matrix: one.fromRows, examples: 3 }, { matrix: two.fromRows, examples: 5 }]) as PMatKFAC;
  const mergedDense = mergePartial([{ matrix: one.dense, examples: 3 }, { matrix: two.dense, examples: 5 }]) as PMatKFAC;
  assert.equal(holdsInputFactor(mergedWide.layerFactors(lc.ids()[0]!)), true, '14 rows > k/4: merged as A');
  assert.ok(relativeError(host(mergedWide.solve(v, { regul: REGUL }).data), host(mergedDense.solve(v, { regul: REGUL }).data)) < F64_TOL, 'merged (A) solve');
  // Within the budget the merge stays rows: a 4-row and a 3-row part (7 ≤ 9.5).
  const next = random(11);
  const g = spd(C, next);
  const second = { k: 6, c: 3, a: spd(6, next), g: spd(3, next) };
  const r1 = Float64Array.from({ length: 4 * K }, next);
  const r2 = Float64Array.from({ length: 3 * K }, next);
  const p1 = new PMatKFAC(lc, [factorsFromRows({ k: K, c: C, aRows: r1, g }), second]);
  const p2 = new PMatKFAC(lc, [factorsFromRows({ k: K, c: C, aRows: r2, g }), second]);
  const merged = mergePartial([{ matrix: p1, examples: 1 }, { matrix: p2, examples: 3 }]) as PMatKFAC;
  const mf = merged.layerFactors(lc.ids()[0]!);
  assert.equal(holdsInputFactor(mf), false, '7 rows ≤ k/4: merged as rows');
  const expectedA = gramLoop(r1, 4, K).map((x, i) => 0.25 * x + 0.75 * gramLoop(r2, 3, K)[i]!);
  const reference = new PMatKFAC(lc, [{ k: K, c: C, a: expectedA, g }, second]);
  assert.ok(relativeError(host(merged.solve(v, { regul: REGUL }).data), host(reference.solve(v, { regul: REGUL }).data)) < F64_TOL, 'merged rows solve');
  assert.ok(relativeError(mf.a, expectedA) < 1e-14, 'merged rows: A');
  [one.fromRows, one.dense, two.fromRows, two.dense, loaded, mergedWide, mergedDense, p1, p2, merged, reference, v].forEach((o) => o.dispose());
  model.dispose();
});

test('rows-only A: bad rows are refused with the layer named', () => {
  const model = smallModel();
  const lc = LayerCollection.fromModel(model);
  const second = { k: 6, c: 3, a: new Float64Array(36), g: new Float64Array(9) };
  const g = new Float64Array(C * C);
  assert.throws(() => new PMatKFAC(lc, [factorsFromRows({ k: K, c: C, aRows: new Float64Array(K + 1), g }), second]), /rows 'aRows' of layer '[^']+' must be a Float64Array of m×38 values/);
  const nan = new Float64Array(2 * K);
  nan[40] = NaN;
  assert.throws(() => new PMatKFAC(lc, [factorsFromRows({ k: K, c: C, aRows: nan, g }), second]), /rows of A of layer/);
  const state = { meta: { kfacType: 'expand' }, arrays: { ar0: new Float64Array(K + 1), g0: g, a1: second.a, g1: second.g } };
  assert.throws(() => PMatKFAC.fromState(lc, state), /array 'ar0' has 39 values, expected a positive multiple of 38/);
  model.dispose();
});

function wideModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 5, inputShape: [300], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }));
  m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }));
  return m;
}

/** (1/n) Σ x̃x̃ᵀ over the batches' inputs x̃ = [x; 1] of the first layer, in float64. */
function inputFactor(batches: Array<{ xs: tf.Tensor }>, k: number): Float64Array {
  const a = new Float64Array(k * k);
  let n = 0;
  for (const { xs } of batches) {
    const x = xs.dataSync();
    const b = xs.shape[0]!;
    for (let t = 0; t < b; t++) {
      const row = [...x.subarray(t * (k - 1), (t + 1) * (k - 1)), 1];
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) a[i * k + j]! += row[i]! * row[j]!;
    }
    n += b;
  }
  return a.map((v) => v / n);
}

test('a model pass: the wide factor comes back as its rows, the pass never forms its k² sum on the device, and an inverse holds no tensor', async () => {
  const model = wideModel();
  const loader = randomBatches(model, 48, 16, 3);
  const startBytes = tf.memory().numBytes;
  const startTensors = tf.memory().numTensors;
  let kfac: PMatKFAC | undefined;
  const profile = await tf.profile(async () => {
    kfac = (await FIM({ model, loader, representation: PMatKFAC })) as PMatKFAC;
  });
  const f = kfac!.layerFactors(kfac!.layerCollection.ids()[0]!);
  assert.equal(holdsInputFactor(f), false, 'A held as rows');
  assert.equal(f.aRows!.length, 48 * 301);
  // The 301² float32 sum alone would be 362 KB; the pass's own peak (a batch's rows, activations, G) stays under it.
  const peak = profile.peakBytes - startBytes;
  assert.ok(peak < 4 * 301 * 301, `the pass peaked ${peak} bytes above its start`);
  assert.deepEqual([tf.memory().numTensors, tf.memory().numBytes], [startTensors, startBytes], 'the matrix holds no tensor');
  assert.ok(relativeError(f.a, inputFactor(loader, 301)) < 1e-5, 'A = (1/n) Σ x̃x̃ᵀ');
  // Its exact inverse and power are EKFAC blocks on the Gram eigenbasis: host arrays only.
  const inv = kfac!.inv({ regul: REGUL });
  const root = kfac!.pow(0.5, { regul: REGUL });
  assert.deepEqual([tf.memory().numTensors, tf.memory().numBytes], [startTensors, startBytes], 'inv and pow hold no tensor');
  const v = PVector.random(kfac!.layerCollection, 2);
  const x = inv.mv(v);
  const y = kfac!.mv(x);
  // (M + λI) (M + λI)⁻¹ v = v (float32 products).
  const recovered = host(tf.tidy(() => tf.add(y.data, tf.mul(x.data, REGUL))));
  assert.ok(relativeError(recovered, host(v.data.clone())) < 1e-3, 'inv');
  [x, y, v, inv, root, kfac!].forEach((o) => o.dispose());
  assert.deepEqual([tf.memory().numTensors, tf.memory().numBytes], [startTensors, startBytes]);
  disposeBatches(loader);
  model.dispose();
});

test('rows past the budget (k/4) after 18 batches of 4: the kept rows are folded into the k×k sum, which equals (1/n) Σ x̃x̃ᵀ', async () => {
  const model = wideModel();
  // 24 batches of 4 = 96 examples > 301/4 = 75.25: the 19th batch closes the rows.
  const loader = randomBatches(model, 96, 4, 5);
  const kfac = (await FIM({ model, loader, representation: PMatKFAC })) as PMatKFAC;
  const f = kfac.layerFactors(kfac.layerCollection.ids()[0]!);
  assert.equal(holdsInputFactor(f), true);
  assert.equal(f.aRows, undefined, 'no rows kept past the budget');
  const e = relativeError(f.a, inputFactor(loader, 301));
  assert.ok(e < 1e-5, `A vs (1/n) Σ x̃x̃ᵀ: ${e}`);
  kfac.dispose();
  disposeBatches(loader);
  model.dispose();
});

test('rows-only A: inputs of ±1.5·10¹⁹ (under the pass guard at 2⁶⁴), whose float32 k×k sum would overflow, give the exact float64 A', async () => {
  const model = wideModel();
  const raw = randomBatches(model, 16, 16, 3);
  const loader = raw.map((b) => ({ xs: tf.mul(tf.sign(b.xs), 1.5e19), ys: b.ys }));
  // Σ over 16 examples of x² = 2.25·10³⁸ is 3.6·10³⁹ > 3.4·10³⁸: the k×k float32 sum overflows, the rows' float64 Gram matrix does not.
  const kfac = (await FIM({ model, loader, representation: PMatKFAC })) as PMatKFAC;
  const f = kfac.layerFactors(kfac.layerCollection.ids()[0]!);
  assert.equal(holdsInputFactor(f), false);
  const e = relativeError(f.a, inputFactor(loader, 301));
  assert.ok(e < 1e-6, `A vs (1/n) Σ x̃x̃ᵀ: ${e}`);
  assert.ok(Number.isFinite(kfac.trace()) && kfac.trace() > 0, 'trace');
  kfac.dispose();
  disposeBatches(raw);
  loader.forEach((b) => b.xs.dispose());
  model.dispose();
});
