/**
 * A KFAC output factor held as its rows (G = R_GᵀR_G, `factorsFromRows({ gRows })`), against the
 * same factor held as the c×c array G: every PMatKFAC method gives the same numbers (1e-10
 * relative for the float64 algebra, 1e-5 for float32 device products), none of them forms G,
 * and reading `g` forms it (on the device) and keeps it.
 *   - factors built here: a layer of k = 38, c = 38 with A as 7 rows and G as 9 rows (≤ k/4:
 *     the Gram-route eigendecomposition, exact in float64), both formed independently by a
 *     triple loop; a second, narrow layer of 39×3; and G as 23 rows (c/4 < m ≤ c: kept as rows,
 *     decomposed directly from G formed on the device, to float32 accuracy);
 *   - a model pass (dense 8 → 300 tanh → 4 logits on 48 examples, `classif_logits`): G of the
 *     300-wide layer comes back as 48·4 = 192 rows, equal to the closed form
 *     (1/n) Σᵢ Jᵢᵀ(diag pᵢ − pᵢpᵢᵀ)Jᵢ with Jᵢ = ∂logits/∂z computed by hand; no tensor leaks;
 *   - a pass whose G rows outgrow their budget (c) after 18 batches of 4 examples (16 rows
 *     each, past HostSum's 16-batch transfer): the folded sum equals the same closed form;
 *   - G formed on the device from more rows than one float32 sum takes; a G whose float32
 *     diagonal overflows while its rows do not is refused by FIM.
 * Mutations tried (each made one test fail): tr G from rows divided by m; rows scaled by 1/n
 * instead of 1/√n; the pending device batch dropped by the fold; scale() multiplying R_G by x;
 * merge stacking w·R; X R_G without the transpose; the device Gram keeping one chunk; diag G
 * read from A's rows; fromState accepting any rows length; the finiteness scan without float32
 * rounding.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatEKFAC, PMatKFAC, PVector, deserialize, mergePartial, serialize } from '../../src/index.js';
import { initLinalg } from '../../src/linalg/index.js';
import { factorsFromRows, holdsFactor, type KroneckerFactors } from '../../src/statistics/kronecker-factors.js';
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

/** Dense 37 → 38 (k = 38 with the bias, c = 38), dense 38 → 3 (k = 39, c = 3). */
function smallModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 38, inputShape: [37], activation: 'tanh' }));
  m.add(tf.layers.dense({ units: 3 }));
  return m;
}

const K = 38;
const C = 38;
const MA = 7;
const MG = 9;

/** The same matrix twice: the first layer's A as 7 rows and G as 23 rows, and both as 38×38 arrays. */
function pair(lc: LayerCollection, seed: number, mg = MG) {
  const next = random(seed);
  const aRows = Float64Array.from({ length: MA * K }, next);
  const gRows = Float64Array.from({ length: mg * C }, next);
  const second = (): KroneckerFactors => ({ k: 39, c: 3, a: spd(39, random(seed + 1)), g: spd(3, random(seed + 2)) });
  const fromRows = new PMatKFAC(lc, [factorsFromRows({ k: K, c: C, aRows, gRows }), second()]);
  const dense = new PMatKFAC(lc, [{ k: K, c: C, a: gramLoop(aRows, MA, K), g: gramLoop(gRows, mg, C) }, second()]);
  return { fromRows, dense, aRows, gRows };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

test('rows-only G (and A): every PMatKFAC method equals the c×c route (1e-10 in float64, 1e-5 on the device) without forming G', () => {
  const model = smallModel();
  const lc = LayerCollection.fromModel(model);
  const start = tf.memory().numTensors;
  const { fromRows, dense } = pair(lc, 3);
  const id = lc.ids()[0]!;
  const wide = () => fromRows.layerFactors(id);
  const v = PVector.random(lc, 5);

  assert.ok(rel(fromRows.trace(), dense.trace()) < F64_TOL, 'trace (‖R_G‖²)');
  assert.ok(rel(fromRows.norm('fro'), dense.norm('fro')) < F64_TOL, 'Frobenius norm (‖R_GR_Gᵀ‖)');
  assert.ok(rel(fromRows.norm(2), dense.norm(2)) < F64_TOL, 'spectral norm');
  // G has rank 9 < 38: its smallest eigenvalue is 0 on both routes (up to the direct solver's round-off).
  assert.ok(Math.abs(fromRows.norm(-2) - dense.norm(-2)) < F64_TOL * dense.norm(2), 'min eigenvalue product');
  assert.ok(rel(fromRows.logdet({ regul: REGUL }), dense.logdet({ regul: REGUL })) < F64_TOL, 'logdet');
  assert.ok(relativeError(host(fromRows.getDiag()), host(dense.getDiag())) < 1e-7, 'getDiag (float64 then float32)');
  // And against diag(A) ⊗ diag(G) of the triple-loop factors, entry by entry (the first layer's k·c entries).
  const fa = dense.layerFactors(lc.ids()[0]!);
  const expectedDiag = Float64Array.from({ length: K * C }, (_, i) => fa.a[Math.floor(i / C) * (K + 1)]! * fa.g[(i % C) * (C + 1)]!);
  assert.ok(relativeError(host(fromRows.getDiag()).subarray(0, K * C), expectedDiag) < 1e-7, 'getDiag = diag A ⊗ diag G');

  const float64 = (what: string, a: PVector, b: PVector) => {
    const e = relativeError(host(a.data), host(b.data));
    assert.ok(e < F64_TOL, `${what}: ${e}`);
    a.dispose();
    b.dispose();
  };
  float64('solve (exact damping)', fromRows.solve(v, { regul: REGUL }), dense.solve(v, { regul: REGUL }));
  for (const [what, a, b] of [
    ['inv', fromRows.inv({ regul: REGUL }), dense.inv({ regul: REGUL })],
    ['pow(1/2)', fromRows.pow(0.5, { regul: REGUL }), dense.pow(0.5, { regul: REGUL })],
  ] as const) {
    float64(`${what}: its solve`, a.solve(v, { regul: 0.3 }), b.solve(v, { regul: 0.3 }));
    assert.ok(rel(a.trace(), b.trace()) < F64_TOL, `${what}: trace`);
    const [x, y] = [a.mv(v), b.mv(v)];
    assert.ok(relativeError(host(x.data), host(y.data)) < F32_TOL, `${what}: mv`);
    [x, y, a, b].forEach((o) => o.dispose());
  }
  const eRows = fromRows.eigendecomposition()[0]!;
  const eDense = dense.eigendecomposition()[0]!;
  const lmax = eDense.eigenvaluesG[C - 1]!;
  assert.ok(eRows.eigenvaluesG.every((x, i) => Math.abs(x - Math.max(eDense.eigenvaluesG[i]!, 0)) < F64_TOL * lmax), 'eigenvalues of G');
  // U_G (completed from the thin basis) is orthonormal and diagonalises G: U_Gᵀ G U_G = Λ.
  const g = gramLoop(pair(lc, 3).gRows, MG, C);
  const u = eRows.eigenvectorsG;
  let worst = 0;
  for (let p = 0; p < C; p++) for (let q = 0; q < C; q++) {
    let s = 0;
    for (let i = 0; i < C; i++) for (let j = 0; j < C; j++) s += u[i * C + p]! * g[i * C + j]! * u[j * C + q]!;
    worst = Math.max(worst, Math.abs(s - (p === q ? eRows.eigenvaluesG[p]! : 0)));
  }
  assert.ok(worst < 1e-12 * lmax * C, `U_Gᵀ G U_G = Λ: ${worst}`);

  const [m1, m2] = [fromRows.mv(v), dense.mv(v)];
  assert.ok(relativeError(host(m1.data), host(m2.data)) < F32_TOL, 'mv ((X R_Gᵀ) R_G on the device)');
  assert.ok(rel(fromRows.vTMv(v), dense.vTMv(v)) < F32_TOL, 'vTMv');
  const [t1, t2] = [fromRows.toTensor(), dense.toTensor()];
  assert.ok(relativeError(host(t1), host(t2)) < F32_TOL, 'toTensor');
  const scaled = fromRows.scale(2.5);
  assert.ok(rel(scaled.trace(), 2.5 * dense.trace()) < F64_TOL, 'scale: trace');
  assert.equal(holdsFactor(scaled.layerFactors(id), 'g'), false, 'scale keeps G as rows (scaled by √x)');
  // None of the above formed G or A (eigendecomposition() completes U_G, not G).
  assert.equal(holdsFactor(wide(), 'g'), false, 'G never formed');
  assert.equal(holdsFactor(wide(), 'a'), false, 'A never formed');

  // The π-damped solve, inverse and mm form G for themselves on the device (float32 products), without keeping it.
  const pi = [fromRows.solve(v, { regul: REGUL, damping: 'pi' }), dense.solve(v, { regul: REGUL, damping: 'pi' })];
  assert.ok(relativeError(host(pi[0]!.data), host(pi[1]!.data)) < 1e-4, 'solve (π damping): G formed in float32');
  const piRows = fromRows.inv({ regul: REGUL, damping: 'pi' }) as PMatKFAC;
  const piDense = dense.inv({ regul: REGUL, damping: 'pi' }) as PMatKFAC;
  assert.ok(relativeError(piRows.layerFactors(id).g, piDense.layerFactors(id).g) < 1e-4, 'inv (π damping): G⁻¹');
  const mmRows = fromRows.mm(dense);
  const mmDense = dense.mm(dense);
  assert.ok(relativeError(mmRows.layerFactors(id).g, mmDense.layerFactors(id).g) < F32_TOL, 'mm: G G′');
  assert.equal(holdsFactor(wide(), 'g'), false, 'G not kept by π damping or mm');

  // Reading `g` forms G = R_GᵀR_G on the device (float32 rank updates summed in float64) and keeps it.
  const formed = wide().g;
  assert.ok(relativeError(formed, dense.layerFactors(id).g) < F32_TOL, 'G read from the rows');
  assert.equal(holdsFactor(wide(), 'g'), true);
  assert.equal(wide().g, formed, 'the same array on the next read');

  // EKFAC on the same eigenbases (U_G completed from the thin basis) solves alike.
  const { fromRows: r2, dense: d2 } = pair(lc, 3);
  const ekRows = new PMatEKFAC(lc, kfacEigenBlocks(lc.ids().map((x) => r2.layerFactors(x))), 'kfac', null);
  const ekDense = new PMatEKFAC(lc, kfacEigenBlocks(lc.ids().map((x) => d2.layerFactors(x))), 'kfac', null);
  assert.equal(holdsFactor(r2.layerFactors(id), 'g'), false, 'EKFAC blocks from the rows do not form G');
  float64('EKFAC from the factors: solve', ekRows.solve(v, { regul: REGUL }), ekDense.solve(v, { regul: REGUL }));
  [fromRows, dense, piRows, piDense, mmRows, mmDense, scaled, r2, d2, ekRows, ekDense, v, m1, m2, t1, t2, ...pi].forEach((o) => o.dispose());
  assert.equal(tf.memory().numTensors, start, 'no tensor left behind');
  model.dispose();
});

test('G as 23 rows (c/4 < m ≤ c): kept as rows, decomposed directly from G formed on the device (float32 accuracy), G not kept', () => {
  const model = smallModel();
  const lc = LayerCollection.fromModel(model);
  const start = tf.memory().numTensors;
  const { fromRows, dense } = pair(lc, 5, 23);
  const id = lc.ids()[0]!;
  const v = PVector.random(lc, 9);
  assert.ok(rel(fromRows.trace(), dense.trace()) < F64_TOL, 'trace (‖R_G‖², float64)');
  const eRows = fromRows.eigendecomposition()[0]!;
  const eDense = dense.eigendecomposition()[0]!;
  const lmax = eDense.eigenvaluesG[C - 1]!;
  const worst = Math.max(...eRows.eigenvaluesG.map((x, i) => Math.abs(x - Math.max(eDense.eigenvaluesG[i]!, 0))));
  assert.ok(worst < 1e-6 * lmax, `eigenvalues of G: ${worst / lmax} of λ_max`);
  const [s1, s2] = [fromRows.solve(v, { regul: REGUL }), dense.solve(v, { regul: REGUL })];
  // CONVENTIONS.md: 1e-3 for solves through an eigendecomposition of float32 statistics.
  assert.ok(relativeError(host(s1.data), host(s2.data)) < 1e-3, 'solve');
  assert.ok(rel(fromRows.logdet({ regul: REGUL }), dense.logdet({ regul: REGUL })) < F32_TOL, 'logdet');
  assert.equal(holdsFactor(fromRows.layerFactors(id), 'g'), false, 'the eigensolver formed G for itself only');
  [fromRows, dense, v, s1, s2].forEach((o) => o.dispose());
  assert.equal(tf.memory().numTensors, start, 'no tensor left behind');
  model.dispose();
});

test('rows-only G: save/load keeps the rows ("gr0"), mergePartial merges rows within c and forms G past it, storedBytes counts rows', () => {
  const model = smallModel();
  const lc = LayerCollection.fromModel(model);
  const one = pair(lc, 7);
  const v = PVector.random(lc, 6);
  const state = one.fromRows.toState();
  assert.deepEqual(Object.keys(state.arrays).sort(), ['a1', 'ar0', 'g1', 'gr0']);
  const loaded = deserialize(serialize(one.fromRows), model) as PMatKFAC;
  const f = loaded.layerFactors(lc.ids()[0]!);
  assert.equal(holdsFactor(f, 'g'), false, 'loaded as rows');
  assert.deepEqual(f.gRows, one.gRows);
  const [s1, s2] = [loaded.solve(v, { regul: REGUL }), one.dense.solve(v, { regul: REGUL })];
  assert.ok(relativeError(host(s1.data), host(s2.data)) < F64_TOL, 'loaded solve');
  assert.equal(storedBytesOf(one.fromRows), 8 * (MA * K + MG * C + 39 * 39 + 9));
  assert.equal(holdsFactor(one.fromRows.layerFactors(lc.ids()[0]!), 'g'), false, 'storedBytes does not form G');

  // 4 + 5 rows ≤ 38: G = (1/4) G₁ + (3/4) G₂ = [½R₁; (√3/2)R₂]ᵀ[…], kept as rows.
  const p1 = pair(lc, 11, 4);
  const p2 = pair(lc, 12, 5);
  const merged = mergePartial([{ matrix: p1.fromRows, examples: 1 }, { matrix: p2.fromRows, examples: 3 }]) as PMatKFAC;
  const mf = merged.layerFactors(lc.ids()[0]!);
  assert.equal(holdsFactor(mf, 'g'), false, '9 rows ≤ c: merged as rows');
  assert.equal(mf.gRows!.length, 9 * C);
  const g1 = gramLoop(p1.gRows, 4, C);
  const g2 = gramLoop(p2.gRows, 5, C);
  const expectedG = g1.map((x, i) => 0.25 * x + 0.75 * g2[i]!);
  const mergedDense = mergePartial([{ matrix: p1.dense, examples: 1 }, { matrix: p2.dense, examples: 3 }]) as PMatKFAC;
  assert.ok(relativeError(mergedDense.layerFactors(lc.ids()[0]!).g, expectedG) < 1e-14, 'dense merge: G');
  const [s3, s4] = [merged.solve(v, { regul: REGUL }), mergedDense.solve(v, { regul: REGUL })];
  assert.ok(relativeError(host(s3.data), host(s4.data)) < F64_TOL, 'merged rows: solve');
  // 23 + 23 rows > 38: the merge forms the weighted G (each part's G on the device).
  const [w1, w2] = [pair(lc, 7, 23), pair(lc, 8, 23)];
  const over = mergePartial([{ matrix: w1.fromRows, examples: 3 }, { matrix: w2.fromRows, examples: 5 }]) as PMatKFAC;
  const overDense = mergePartial([{ matrix: w1.dense, examples: 3 }, { matrix: w2.dense, examples: 5 }]) as PMatKFAC;
  assert.equal(holdsFactor(over.layerFactors(lc.ids()[0]!), 'g'), true, '46 rows > c: merged as G');
  assert.ok(relativeError(over.layerFactors(lc.ids()[0]!).g, overDense.layerFactors(lc.ids()[0]!).g) < F32_TOL, 'merged G');
  [one.fromRows, one.dense, w1.fromRows, w1.dense, w2.fromRows, w2.dense, p1.fromRows, p1.dense, p2.fromRows, p2.dense, loaded, merged, mergedDense, over, overDense, v, s1, s2, s3, s4].forEach((o) => o.dispose());
  model.dispose();
});

test('rows-only G: bad rows are refused with the layer named', () => {
  const model = smallModel();
  const lc = LayerCollection.fromModel(model);
  const second = { k: 39, c: 3, a: new Float64Array(39 * 39), g: new Float64Array(9) };
  const a = new Float64Array(K * K);
  assert.throws(() => new PMatKFAC(lc, [factorsFromRows({ k: K, c: C, a, gRows: new Float64Array(C + 1) }), second]), /rows 'gRows' of layer '[^']+' must be a Float64Array of m×38 values \(G = RᵀR\)/);
  const nan = new Float64Array(2 * C);
  nan[40] = NaN;
  assert.throws(() => new PMatKFAC(lc, [factorsFromRows({ k: K, c: C, a, gRows: nan }), second]), /rows of G of layer/);
  const state = { meta: { kfacType: 'expand' }, arrays: { a0: a, gr0: new Float64Array(C + 1), a1: second.a, g1: second.g } };
  assert.throws(() => PMatKFAC.fromState(lc, state), /array 'gr0' has 39 values, expected a positive multiple of 38 \(rows of G\)/);
  model.dispose();
});

/** Dense 8 → 300 (tanh) → 4 logits. */
function wideModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 300, inputShape: [8], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }));
  m.add(tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }));
  return m;
}

/**
 * G of the 300-wide layer for `classif_logits` in closed form, float64 on the host:
 * (1/n) Σᵢ Jᵢᵀ (diag pᵢ − pᵢpᵢᵀ) Jᵢ with Jᵢ[o, j] = ∂logit_o/∂z_j = W₂[j, o](1 − tanh²(z_j)).
 */
function outputFactor(model: tf.LayersModel, batches: Array<{ xs: tf.Tensor }>): Float64Array {
  const [w1, b1, w2, b2] = model.getWeights().map((w) => Float64Array.from(w.dataSync()));
  const c = 300;
  const o = 4;
  const g = new Float64Array(c * c);
  let n = 0;
  for (const { xs } of batches) {
    const x = xs.dataSync();
    for (let t = 0; t < xs.shape[0]!; t++, n++) {
      const h = Float64Array.from({ length: c }, (_, j) => {
        let z = b1![j]!;
        for (let i = 0; i < 8; i++) z += x[t * 8 + i]! * w1![i * c + j]!;
        return Math.tanh(z);
      });
      const logits = Float64Array.from({ length: o }, (_, q) => h.reduce((s, hj, j) => s + hj * w2![j * o + q]!, b2![q]!));
      const top = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - top));
      const p = e.map((v) => v / e.reduce((a, b) => a + b, 0));
      const jac = new Float64Array(o * c);
      for (let q = 0; q < o; q++) for (let j = 0; j < c; j++) jac[q * c + j] = w2![j * o + q]! * (1 - h[j]! ** 2);
      // Jᵀ M J with M = diag p − ppᵀ: (MJ)[q] = p_q (J[q] − Σ_r p_r J[r]).
      const mean = new Float64Array(c);
      for (let q = 0; q < o; q++) for (let j = 0; j < c; j++) mean[j]! += p[q]! * jac[q * c + j]!;
      for (let q = 0; q < o; q++) {
        for (let i = 0; i < c; i++) {
          const left = jac[q * c + i]!;
          const pq = p[q]!;
          for (let j = 0; j < c; j++) g[i * c + j]! += left * pq * (jac[q * c + j]! - mean[j]!);
        }
      }
    }
  }
  return g.map((v) => v / n);
}

test('a model pass: G of the 300-wide layer comes back as its 192 rows, equals the closed form, is formed on read and kept, and nothing leaks', async () => {
  const model = wideModel();
  const loader = randomBatches(model, 48, 16, 3);
  const startTensors = tf.memory().numTensors;
  const kfac = (await FIM({ model, loader, representation: PMatKFAC, variant: 'classif_logits' })) as PMatKFAC;
  assert.equal(tf.memory().numTensors, startTensors, 'the matrix holds no tensor');
  const id = kfac.layerCollection.ids()[0]!;
  const f = kfac.layerFactors(id);
  assert.equal(holdsFactor(f, 'g'), false, 'G held as rows');
  assert.equal(f.gRows!.length, 48 * 4 * 300, '4 stacked logits per example');
  // The narrow layer (c = 4) keeps today's c×c route.
  assert.equal(kfac.layerFactors(kfac.layerCollection.ids()[1]!).gRows, undefined);
  const reference = outputFactor(model, loader);
  const fromRows = gramLoop(f.gRows!, 48 * 4, 300);
  const e = relativeError(fromRows, reference);
  assert.ok(e < F32_TOL, `R_GᵀR_G vs the closed form: ${e}`);
  const trace = reference.reduce((s, _, i) => (i % 301 === 0 ? s + reference[i]! : s), 0);
  const a = kfac.layerFactors(id);
  assert.equal(holdsFactor(a, 'g'), false, 'nothing above formed G');
  // Algebra on the rows: a solve, an EKFAC from the same factors, both leave no tensor.
  const v = PVector.random(kfac.layerCollection, 2);
  const x = kfac.solve(v, { regul: REGUL });
  const y = kfac.mv(x);
  const recovered = host(tf.tidy(() => tf.add(y.data, tf.mul(x.data, REGUL))));
  assert.ok(relativeError(recovered, host(v.data)) < 1e-3, '(M + λI) solve(v) = v');
  const ekfac = new PMatEKFAC(kfac.layerCollection, kfacEigenBlocks(kfac.layerCollection.ids().map((i) => kfac.layerFactors(i))), 'kfac', null);
  // Σ λ_A λ_G (G's eigenvalues from G formed in float32 on the device: 192 rows > c/4) against ‖R_A‖²‖R_G‖² in float64.
  assert.ok(rel(ekfac.trace(), kfac.trace()) < F32_TOL, 'EKFAC on the rows eigenbases: trace = KFAC trace');
  assert.equal(holdsFactor(f, 'g'), false, 'the solve and the EKFAC formed G for their eigensolver only');
  // `g` is formed on its first read and kept.
  const g = f.g;
  assert.ok(relativeError(g, reference) < F32_TOL, 'G read = the closed form');
  assert.ok(rel(g.reduce((s, _, i) => (i % 301 === 0 ? s + g[i]! : s), 0), trace) < F32_TOL, 'tr G');
  assert.equal(f.g, g, 'kept');
  [v, x, y, ekfac, kfac].forEach((o) => o.dispose());
  assert.equal(tf.memory().numTensors, startTensors, 'no tensor leaked');
  disposeBatches(loader);
  model.dispose();
});

test('G rows past the budget (c) after 18 batches of 4: the kept rows are folded into the c×c sum, which equals the closed form', async () => {
  const model = wideModel();
  // 24 batches of 4 examples × 4 logits = 16 rows a batch: the 19th batch (304 rows > 300) closes the rows.
  const loader = randomBatches(model, 96, 4, 5);
  const startTensors = tf.memory().numTensors;
  const kfac = (await FIM({ model, loader, representation: PMatKFAC, variant: 'classif_logits' })) as PMatKFAC;
  const f = kfac.layerFactors(kfac.layerCollection.ids()[0]!);
  assert.equal(holdsFactor(f, 'g'), true);
  assert.equal(f.gRows, undefined, 'no rows kept past the budget');
  const e = relativeError(f.g, outputFactor(model, loader));
  assert.ok(e < F32_TOL, `G vs the closed form: ${e}`);
  kfac.dispose();
  assert.equal(tf.memory().numTensors, startTensors, 'no tensor leaked');
  disposeBatches(loader);
  model.dispose();
});

test('G formed on the device from more rows than one float32 sum takes (2,100 > 2,048): the float64 sum of the chunks equals RᵀR to float32 accuracy', async () => {
  const { gramOfRowsOnDevice, ROWS_PER_DEVICE_SUM } = await import('../../src/statistics/factor-rows.js');
  const next = random(21);
  const m = ROWS_PER_DEVICE_SUM + 52;
  const rows = Float64Array.from({ length: m * 5 }, next);
  const start = tf.memory().numTensors;
  const e = relativeError(gramOfRowsOnDevice(rows, 5), gramLoop(rows, m, 5));
  assert.ok(e < F32_TOL, `RᵀR: ${e}`);
  assert.equal(tf.memory().numTensors, start, 'no tensor left behind');
});

test('G held as rows whose float32 G would overflow (Σ_o g² ≈ 5.8·10³⁸ with every |g| = 1.2·10¹⁹ under the pass guard at 2⁶⁴): FIM refuses it with the layer named', async () => {
  const model = wideModel();
  const [w1, b1, , b2] = model.getWeights();
  const big = tf.fill([300, 4], 1.2e19);
  model.setWeights([w1!, b1!, big, b2!]);
  big.dispose();
  const raw = randomBatches(model, 16, 16, 3);
  const loader = raw.map((b) => ({ xs: tf.mul(b.xs, 1e-3), ys: b.ys }));
  const start = tf.memory().numTensors;
  // regression: each output's cotangent is 1, so g_jo = 1.2·10¹⁹ (1 − h_j²) for all 4 outputs: the rows are finite, diag G = 4 × 1.44·10³⁸ is not in float32.
  await assert.rejects(FIM({ model, loader, representation: PMatKFAC, variant: 'regression' }), /the Kronecker factor G of layer '[^']+' holds Infinity/);
  assert.equal(tf.memory().numTensors, start, 'no tensor left behind');
  disposeBatches(raw);
  loader.forEach((b) => b.xs.dispose());
  model.dispose();
});
