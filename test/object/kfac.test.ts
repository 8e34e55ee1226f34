/**
 * PMatKFAC and PMatEKFAC against the dense truth (issue 3): exactness identities, agreement of
 * every method with toTensor(), exact damped solves/inverses/powers/log-determinants, and
 * EKFAC's diagonal update.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatBlockDiag, PMatEKFAC, PMatKFAC, PVector } from '../../src/index.js';
import { cholesky, choleskySolve, eighSym } from '../../src/linalg/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, constantPositionsConv, constantPositionsSequence, disposeBatches, mlp, randomBatches, sequenceDense } from '../support/models.js';
import { relativeError, host } from '../support/reference.js';

const TOL = 1e-4;
const SOLVE_TOL = 1e-3;

before(async () => {
  await useTestBackend();
});

/** The dense float64 matrix of an EKFAC (or KFAC inverse) from its float64 eigenblocks. */
function denseFromEigen(E: PMatEKFAC): Float64Array {
  const d = E.layerCollection.numel();
  const out = new Float64Array(d * d);
  for (const b of E.eigenBlocks()) {
    const off = E.layerCollection.get(b.id).offset;
    const n = b.k * b.c;
    for (let i = 0; i < n; i++) {
      const [ia, ig] = [Math.floor(i / b.c), i % b.c];
      for (let j = 0; j < n; j++) {
        const [ja, jg] = [Math.floor(j / b.c), j % b.c];
        let s = 0;
        for (let a = 0; a < b.k; a++) {
          const ua = b.uA[ia * b.k + a]! * b.uA[ja * b.k + a]!;
          if (ua === 0) continue;
          for (let g = 0; g < b.c; g++) s += ua * b.uG[ig * b.c + g]! * b.uG[jg * b.c + g]! * b.diagonal[a * b.c + g]!;
        }
        out[(off + i) * d + off + j] = s;
      }
    }
  }
  return out;
}

/** A batch of n copies of one random input. */
function identicalInputs(model: tf.LayersModel, n: number, constantOverPositions = false): tf.Tensor {
  const shape = model.inputs[0]!.shape.slice(1) as number[];
  const one = constantOverPositions
    ? tf.mul(tf.ones([1, ...shape]), tf.randomNormal([1, ...shape.map((_, j) => (j === shape.length - 1 ? shape[j]! : 1))], 0, 1, 'float32', 5))
    : tf.randomNormal([1, ...shape], 0, 1, 'float32', 5);
  const out = tf.tile(one, [n, ...shape.map(() => 1)]);
  one.dispose();
  return out;
}

test('KFAC equals the exact block-diagonal when every example has the same input (MLP with and without bias)', async () => {
  for (const model of [mlp(), mlp({ bias: false })]) {
    const xs = identicalInputs(model, 4);
    const kfac = await FIM({ model, loader: [xs], representation: PMatKFAC });
    const bd = await FIM({ model, loader: [xs], representation: PMatBlockDiag });
    const err = relativeError(host(kfac.toTensor()), host(bd.toTensor()));
    assert.ok(err < TOL, `relative error ${err}`);
    [kfac, bd, xs].forEach((o) => o.dispose());
    model.dispose();
  }
});

test("shared positions: block = S·(A ⊗ G) for 'expand' and A ⊗ G for 'reduce' when inputs and gradients are constant over positions", async () => {
  for (const [make, s] of [[constantPositionsConv, 9], [constantPositionsSequence, 3]] as const) {
    const model = make();
    const lc = LayerCollection.fromLayers(model, [LayerCollection.fromModel(model).ids()[0]!]);
    const xs = identicalInputs(model, 3, true);
    const bd = await FIM({ model, loader: [xs], representation: PMatBlockDiag, layerCollection: lc });
    const expand = await FIM({ model, loader: [xs], representation: PMatKFAC, layerCollection: lc });
    const reduce = await FIM({ model, loader: [xs], representation: PMatKFAC.with({ kfacType: 'reduce' }), layerCollection: lc });
    const exact = host(bd.toTensor());
    const e1 = relativeError(host(expand.toTensor()).map((x) => s * x), exact);
    const e2 = relativeError(host(reduce.toTensor()), exact);
    assert.ok(e1 < TOL, `expand (S = ${s}): ${e1}`);
    assert.ok(e2 < TOL, `reduce (S = ${s}): ${e2}`);
    [bd, expand, reduce, xs].forEach((o) => o.dispose());
    model.dispose();
  }
});

for (const [name, make] of [['mlp', mlp], ['cnn', cnn], ['sequence dense', sequenceDense]] as const) {
  test(`KFAC methods agree with its dense matrix (1e-4): ${name}`, async () => {
    const model = make();
    const batches = randomBatches(model, 8, 4);
    const M = await FIM({ model, loader: batches, representation: PMatKFAC });
    const d = M.layerCollection.numel();
    const dense = host(M.toTensor());
    const v = PVector.random(M.layerCollection, 3);
    const x = host(v.toFlat());
    const mvRef = new Float64Array(d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) mvRef[i]! += dense[i * d + j]! * x[j]!;
    const mv = M.mv(v);
    assert.ok(relativeError(host(mv.toFlat()), mvRef) < TOL, 'mv');
    const quad = mvRef.reduce((a, y, i) => a + y * x[i]!, 0);
    assert.ok(Math.abs(M.vTMv(v) - quad) / quad < TOL, 'vTMv');
    const diag = Float64Array.from({ length: d }, (_, i) => dense[i * d + i]!);
    assert.ok(relativeError(host(M.getDiag()), diag) < TOL, 'getDiag');
    assert.ok(Math.abs(M.trace() - diag.reduce((a, b) => a + b, 0)) / M.trace() < TOL, 'trace');
    const spectrum = eighSym(dense, d).values;
    const fro = Math.sqrt(dense.reduce((a, b) => a + b * b, 0));
    assert.ok(Math.abs(M.norm('fro') - fro) / fro < TOL, 'fro');
    assert.ok(Math.abs(M.norm(2) - spectrum[d - 1]!) / spectrum[d - 1]! < TOL, 'norm 2');
    assert.ok(Math.abs(M.norm(-2) - Math.max(spectrum[0]!, 0)) <= TOL * spectrum[d - 1]!, 'norm -2');
    [M, v, mv].forEach((o) => o.dispose());
    disposeBatches(batches);
    model.dispose();
  });
}

test('exact damping: solve, inv, pow(1/3)³ and logdet for regul from 1e-6·‖M‖₂ to ‖M‖₂ (1e-3)', async () => {
  const model = cnn();
  const batches = randomBatches(model, 8, 4);
  const M = await FIM({ model, loader: batches, representation: PMatKFAC });
  const d = M.layerCollection.numel();
  // the float64 truth from the factors (toTensor is float32: too coarse at condition 1e6)
  const dense = new Float64Array(d * d);
  for (const e of M.layerCollection.layers) {
    const { k, c, a, g } = M.layerFactors(e.id);
    for (let i = 0; i < k; i++) for (let p = 0; p < c; p++) for (let j = 0; j < k; j++) for (let q = 0; q < c; q++) {
      dense[(e.offset + i * c + p) * d + e.offset + j * c + q] = a[i * k + j]! * g[p * c + q]!;
    }
  }
  const top = M.norm(2);
  const v = PVector.random(M.layerCollection, 11);
  const x = host(v.toFlat());
  for (const regul of [1e-6 * top, 1e-3 * top, top]) {
    const damped = Float64Array.from(dense);
    for (let i = 0; i < d; i++) damped[i * d + i]! += regul;
    // solve of a float32 right-hand side, against a float64 dense Cholesky solve of the same one
    const b = new Float64Array(d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) b[i]! += damped[i * d + j]! * x[j]!;
    const rhs = PVector.fromFlat(M.layerCollection, tf.tensor1d(Float32Array.from(b)));
    const exact = choleskySolve(cholesky(damped, d), d, Float64Array.from(host(rhs.toFlat())), 1);
    const sol = M.solve(rhs, { regul });
    assert.ok(relativeError(host(sol.toFlat()), exact) < SOLVE_TOL, `solve at regul ${regul}: ${relativeError(host(sol.toFlat()), exact)}`);
    // ≈ v only where the float32 rounding of the right-hand side (6e-8) is not amplified beyond
    // the tolerance by the condition number (up to 1e6 at the smallest regul: checked above instead).
    if (regul >= 1e-3 * top) assert.ok(relativeError(host(sol.toFlat()), x) < SOLVE_TOL, `solve ≈ v at regul ${regul}: ${relativeError(host(sol.toFlat()), x)}`);
    // inv ∘ (M + regul·I) = I
    const inv = M.inv({ regul });
    assert.ok(inv instanceof PMatEKFAC, 'the exact inverse is diagonal in the Kronecker eigenbasis');
    const invDense = denseFromEigen(inv);
    let worst = 0;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += invDense[i * d + k]! * damped[k * d + j]!;
        worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
      }
    }
    assert.ok(worst < SOLVE_TOL, `inv at regul ${regul}: max |inv·M − I| = ${worst}`);
    // logdet against the dense spectrum
    const spectrum = eighSym(damped, d).values;
    const logdet = spectrum.reduce((a, l) => a + Math.log(l), 0);
    assert.ok(Math.abs(M.logdet({ regul }) - logdet) / Math.abs(logdet) < SOLVE_TOL, `logdet at regul ${regul}`);
    [rhs, sol, inv].forEach((o) => o.dispose());
  }
  // pow(1/3) applied three times ≈ M (on a vector)
  const cube = M.pow(1 / 3);
  const once = cube.mv(v);
  const twice = cube.mv(once);
  const thrice = cube.mv(twice);
  const direct = M.mv(v);
  assert.ok(relativeError(host(thrice.toFlat()), host(direct.toFlat())) < SOLVE_TOL, 'pow(1/3)³');
  [cube, once, twice, thrice, direct, M, v].forEach((o) => o.dispose());
  disposeBatches(batches);
  model.dispose();
});

test("π-damping is opt-in and is not the exact damped inverse", async () => {
  const model = mlp();
  const batches = randomBatches(model, 8, 4);
  const M = await FIM({ model, loader: batches, representation: PMatKFAC });
  const v = PVector.random(M.layerCollection, 2);
  const regul = 0.1 * M.norm(2);
  const exact = M.solve(v, { regul });
  const pi = M.solve(v, { regul, damping: 'pi' });
  const piInv = M.inv({ regul, damping: 'pi' });
  const viaInv = piInv.mv(v);
  assert.ok(piInv instanceof PMatKFAC, 'π-damped inverse stays Kronecker-factored');
  assert.ok(relativeError(host(viaInv.toFlat()), host(pi.toFlat())) < SOLVE_TOL, 'π-damped solve = π-damped inverse');
  assert.ok(relativeError(host(pi.toFlat()), host(exact.toFlat())) > 1e-3, 'π damping differs from exact damping');
  assert.throws(() => M.solve(v, { regul, damping: 'magic' as never }), /'exact' or 'pi'/);
  [M, v, exact, pi, piInv, viaInv].forEach((o) => o.dispose());
  disposeBatches(batches);
  model.dispose();
});

test('EKFAC equals KFAC before updateDiag; after it, it is closer to the block-diagonal and its diagonal is the exact projection', async () => {
  const model = cnn();
  const batches = randomBatches(model, 8, 4);
  const kfac = await FIM({ model, loader: batches, representation: PMatKFAC });
  const ekfac = await FIM({ model, loader: batches, representation: PMatEKFAC });
  const bd = await FIM({ model, loader: batches, representation: PMatBlockDiag });
  assert.equal(ekfac.diagonalSource, 'kfac');
  const K = host(kfac.toTensor());
  assert.ok(relativeError(host(ekfac.toTensor()), K) < TOL, 'EKFAC = KFAC before the update');
  const n0 = tf.memory().numTensors;
  await ekfac.updateDiag(batches);
  assert.equal(tf.memory().numTensors, n0, 'updateDiag keeps the tensor count');
  assert.equal(ekfac.diagonalSource, 'updated');
  const B = host(bd.toTensor());
  const E = host(ekfac.toTensor());
  const dist = (a: Float64Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - B[i]!) ** 2, 0));
  assert.ok(dist(E) < dist(K), `‖EKFAC − BD‖ ${dist(E)} < ‖KFAC − BD‖ ${dist(K)}`);
  // D[a, b] = (Q_lᵀ B_l Q_l)[(a,b), (a,b)] with Q_l = U_A ⊗ U_G, B_l the exact block
  for (const blk of ekfac.eigenBlocks()) {
    const e = ekfac.layerCollection.get(blk.id);
    const n = blk.k * blk.c;
    const block = bd.block(blk.id);
    const projected = new Float64Array(n);
    for (let a = 0; a < blk.k; a++) {
      for (let b = 0; b < blk.c; b++) {
        const q = new Float64Array(n);
        for (let r = 0; r < blk.k; r++) for (let s = 0; s < blk.c; s++) q[r * blk.c + s] = blk.uA[r * blk.k + a]! * blk.uG[s * blk.c + b]!;
        let acc = 0;
        for (let i = 0; i < n; i++) {
          if (q[i] === 0) continue;
          let row = 0;
          for (let j = 0; j < n; j++) row += block[i * n + j]! * q[j]!;
          acc += q[i]! * row;
        }
        projected[a * blk.c + b] = acc;
      }
    }
    assert.ok(relativeError(blk.diagonal, projected) < TOL, `layer ${e.id}: diagonal vs projection ${relativeError(blk.diagonal, projected)}`);
  }
  [kfac, ekfac, bd].forEach((o) => o.dispose());
  disposeBatches(batches);
  model.dispose();
});

test('EKFAC methods: solve/inv/pinv/pow/logdet/scale are exact in the eigenbasis (1e-3)', async () => {
  const model = mlp();
  const batches = randomBatches(model, 8, 4);
  const E = await FIM({ model, loader: batches, representation: PMatEKFAC });
  await E.updateDiag(batches);
  const d = E.layerCollection.numel();
  const dense = host(E.toTensor());
  const v = PVector.random(E.layerCollection, 5);
  const x = host(v.toFlat());
  const regul = 1e-2 * E.norm(2);
  const damped = Float64Array.from(dense);
  for (let i = 0; i < d; i++) damped[i * d + i]! += regul;
  const exact = choleskySolve(cholesky(damped, d), d, Float64Array.from(x), 1);
  const sol = E.solve(v, { regul });
  assert.ok(relativeError(host(sol.toFlat()), exact) < SOLVE_TOL, 'solve');
  const inv = E.inv({ regul });
  const viaInv = inv.mv(v);
  assert.ok(relativeError(host(viaInv.toFlat()), exact) < SOLVE_TOL, 'inv');
  const logdet = eighSym(damped, d).values.reduce((a, l) => a + Math.log(l), 0);
  assert.ok(Math.abs(E.logdet({ regul }) - logdet) / Math.abs(logdet) < SOLVE_TOL, 'logdet');
  const half = E.pow(0.5);
  const twiceHalf = half.mv(half.mv(v));
  const direct = E.mv(v);
  assert.ok(relativeError(host(twiceHalf.toFlat()), host(direct.toFlat())) < SOLVE_TOL, 'pow(1/2)²');
  const scaled = E.scale(3);
  assert.ok(Math.abs(scaled.trace() - 3 * E.trace()) / E.trace() < TOL, 'scale');
  // M pinv M = M when pinv keeps the directions of M·v (threshold 1e-3·‖M‖₂, float32 products)
  const pinv = E.pinv({ atol: 1e-3 * E.norm(2) });
  const mpm = E.mv(pinv.mv(direct));
  assert.ok(relativeError(host(mpm.toFlat()), host(direct.toFlat())) < SOLVE_TOL, `M pinv M v = M v: ${relativeError(host(mpm.toFlat()), host(direct.toFlat()))}`);
  [E, v, sol, inv, viaInv, half, twiceHalf, direct, scaled, pinv, mpm].forEach((o) => o.dispose());
  disposeBatches(batches);
  model.dispose();
});

test('bad arguments: negative or NaN regul, unknown kfacType, a layer without Kronecker factors, updateDiag on a derived matrix', async () => {
  const { kroneckerOf } = await import('../../src/statistics/kronecker-factors.js');
  const { UnsupportedLayerError, InvalidArgumentError } = await import('../../src/index.js');
  const model = mlp();
  const batches = randomBatches(model, 4, 4);
  const K = await FIM({ model, loader: batches, representation: PMatKFAC });
  const E = await FIM({ model, loader: batches, representation: PMatEKFAC });
  const v = PVector.random(K.layerCollection, 1);
  for (const M of [K, E]) {
    assert.throws(() => M.solve(v, { regul: -1 }), InvalidArgumentError);
    assert.throws(() => M.inv({ regul: NaN }), InvalidArgumentError);
    assert.throws(() => M.pow(NaN), InvalidArgumentError);
    assert.throws(() => M.logdet({ regul: -0.5 }), InvalidArgumentError);
  }
  assert.throws(() => PMatKFAC.with({ kfacType: 'sum' as never }), /'expand' or 'reduce'/);
  const entry = K.layerCollection.layers[0]!;
  assert.throws(
    () => kroneckerOf({ ...entry, kind: { ...entry.kind, kronecker: undefined } }, 'PMatKFAC'),
    (e: Error) => e instanceof UnsupportedLayerError && /PMatEKFACBlockDiag/.test(e.message) && e.message.includes(entry.id),
  );
  const inv = K.inv({ regul: 0.1 }) as PMatEKFAC;
  await assert.rejects(() => inv.updateDiag(batches), /derived/);
  // a singular KFAC has no inverse without damping
  const one = batches[0]!.xs.slice([0], [1]);
  const singular = await FIM({ model, loader: [one], representation: PMatKFAC });
  assert.throws(() => singular.inv(), /singular/);
  [K, E, v, inv, singular, one].forEach((o) => o.dispose());
  disposeBatches(batches);
  model.dispose();
});
