/**
 * EKFAC's updateDiag on a wide input factor (K = 301 with the bias, not a multiple of 4 or 8,
 * built from m ≤ K/4 rows), whose eigenbasis U_A = [Q_⊥, U_r] holds only its range U_r:
 * the statistic projects the inputs on U_r and brings in the null-space basis Q_⊥ only from the
 * first batch whose inputs leave span(U_r).
 *
 * The reference is the definition with the explicit completion, by brute force: the dense
 * layer block F_l of F = (1/n) Σᵢ Jᵢᵀ Hᵢ Jᵢ from per-example tf.grad (test/support/reference.ts)
 * and D = diag(Qᵀ F_l Q) for Q = U_A ⊗ U_G in float64, U_A the materialised completion; and the
 * same statistic run on the explicit U_A (the route before the implicit one). Loaders: the
 * factor's own data (null rows exactly 0, the basis stays implicit), other data, and own data
 * followed by other data (the switch half-way), over batches of 7 (the last one shorter), for a
 * Dense layer on vectors (one row per example) and on sequences (two rows per example, 'expand'
 * and 'reduce': with 'reduce' the factor's rows are the sequence means, so the per-position rows
 * leave their span even on the factor's own data).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatEKFAC } from '../../src/index.js';
import type { PassSpec } from '../../src/backend/pass.js';
import { variantCotangents } from '../../src/metrics/variants.js';
import { gemm, initLinalg } from '../../src/linalg/index.js';
import { accumulate } from '../../src/statistics/statistic.js';
import { eigenbasisDiagonal } from '../../src/statistics/eigenbasis-diagonal.js';
import type { EigenBlock } from '../../src/object/pspace/kronecker/eigen-block.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, randomBatches } from '../support/models.js';
import { bruteForceFisher, relativeError } from '../support/reference.js';

/** float32 device sums against the float64 brute force (CONVENTIONS.md). */
const TOL = 1e-4;
/**
 * The implicit and the explicit route, both float32 on the device: measured 1.4·10⁻¹⁴ (the
 * explicit route's null rows are rounding noise where the implicit ones are 0) and 0 otherwise,
 * since each column of X̃U depends only on its column of U; 10⁻⁶ leaves room for a matrix
 * kernel whose summation order depends on the product's width, and still sees any wrong row.
 */
const ROUTE_TOL = 1e-6;

before(async () => {
  await useTestBackend();
  await initLinalg();
});

type Batches = Array<{ xs: tf.Tensor; ys: tf.Tensor }>;

/** Dense 300 → 5 (tanh) → 3 on vectors, or on sequences of 2 positions (flattened before the last layer). */
function wideModel(positions: 1 | 2): tf.Sequential {
  const m = tf.sequential();
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  m.add(tf.layers.dense({ units: 5, inputShape: positions === 1 ? [300] : [positions, 300], activation: 'tanh', kernelInitializer: init(1) }));
  if (positions > 1) m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 3, kernelInitializer: init(2) }));
  return m;
}

/** The private blocks of a PMatEKFAC (to see whether the wide one stayed implicit). */
function blocksOf(m: PMatEKFAC): EigenBlock[] {
  return (m as unknown as { hostBlocks: EigenBlock[] }).hostBlocks;
}

/** diag(Qᵀ F_l Q), Q = U_A ⊗ U_G (Q[(p, s), (a, b)] = U_A[p, a] U_G[s, b]), F_l the block at `offset` of F (d×d). */
function referenceDiagonal(F: Float64Array, d: number, offset: number, uA: Float64Array, k: number, uG: Float64Array, c: number): Float64Array {
  const n = k * c;
  const q = new Float64Array(n * n);
  for (let p = 0; p < k; p++) for (let s = 0; s < c; s++) for (let a = 0; a < k; a++) for (let b = 0; b < c; b++) q[(p * c + s) * n + a * c + b] = uA[p * k + a]! * uG[s * c + b]!;
  const fl = new Float64Array(n * n);
  for (let i = 0; i < n; i++) fl.set(F.subarray((offset + i) * d + offset, (offset + i) * d + offset + n), i * n);
  const fq = gemm(fl, n, n, q, n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[j]! += q[i * n + j]! * fq[i * n + j]!;
  return out;
}

interface Case {
  name: string;
  positions: 1 | 2;
  kfacType: 'expand' | 'reduce';
  /** Examples of the factor's data (m = examples · positions rows for 'expand'). */
  examples: number;
  /** The updateDiag loader from the factor's batches and other batches. */
  loader(own: Batches, other: Batches): Batches;
  /** Whether the wide block must stay implicit (null rows exactly 0). */
  implicit: boolean;
}

const cases: Case[] = [
  { name: 'vectors, the factor’s own data', positions: 1, kfacType: 'expand', examples: 48, loader: (own) => own, implicit: true },
  { name: 'vectors, other data', positions: 1, kfacType: 'expand', examples: 48, loader: (_own, other) => other, implicit: false },
  { name: 'vectors, own data then other data', positions: 1, kfacType: 'expand', examples: 48, loader: (own, other) => [...own.slice(0, 4), ...other.slice(0, 3)], implicit: false },
  { name: "sequences 'expand', own data", positions: 2, kfacType: 'expand', examples: 30, loader: (own) => own, implicit: true },
  { name: "sequences 'expand', other data", positions: 2, kfacType: 'expand', examples: 30, loader: (_own, other) => other, implicit: false },
  { name: "sequences 'reduce', own data (per-position rows outside the span of the means)", positions: 2, kfacType: 'reduce', examples: 30, loader: (own) => own, implicit: false },
];

for (const c of cases) {
  test(`wide EKFAC updateDiag, ${c.name}: D = diag(Qᵀ F_l Q) with the explicit completion, and equals the explicit route`, async () => {
    const model = wideModel(c.positions);
    const own = randomBatches(model, c.examples, 7, 3);
    const other = randomBatches(model, c.examples, 7, 300);
    const loader = c.loader(own, other);
    const lc = LayerCollection.fromModel(model);
    const before = tf.memory().numTensors;
    const ekfac = (await FIM({ model, loader: own, representation: PMatEKFAC.with({ kfacType: c.kfacType }) })) as PMatEKFAC;
    const wide = blocksOf(ekfac)[0]!;
    assert.equal(wide.k, 301);
    assert.ok(wide.basis.rank < 301 && wide.basis.isImplicit, `the 301-wide factor is held as its range (rank ${wide.basis.rank})`);
    await ekfac.updateDiag(loader);
    const after = blocksOf(ekfac)[0]!;
    assert.equal(after.isImplicit, c.implicit, 'the block after updateDiag is implicit exactly when the data stay in span(U_r)');
    assert.equal(after.basis.isImplicit, c.implicit, 'the null-space basis is materialised exactly when the data leave span(U_r)');

    const { k, c: cols, uA, uG, diagonal } = ekfac.eigenBlocks()[0]!; // materialises U_A
    const z = k - wide.basis.rank;
    const d = lc.numel();
    const F = bruteForceFisher(model, lc, loader.map((b) => b.xs), 'classif_logits');
    const expected = referenceDiagonal(F, d, 0, uA, k, uG, cols);
    const range = (x: Float64Array) => x.subarray(z * cols);
    const nullRows = (x: Float64Array) => x.subarray(0, z * cols);
    const eRange = relativeError(range(diagonal), range(expected));
    assert.ok(eRange < TOL, `range rows vs brute force: ${eRange}`);
    const top = expected.reduce((a, x) => Math.max(a, x), 0);
    if (c.implicit) {
      assert.ok(nullRows(diagonal).every((x) => x === 0), 'null rows exactly 0');
      const worst = nullRows(expected).reduce((a, x) => Math.max(a, Math.abs(x)), 0);
      assert.ok(worst <= 1e-10 * top, `the brute-force null rows are 0 too: ${worst} vs max ${top}`);
    } else {
      const eNull = relativeError(nullRows(diagonal), nullRows(expected));
      assert.ok(eNull < TOL, `null rows vs brute force: ${eNull}`);
      assert.ok(nullRows(expected).reduce((a, x) => a + x, 0) > 1e-3 * expected.reduce((a, x) => a + x, 0), 'the data put weight in the null space');
    }
    // The other blocks (the narrow last layer) are unchanged by the route.
    const last = ekfac.eigenBlocks()[1]!;
    const eLast = relativeError(last.diagonal, referenceDiagonal(F, d, lc.layers[1]!.offset, last.uA, last.k, last.uG, last.c));
    assert.ok(eLast < TOL, `narrow block vs brute force: ${eLast}`);

    // The same statistic on the explicit U_A (no range given): the route before this one.
    const spec: PassSpec = { model, layerCollection: lc, loader, outputs: variantCotangents('classif_logits', {}) };
    const explicit = ekfac.eigenBlocks().map((b) => ({ weights: { k: b.k, c: b.c, uA: b.uA, uG: b.uG }, bias: null }));
    const { value } = await accumulate(spec, eigenbasisDiagonal(lc, explicit, 'test'));
    const eRoute = relativeError(diagonal, value[0]!);
    assert.ok(eRoute < ROUTE_TOL, `implicit vs explicit route: ${eRoute}`);

    ekfac.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    disposeBatches(own);
    disposeBatches(other);
    model.dispose();
  });
}

test('wide EKFAC updateDiag that fails half-way (a batch of the wrong width after Q_⊥ came in) leaves no tensor and the matrix as it was', async () => {
  const model = wideModel(1);
  const own = randomBatches(model, 48, 7, 3);
  const other = randomBatches(model, 14, 7, 300);
  const bad = { xs: tf.zeros([3, 299]), ys: tf.zeros([3], 'int32') };
  const ekfac = (await FIM({ model, loader: own, representation: PMatEKFAC })) as PMatEKFAC;
  const trace = ekfac.trace();
  const before = tf.memory().numTensors;
  await assert.rejects(ekfac.updateDiag([...other, bad]), /shape|input|299/i);
  assert.equal(tf.memory().numTensors, before, 'tensors left after the failed pass');
  assert.equal(ekfac.diagonalSource, 'kfac');
  assert.equal(ekfac.trace(), trace, 'the diagonal is unchanged');
  ekfac.dispose();
  tf.dispose([bad.xs, bad.ys]);
  disposeBatches(own);
  disposeBatches(other);
  model.dispose();
});
