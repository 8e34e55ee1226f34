/**
 * eigsh against float64 dense eigendecompositions of independent references: the brute-force
 * Fisher (per-example autodiff Jacobians) for PMatImplicit, toTensor() of the stored
 * representations, of the dense Hessian for PMatHessianImplicit (indefinite) and of FMatDense.
 * Tolerances: eigenvalues within 1e-5·‖M‖₂ (float32 products cannot resolve eigenvalues below
 * ε₃₂·‖M‖ relatively; for the top eigenvalue this is 1e-5 relative), residuals
 * ‖M v − λ v‖ ≤ 1e-4·‖M‖₂ measured with the float64 reference matrix.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  GramMatrix,
  Hessian,
  Jacobian,
  LayerCollection,
  PFMapImplicit,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatImplicit,
  PMatKFAC,
  asOperator,
  eigsh,
  gramOperator,
  initLinalg,
  type LinearOperator,
  type PVector,
  type FVector,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { bruteForceFisher } from '../support/reference.js';
import { collectionOfSize, eigenvalues, residual, spectralNorm, vectorValues, withSpectrum } from './support.js';

let model: tf.Sequential;
let lc: LayerCollection;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let d: number;

before(async () => {
  await useTestBackend();
  await initLinalg();
  model = mlp();
  lc = LayerCollection.fromModel(model);
  d = lc.numel();
  batches = randomBatches(model, 64, 16);
});
after(() => {
  disposeBatches(batches);
  model.dispose();
});

/** Checks eigsh(op) for k ∈ {1, 5, 20} and both ends against the float64 reference M. */
async function checkAgainst(op: LinearOperator, M: ArrayLike<number>, size: number, route: string, options: { route?: 'auto' | 'lanczos' } = {}): Promise<void> {
  const ref = eigenvalues(M, size);
  const scale = spectralNorm(ref);
  for (const which of ['largest', 'smallest'] as const) {
    for (const k of [1, 5, 20]) {
      const r = await eigsh(op, { k, which, ...options });
      try {
        assert.equal(r.route, route);
        assert.equal(r.converged, true, `${which} k=${k} converged`);
        assert.equal(r.values.length, k);
        for (let i = 0; i < k; i++) {
          const expected = which === 'largest' ? ref[size - 1 - i]! : ref[i]!;
          assert.ok(Math.abs(r.values[i]! - expected) <= 1e-5 * scale, `${which} k=${k} λ${i}: ${r.values[i]} vs ${expected} (‖M‖ = ${scale})`);
          const v = vectorValues(r.vectors[i]! as PVector | FVector);
          const res = residual(M, size, v, r.values[i]!);
          assert.ok(res <= 1e-4 * scale, `${which} k=${k} residual ${i}: ${res / scale}·‖M‖`);
          assert.ok(r.residuals[i]! <= 1e-4 * scale, `reported residual ${r.residuals[i]}`);
          let n2 = 0;
          for (const x of v) n2 += x * x;
          assert.ok(Math.abs(Math.sqrt(n2) - 1) < 1e-5, 'unit vector');
        }
      } finally {
        r.vectors.forEach((v) => v.dispose());
      }
    }
  }
}

test('PMatImplicit (Lanczos) matches the brute-force Fisher', async () => {
  const F = await FIM({ model, loader: batches, representation: PMatImplicit });
  const ref = bruteForceFisher(model, lc, batches.map((b) => b.xs), 'classif_logits');
  await checkAgainst(F, ref, d, 'lanczos');
  F.dispose();
});

for (const [name, representation] of [['PMatKFAC', PMatKFAC], ['PMatEKFAC', PMatEKFAC], ['PMatDense', PMatDense]] as const) {
  test(`${name}: structured route and Lanczos both match toTensor()`, async () => {
    const M = await FIM({ model, loader: batches, representation: representation as typeof PMatDense });
    const t = M.toTensor();
    const ref = new Float64Array(t.dataSync());
    t.dispose();
    await checkAgainst(M, ref, d, name === 'PMatDense' ? 'dense' : 'kronecker');
    await checkAgainst(M, ref, d, 'lanczos', { route: 'lanczos' });
    M.dispose();
  });
}

test('PMatDiag and PMatBlockDiag: exact routes match toTensor()', async () => {
  for (const [representation, route] of [[PMatDiag, 'diag'], [PMatBlockDiag, 'block-diag']] as const) {
    const M = await FIM({ model, loader: batches, representation: representation as unknown as typeof PMatDense });
    const t = M.toTensor();
    const ref = new Float64Array(t.dataSync());
    t.dispose();
    const ev = eigenvalues(ref, d);
    for (const which of ['largest', 'smallest'] as const) {
      const r = await eigsh(M, { k: 5, which });
      assert.equal(r.route, route);
      r.values.forEach((x, i) => assert.ok(Math.abs(x - (which === 'largest' ? ev[d - 1 - i]! : ev[i]!)) <= 1e-5 * spectralNorm(ev)));
      r.vectors.forEach((v, i) => assert.ok(residual(ref, d, vectorValues(v), r.values[i]!) <= 1e-4 * spectralNorm(ev)));
      r.vectors.forEach((v) => v.dispose());
    }
    M.dispose();
  }
});

test('PMatHessianImplicit (indefinite): both ends match the dense Hessian', async () => {
  const H = await Hessian({ model, loader: batches.slice(0, 2), loss: 'cross_entropy', representation: PMatImplicit });
  const Hd = await Hessian({ model, loader: batches.slice(0, 2), loss: 'cross_entropy', representation: PMatDense });
  const t = Hd.toTensor();
  const ref = new Float64Array(t.dataSync());
  t.dispose();
  const ev = eigenvalues(ref, d);
  assert.ok(ev[0]! < -1e-3 * spectralNorm(ev), `the Hessian is indefinite (λ_min = ${ev[0]})`);
  await checkAgainst(H, ref, d, 'lanczos');
  H.dispose();
  Hd.dispose();
});

test('FMatDense (dense route and Lanczos) and the matrix-free Gram operator match the kernel', async () => {
  const K = await GramMatrix({ model, loader: batches.slice(0, 2) });
  const size = K.numOutputs * K.numExamples;
  const t = K.toTensor();
  const ref = new Float64Array(t.dataSync());
  t.dispose();
  await checkAgainst(K, ref, size, 'dense');
  await checkAgainst(K, ref, size, 'lanczos', { route: 'lanczos' });
  const J = await Jacobian({ model, loader: batches.slice(0, 2), representation: PFMapImplicit });
  const op = gramOperator(J, { outputs: K.numOutputs, examples: K.numExamples });
  const r = await eigsh(op, { k: 5 });
  const ev = eigenvalues(ref, size);
  r.values.forEach((x, i) => assert.ok(Math.abs(x - ev[size - 1 - i]!) <= 1e-5 * spectralNorm(ev)));
  r.vectors.forEach((v) => v.dispose());
  J.dispose();
  K.dispose();
});

test('repeated and clustered eigenvalues are all found (multiplicity 3 at the top, a 1e-7 cluster)', async () => {
  const { model: m, lc: c } = collectionOfSize(19, 6); // d = 120
  const n = c.numel();
  const lambda = Array.from({ length: n }, (_, i) => 1 + i / n);
  lambda[n - 1] = lambda[n - 2] = lambda[n - 3] = 3; // triple top eigenvalue
  lambda[n - 4] = 2.5;
  lambda[n - 5] = 2.5 + 1e-7; // a cluster below float32's resolution of the gap
  lambda[0] = lambda[1] = -1; // a double bottom eigenvalue
  const M = withSpectrum(lambda);
  const P = new PMatDense(c, Float64Array.from(M));
  const op = asOperator((v) => P.mv(v), c);
  // A small basis (restarts), so that the answer does not come from a Krylov space that fills
  // the whole space. (The 54-fold zero eigenvalue of the FMatDense test is what needs the
  // multiplicity check: without it eigsh stops after 16 of the 20 zeros.)
  const top = await eigsh(op, { k: 6, basisSize: 14 });
  assert.deepEqual(Array.from(top.values, (x) => Math.round(x * 1e5) / 1e5), [3, 3, 3, 2.5, 2.5, Math.round(lambda[n - 6]! * 1e5) / 1e5]);
  top.vectors.forEach((v, i) => assert.ok(residual(M, n, vectorValues(v), top.values[i]!) <= 1e-4 * 3));
  // The three eigenvectors of λ = 3 span its eigenspace: they are orthonormal.
  const vs = top.vectors.slice(0, 3).map((v) => vectorValues(v));
  for (let a = 0; a < 3; a++) for (let b = 0; b < a; b++) assert.ok(Math.abs(vs[a]!.reduce((s, x, i) => s + x * vs[b]![i]!, 0)) < 1e-4);
  top.vectors.forEach((v) => v.dispose());
  const bottom = await eigsh(op, { k: 2, which: 'smallest', basisSize: 10 });
  bottom.values.forEach((x) => assert.ok(Math.abs(x + 1) <= 1e-5 * 3));
  bottom.vectors.forEach((v) => v.dispose());
  P.dispose();
  m.dispose();
});

test('k = d returns the whole spectrum; a thick restart keeps converging with a small basis', async () => {
  const { model: m, lc: c } = collectionOfSize(3, 4); // d = 16
  const n = c.numel();
  const lambda = Array.from({ length: n }, (_, i) => 0.9 ** i);
  const M = withSpectrum(lambda, 3);
  const P = new PMatDense(c, Float64Array.from(M));
  const all = await eigsh(asOperator((v) => P.mv(v), c), { k: n });
  assert.ok(all.values.every((x, i) => Math.abs(x - lambda[i]!) <= 1e-5));
  all.vectors.forEach((v) => v.dispose());
  const ref = eigenvalues(M, n);
  const restarted = await eigsh(asOperator((v) => P.mv(v), c), { k: 3, basisSize: 5 });
  assert.ok(restarted.converged && restarted.iterations > 5, `restarted (${restarted.iterations} products)`);
  restarted.values.forEach((x, i) => assert.ok(Math.abs(x - ref[n - 1 - i]!) <= 1e-5));
  restarted.vectors.forEach((v) => v.dispose());
  P.dispose();
  m.dispose();
});
