/**
 * A wide Kronecker factor (a dense layer with 300 inputs, K = 301 with the bias, seen on 48
 * examples: A has rank ≤ 48 ≤ K/4) is eigendecomposed through the 48×48 Gram matrix of its rows.
 * Every KFAC/EKFAC method must equal the dense computation from toTensor() (1e-4; 1e-3 through
 * solves): mv, solve, inv, pow, logdet (which holds (K − m)·C·log λ from the null space), the
 * EKFAC built on the Gram eigenbasis before and after updateDiag (whose trace is tr F, the
 * Diag FIM's trace, exactly when the completed basis is orthonormal), and the same after
 * save/load (the rows are saved) and mergePartial.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, PMatDiag, PMatEKFAC, PMatKFAC, PVector, deserialize, mergePartial, serialize } from '../../src/index.js';
import { cholesky, choleskySolve, eighSym, initLinalg } from '../../src/linalg/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, randomBatches } from '../support/models.js';
import { host, relativeError } from '../support/reference.js';

const TOL = 1e-4;
const SOLVE_TOL = 1e-3;
const REGUL = 1e-3;

before(async () => {
  await useTestBackend();
  await initLinalg();
});

function wideModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 5, inputShape: [300], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }));
  m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }));
  return m;
}

/** The values of a tensor that stays alive (host() disposes its argument). */
function values(t: tf.Tensor): Float64Array {
  return Float64Array.from(t.dataSync());
}

/** (D + λI) as float64 with its Cholesky factor. */
function damped(dense: Float64Array, d: number, regul: number) {
  const a = Float64Array.from(dense);
  for (let i = 0; i < d; i++) a[i * d + i]! += regul;
  return { a, l: cholesky(a, d) };
}

test('wide factor: the Gram route is taken, and KFAC solve/inv/pow/logdet equal the dense computation', async () => {
  const model = wideModel();
  const loader = randomBatches(model, 48, 16, 3);
  const kfac = (await FIM({ model, loader, representation: PMatKFAC })) as PMatKFAC;
  const first = kfac.layerFactors(kfac.layerCollection.ids()[0]!);
  assert.equal(first.k, 301);
  assert.equal(first.aRows?.length, 48 * 301, 'the 301-wide factor keeps its 48 rows');
  assert.equal(kfac.layerFactors(kfac.layerCollection.ids()[1]!).aRows, undefined, 'a 6-wide factor is decomposed directly');
  const d = kfac.layerCollection.numel();
  const dense = host(kfac.toTensor());
  const { a, l } = damped(dense, d, REGUL);
  const v = PVector.random(kfac.layerCollection, 11);
  const vh = values(v.data);

  const mv = kfac.mv(v);
  const expectedMv = new Float64Array(d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) expectedMv[i]! += dense[i * d + j]! * vh[j]!;
  assert.ok(relativeError(values(mv.data), expectedMv) < TOL, 'mv');

  const solved = kfac.solve(v, { regul: REGUL });
  const expected = choleskySolve(l as Float64Array, d, vh, 1);
  const eSolve = relativeError(values(solved.data), expected);
  assert.ok(eSolve < SOLVE_TOL, `solve: ${eSolve}`);

  const inv = kfac.inv({ regul: REGUL });
  const invDense = host(inv.toTensor());
  const eye = new Float64Array(d * d);
  for (let i = 0; i < d; i++) eye[i * d + i] = 1;
  const expectedInv = choleskySolve(l as Float64Array, d, eye, d);
  const eInv = relativeError(invDense, expectedInv);
  assert.ok(eInv < SOLVE_TOL, `inv: ${eInv}`);

  // pow(1/2, λ)² = D + λI.
  const root = host(kfac.pow(0.5, { regul: REGUL }).toTensor());
  const square = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) {
    const r = root[i * d + k]!;
    if (r !== 0) for (let j = 0; j < d; j++) square[i * d + j]! += r * root[k * d + j]!;
  }
  const ePow = relativeError(square, a);
  assert.ok(ePow < SOLVE_TOL, `pow(1/2)²: ${ePow}`);

  // log det(D + λI) from the dense matrix's eigenvalues (most of them λ: the null space of the wide factor).
  const spectrum = eighSym(a, d).values;
  const logdet = spectrum.reduce((s, x) => s + Math.log(x), 0);
  const eLogdet = Math.abs(kfac.logdet({ regul: REGUL }) - logdet) / Math.abs(logdet);
  assert.ok(eLogdet < TOL, `logdet ${kfac.logdet({ regul: REGUL })} vs ${logdet}`);

  // A held as its rows is saved as its rows (48×301 values): the loaded matrix solves the same.
  const loaded = deserialize(serialize(kfac), model) as PMatKFAC;
  assert.deepEqual(loaded.layerFactors(loaded.layerCollection.ids()[0]!).aRows, first.aRows);
  const eLoaded = relativeError(host(loaded.solve(v, { regul: REGUL }).data), values(solved.data));
  assert.ok(eLoaded < SOLVE_TOL, `solve after load: ${eLoaded}`);
  [mv, solved, inv, loaded, kfac, v].forEach((o) => o.dispose());
  disposeBatches(loader);
  model.dispose();
});

test('wide factor: EKFAC on the Gram eigenbasis equals KFAC, and after updateDiag its trace is tr F, its solve is exact and it survives save/load', async () => {
  const model = wideModel();
  const loader = randomBatches(model, 48, 16, 5);
  const before = tf.memory().numTensors;
  const kfac = (await FIM({ model, loader, representation: PMatKFAC })) as PMatKFAC;
  const ekfac = (await FIM({ model, loader, representation: PMatEKFAC })) as PMatEKFAC;
  const eKfac = relativeError(host(ekfac.toTensor()), host(kfac.toTensor()));
  assert.ok(eKfac < TOL, `EKFAC (KFAC diagonal) vs KFAC: ${eKfac}`);
  await ekfac.updateDiag(loader);
  const diag = (await FIM({ model, loader, representation: PMatDiag })) as PMatDiag;
  const eTrace = Math.abs(ekfac.trace() - diag.trace()) / diag.trace();
  assert.ok(eTrace < TOL, `tr EKFAC ${ekfac.trace()} vs tr F ${diag.trace()}`);
  const updated = host(ekfac.toTensor());
  const d = ekfac.layerCollection.numel();
  // Its dense solve equals (M + λI)⁻¹ v.
  const v = PVector.random(ekfac.layerCollection, 13);
  const { l } = damped(updated, d, REGUL);
  const eSolve = relativeError(host(ekfac.solve(v, { regul: REGUL }).data), choleskySolve(l as Float64Array, d, values(v.data), 1));
  assert.ok(eSolve < SOLVE_TOL, `EKFAC solve after updateDiag: ${eSolve}`);
  // save/load and mergePartial of two halves keep the matrix.
  const loaded = deserialize(serialize(ekfac), model) as PMatEKFAC;
  assert.ok(relativeError(host(loaded.toTensor()), updated) < TOL, 'EKFAC after save/load');
  [kfac, ekfac, diag, v, loaded].forEach((o) => o.dispose());
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  disposeBatches(loader);
  model.dispose();
});

test('wide factor: mergePartial of two KFAC halves equals KFAC on all the data', async () => {
  const model = wideModel();
  const loader = randomBatches(model, 48, 16, 9);
  const whole = (await FIM({ model, loader, representation: PMatKFAC })) as PMatKFAC;
  const first = (await FIM({ model, loader: loader.slice(0, 1), representation: PMatKFAC })) as PMatKFAC;
  const rest = (await FIM({ model, loader: loader.slice(1), representation: PMatKFAC })) as PMatKFAC;
  const merged = mergePartial([{ matrix: first, examples: 16 }, { matrix: rest, examples: 32 }]) as PMatKFAC;
  const v = PVector.random(whole.layerCollection, 17);
  assert.ok(relativeError(host(merged.toTensor()), host(whole.toTensor())) < TOL, 'merged toTensor');
  const e = relativeError(host(merged.solve(v, { regul: REGUL }).data), host(whole.solve(v, { regul: REGUL }).data));
  assert.ok(e < SOLVE_TOL, `merged solve vs whole (Gram route): ${e}`);
  [whole, first, rest, merged, v].forEach((o) => o.dispose());
  disposeBatches(loader);
  model.dispose();
});
