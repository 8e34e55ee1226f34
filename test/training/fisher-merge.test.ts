/**
 * fisherMerge = (Σ F_t + λI)⁻¹ Σ F_t θ_t: the Diag route equals the elementwise closed form and
 * the Dense / BlockDiag routes equal an independent Gauss–Jordan solve of the float64 sum
 * (rel. 1e-6); the CG route (KFAC members, or Dense forced to CG) agrees with the dense solve
 * (rel. 1e-4). No leaks; typed errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM, FisherSum, InvalidArgumentError, LayerCollection, LayerCollectionMismatchError, NotPositiveDefiniteError, PMatBlockDiag, PMatDense,
  PMatDiag, PMatEKFAC, PMatKFAC, PVector, fisherMerge, type PMat,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { host, relativeError } from '../support/reference.js';

const CLOSED_TOL = 1e-6;
const CG_TOL = 1e-4;

let model: tf.LayersModel;
let lc: LayerCollection;
const batchSets: Array<Array<{ xs: tf.Tensor; ys: tf.Tensor }>> = [];
const thetas: PVector[] = [];

before(async () => {
  await useTestBackend();
  model = mlp();
  lc = LayerCollection.fromModel(model);
  // Three "members": different data (so different Fishers) and different weights.
  for (let t = 0; t < 3; t++) {
    batchSets.push(randomBatches(model, 8, 4, 40 + 10 * t));
    thetas.push(PVector.random(lc, 60 + t));
  }
});

after(() => {
  thetas.forEach((t) => t.dispose());
  batchSets.forEach(disposeBatches);
  model.dispose();
});

async function fishers<M extends PMat>(rep: { compute(spec: never): Promise<M> }): Promise<M[]> {
  return Promise.all(batchSets.map((loader) => FIM({ model, loader, representation: rep as never }) as Promise<M>));
}

/** x solving (Σ_t M_t + λI) x = Σ_t M_t θ_t by Gauss–Jordan with partial pivoting, float64, from the dense matrices. */
function denseReference(ms: Array<{ toTensor(): tf.Tensor2D }>, regul: number): Float64Array {
  const d = lc.numel();
  const a = new Float64Array(d * d);
  const b = new Float64Array(d);
  ms.forEach((m, t) => {
    const v = host(m.toTensor());
    const x = host(thetas[t]!.toFlat());
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
      a[i * d + j] += v[i * d + j]!;
      b[i] += v[i * d + j]! * x[j]!;
    }
  });
  for (let i = 0; i < d; i++) a[i * d + i] += regul;
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r * d + c]!) > Math.abs(a[p * d + c]!)) p = r;
    for (let j = 0; j < d; j++) [a[c * d + j], a[p * d + j]] = [a[p * d + j]!, a[c * d + j]!];
    [b[c], b[p]] = [b[p]!, b[c]!];
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = a[r * d + c]! / a[c * d + c]!;
      for (let j = c; j < d; j++) a[r * d + j] -= f * a[c * d + j]!;
      b[r] -= f * b[c]!;
    }
  }
  return b.map((x, i) => x / a[i * d + i]!);
}

async function merged(members: Parameters<typeof fisherMerge>[0], options?: Parameters<typeof fisherMerge>[1]): Promise<Float64Array> {
  const before = tf.memory().numTensors;
  const x = await fisherMerge(members, options);
  assert.equal(tf.memory().numTensors, before + 1, 'fisherMerge leaves only its result');
  const out = host(x.toFlat());
  x.dispose();
  return out;
}

test('Diag: elementwise Σ F_t θ_t / (Σ F_t + λ) (rel. 1e-6)', async () => {
  const fs = await fishers(PMatDiag);
  for (const regul of [0, 0.05]) {
    const got = await merged(fs.map((fisher, t) => ({ weights: thetas[t]!, fisher })), { regul });
    const xs = thetas.map((t) => host(t.toFlat()));
    const want = new Float64Array(lc.numel()).map((_, k) => {
      let num = 0;
      let den = regul;
      fs.forEach((f, t) => {
        num += f.values()[k]! * xs[t]![k]!;
        den += f.values()[k]!;
      });
      return num / den;
    });
    assert.ok(relativeError(got, want) < CLOSED_TOL, `regul ${regul}: ${relativeError(got, want)}`);
  }
  fs.forEach((f) => f.dispose());
});

test('Dense and BlockDiag: the float64 solve of the summed matrix (rel. 1e-6 against Gauss–Jordan)', async () => {
  for (const rep of [PMatDense, PMatBlockDiag] as const) {
    const fs = await fishers<PMat>(rep);
    const regul = 1e-3;
    const got = await merged(fs.map((fisher, t) => ({ weights: thetas[t]!, fisher })), { regul });
    const want = denseReference(fs, regul);
    assert.ok(relativeError(got, want) < CLOSED_TOL, `${rep.representationName}: ${relativeError(got, want)}`);
    fs.forEach((f) => f.dispose());
  }
});

test('CG route: KFAC, EKFAC and a FisherSum agree with the dense solve of their own matrices; Dense forced to CG agrees with its closed form (rel. 1e-4)', async () => {
  const regul = 1e-2;
  for (const rep of [PMatKFAC, PMatEKFAC] as const) {
    const fs = await fishers<PMat>(rep);
    const got = await merged(fs.map((fisher, t) => ({ weights: thetas[t]!, fisher })), { regul, rtol: 1e-7 });
    const want = denseReference(fs, regul);
    assert.ok(relativeError(got, want) < CG_TOL, `${rep.representationName}: ${relativeError(got, want)}`);
    fs.forEach((f) => f.dispose());
  }
  const dense = await fishers(PMatDense);
  const viaCg = await merged(dense.map((fisher, t) => ({ weights: thetas[t]!, fisher })), { regul, solver: 'cg', rtol: 1e-7 });
  const closed = await merged(dense.map((fisher, t) => ({ weights: thetas[t]!, fisher })), { regul });
  assert.ok(relativeError(viaCg, closed) < CG_TOL, `Dense CG vs closed form: ${relativeError(viaCg, closed)}`);
  // A FisherSum member (online EWC of two tasks) is the sum of its terms.
  const sum = new FisherSum([dense[0]!, dense[1]!]);
  const withSum = await merged([{ weights: thetas[0]!, fisher: sum }, { weights: thetas[2]!, fisher: dense[2]! }], { regul, rtol: 1e-7 });
  const ref = (() => {
    const d = lc.numel();
    const a = host(dense[0]!.toTensor()).map((x, i) => x + host(dense[1]!.toTensor())[i]!);
    const b = host(dense[2]!.toTensor());
    const x0 = host(thetas[0]!.toFlat());
    const x2 = host(thetas[2]!.toFlat());
    const lhs = PMatDense.fromTensor(lc, tf.tensor2d(Float32Array.from(a, (x, i) => x + b[i]!), [d, d]));
    const rhs = new Float64Array(d).map((_, i) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += a[i * d + j]! * x0[j]! + b[i * d + j]! * x2[j]!;
      return s;
    });
    const r = PVector.fromFlat(lc, tf.tensor1d(Float32Array.from(rhs)));
    const x = lhs.solve(r, { regul });
    const out = host(x.toFlat());
    [lhs, r, x].forEach((o) => o.dispose());
    return out;
  })();
  assert.ok(relativeError(withSum, ref) < CG_TOL, `FisherSum member: ${relativeError(withSum, ref)}`);
  dense.forEach((f) => f.dispose());
  sum.dispose();
});

test('weights given as a model read its current weights; copyToModel writes the merge', async () => {
  const fs = await fishers(PMatDiag);
  // A model with the collection's layers: the test model itself, holding θ_1.
  const other = model;
  thetas[1]!.copyToModel(other);
  const fromVectors = await merged(fs.map((fisher, t) => ({ weights: thetas[t]!, fisher })));
  const x = await fisherMerge(fs.map((fisher, t) => ({ weights: t === 1 ? other : thetas[t]!, fisher })));
  assert.ok(relativeError(host(x.toFlat()), fromVectors) < 1e-7);
  x.copyToModel(other);
  const back = PVector.fromModel(other);
  assert.ok(relativeError(host(back.toFlat()), fromVectors) < 1e-7);
  [x, back].forEach((o) => o.dispose());
  fs.forEach((f) => f.dispose());
});

test('bad input: empty list, negative regul, members on other collections, singular sum — typed errors, no leak', async () => {
  const fs = await fishers(PMatDiag);
  const foreign = PVector.fromModel(mlp());
  const before = tf.memory().numTensors;
  await assert.rejects(fisherMerge([]), InvalidArgumentError);
  await assert.rejects(fisherMerge([{ weights: thetas[0]!, fisher: fs[0]! }], { regul: -1 }), InvalidArgumentError);
  await assert.rejects(fisherMerge([{ weights: thetas[0]!, fisher: fs[0]! }], { solver: 'lu' } as never), InvalidArgumentError);
  await assert.rejects(fisherMerge([{ weights: foreign, fisher: fs[0]! }]), LayerCollectionMismatchError);
  await assert.rejects(fisherMerge([{ weights: thetas[0]!, fisher: null as never }]), InvalidArgumentError);
  const zero = fs[0]!.scale(0);
  await assert.rejects(fisherMerge([{ weights: thetas[0]!, fisher: zero }]), NotPositiveDefiniteError);
  zero.dispose();
  assert.equal(tf.memory().numTensors, before);
  foreign.dispose();
  fs.forEach((f) => f.dispose());
});
