/**
 * PMat ⇄ PFMap algebra against the dense algebra on each matrix's own entries (float64 on the
 * host): M.mmap(J) = J Mᵀ, M.mapTMmap(J) = rows J_r M J_rᵀ ('diag' [O, n], 'sum' [n]) (rel. 1e-4)
 * and M.solve(J, { regul }) = rows (M + regul·I)⁻¹ J_rᵀ (rel. 1e-3), for PMatDense, PMatDiag,
 * PMatBlockDiag, PMatLowRank (primal and Woodbury) and PMatImplicit (mmap and mapTMmap), and
 * the implicit Hessian's mmap. Each call returns one tensor and leaks nothing; bad arguments
 * get typed errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  Hessian,
  InvalidArgumentError,
  Jacobian,
  LayerCollection,
  LayerCollectionMismatchError,
  PFMapDense,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatImplicit,
  PMatLowRank,
  type PMat,
  type Representation,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../support/models.js';
import { relativeError, host } from '../support/reference.js';

let model: tf.LayersModel;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let J: PFMapDense;
let jHost: Float64Array;
let rows: number;
let d: number;

before(async () => {
  await useTestBackend();
  model = cnn();
  batches = randomBatches(model, 5, 3);
  const probe = randomBatches(model, 3, 3, 99);
  J = await Jacobian({ model, loader: probe });
  disposeBatches(probe);
  jHost = Float64Array.from(J.data.dataSync());
  rows = J.numOutputs * J.numExamples;
  d = J.layerCollection.numel();
});

after(() => {
  J.dispose();
  model.dispose();
  disposeBatches(batches);
});

/** J Mᵀ for a dense row-major d×d M. */
function jTimesMt(m: Float64Array): Float64Array {
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < d; k++) {
      let s = 0;
      for (let l = 0; l < d; l++) s += jHost[r * d + l]! * m[k * d + l]!;
      out[r * d + k] = s;
    }
  }
  return out;
}

function quadratic(m: Float64Array): Float64Array {
  const jm = jTimesMt(m);
  return Float64Array.from({ length: rows }, (_, r) => jm.subarray(r * d, (r + 1) * d).reduce((s, v, k) => s + v * jHost[r * d + k]!, 0));
}

async function counted<T>(f: () => T | Promise<T>, returned = 1): Promise<T> {
  const n0 = tf.memory().numTensors;
  const r = await f();
  assert.equal(tf.memory().numTensors - n0, returned, 'tensor count changed');
  return r;
}

type WithAlgebra = PMat & {
  mmap(p: PFMapDense): PFMapDense;
  mapTMmap(p: PFMapDense, o?: { reduction?: 'sum' | 'diag' }): tf.Tensor;
  solve(p: PFMapDense, o?: { regul?: number }): PFMapDense;
};

async function checkAlgebra(t: { diagnostic(s: string): void }, name: string, M: WithAlgebra, regul: number): Promise<void> {
  const m = host(M.toTensor());
  const jm = jTimesMt(m);
  const mm = await counted(() => M.mmap(J));
  const errMmap = relativeError(host(mm.toTensor()), jm);
  mm.dispose();
  const quad = quadratic(m);
  const diag = await counted(() => M.mapTMmap(J, { reduction: 'diag' }));
  assert.deepEqual(diag.shape, [J.numOutputs, J.numExamples]);
  const errDiag = relativeError(host(diag), quad);
  const sum = await counted(() => M.mapTMmap(J));
  assert.deepEqual(sum.shape, [J.numExamples]);
  const n = J.numExamples;
  const errSum = relativeError(host(sum), Float64Array.from({ length: n }, (_, i) => Array.from({ length: J.numOutputs }, (_, o) => quad[o * n + i]!).reduce((a, b) => a + b, 0)));
  // (M + λI) X_rᵀ = J_rᵀ, checked through the residual.
  const x = await counted(() => M.solve(J, { regul }));
  const xh = host(x.toTensor());
  x.dispose();
  const back = jTimesMt(m).fill(0);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < d; k++) {
      let s = regul * xh[r * d + k]!;
      for (let l = 0; l < d; l++) s += m[k * d + l]! * xh[r * d + l]!;
      back[r * d + k] = s;
    }
  }
  const errSolve = relativeError(back, jHost);
  t.diagnostic(`${name}: mmap ${errMmap.toExponential(2)}, mapTMmap diag ${errDiag.toExponential(2)}, sum ${errSum.toExponential(2)}, solve ${errSolve.toExponential(2)}`);
  assert.ok(errMmap < 1e-4 && errDiag < 1e-4 && errSum < 1e-4, `${name}: mmap ${errMmap}, diag ${errDiag}, sum ${errSum}`);
  assert.ok(errSolve < 1e-3, `${name}: solve ${errSolve}`);
}

test('mmap, mapTMmap and solve(pfmap) agree with the dense algebra for Dense, Diag, BlockDiag and LowRank', async (t) => {
  const reps: Array<Representation<PMat>> = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank];
  for (const rep of reps) {
    const M = (await FIM({ model, loader: batches, representation: rep })) as unknown as WithAlgebra;
    await checkAlgebra(t, rep.representationName, M, 0.1);
    M.dispose();
  }
  // LowRank with more rows than parameters takes the primal path of its solves.
  const last = LayerCollection.fromLayers(model, [model.layers[3]!.name]);
  const Jlast = await Jacobian({ model, loader: batches, layerCollection: last });
  const many = randomBatches(model, 12, 12, 5);
  const lr = await FIM({ model, loader: many, representation: PMatLowRank, layerCollection: last });
  disposeBatches(many);
  assert.ok(lr.rows > last.numel(), 'primal case');
  const x = lr.solve(Jlast, { regul: 0.1 });
  const jl = host(Jlast.toTensor());
  const back = host(tf.tidy(() => tf.add(tf.matMul(x.rows(), lr.toTensor()), tf.mul(x.rows(), 0.1))));
  const err = relativeError(back, jl);
  t.diagnostic(`LowRank primal solve: ${err.toExponential(2)}`);
  assert.ok(err < 1e-3, `LowRank primal solve ${err}`);
  [Jlast, lr, x].forEach((o) => o.dispose());
});

test('PMatImplicit mmap and mapTMmap (one pass each) equal PMatDense (rel. 1e-4)', async (t) => {
  const dense = await FIM({ model, loader: batches, representation: PMatDense });
  const implicit = await FIM({ model, loader: batches, representation: PMatImplicit });
  const a = await counted(() => implicit.mmap(J));
  const b = dense.mmap(J);
  const diagI = await counted(() => implicit.mapTMmap(J, { reduction: 'diag' }));
  const sumI = await counted(() => implicit.mapTMmap(J));
  const errs = [
    relativeError(host(a.toTensor()), host(b.toTensor())),
    relativeError(host(diagI), host(dense.mapTMmap(J, { reduction: 'diag' }))),
    relativeError(host(sumI), host(dense.mapTMmap(J))),
  ];
  t.diagnostic(`mmap ${errs[0]!.toExponential(2)}, diag ${errs[1]!.toExponential(2)}, sum ${errs[2]!.toExponential(2)}`);
  assert.ok(errs.every((e) => e < 1e-4), `errors ${errs}`);
  [dense, a, b].forEach((o) => o.dispose());
});

test('the implicit Hessian mmap equals the dense Hessian mmap (rel. 1e-4)', async (t) => {
  const small = mlp();
  const data = randomBatches(small, 4, 4);
  const probe = randomBatches(small, 2, 2, 50);
  const Js = await Jacobian({ model: small, loader: probe });
  disposeBatches(probe);
  const dense = await Hessian({ model: small, loader: data, loss: 'cross_entropy', representation: PMatDense });
  const implicit = await Hessian({ model: small, loader: data, loss: 'cross_entropy', representation: PMatImplicit });
  const a = await counted(() => implicit.mmap(Js));
  const err = relativeError(host(a.toTensor()), host(dense.mmap(Js).toTensor()));
  t.diagnostic(`relative error ${err.toExponential(2)}`);
  assert.ok(err < 1e-4, `relative error ${err}`);
  [Js, dense, a].forEach((o) => o.dispose());
  small.dispose();
  disposeBatches(data);
});

test('bad arguments: foreign PFMaps, non-PFMaps, negative regul, unknown reduction, singular Woodbury', async () => {
  const dense = await FIM({ model, loader: batches, representation: PMatDense });
  const diag = await FIM({ model, loader: batches, representation: PMatDiag });
  const lowRank = await FIM({ model, loader: batches, representation: PMatLowRank });
  const other = mlp();
  const probe = randomBatches(other, 2, 2);
  const foreign = await Jacobian({ model: other, loader: probe });
  disposeBatches(probe);
  const n0 = tf.memory().numTensors;
  assert.throws(() => dense.mmap(foreign), (e: Error) => e instanceof LayerCollectionMismatchError && /PMatDense\.mmap/.test(e.message));
  assert.throws(() => diag.solve(foreign), LayerCollectionMismatchError);
  assert.throws(() => dense.mmap({} as never), (e: Error) => e instanceof InvalidArgumentError && /PFMapDense/.test(e.message));
  assert.throws(() => dense.solve(J, { regul: -1 }), (e: Error) => e instanceof InvalidArgumentError && /'regul'.*-1/.test(e.message));
  assert.throws(() => diag.mapTMmap(J, { reduction: 'full' as never }), (e: Error) => e instanceof InvalidArgumentError && /'reduction'.*"full"/.test(e.message));
  assert.throws(() => lowRank.solve(J, { regul: 0 }), (e: Error) => e instanceof InvalidArgumentError && /regul > 0/.test(e.message));
  assert.equal(tf.memory().numTensors, n0, 'errors leave nothing behind');
  [dense, diag, lowRank, foreign].forEach((o) => o.dispose());
  other.dispose();
});
