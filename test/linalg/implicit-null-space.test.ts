/**
 * Wide factors with an implicit null space. eighFromRowsThin (U_r, Λ_r from the m×m Gram matrix)
 * against the dense eigendecomposition of A = s·XᵀX, and f(A) v = U_r f(Λ_r) U_rᵀ v + f(0) P_⊥ v
 * against the explicit completion; EigenBlock in the implicit form (U_A held as U_r, the null
 * rows of D sharing one row δ) against the same block built on the explicit completion and
 * against a dense solve of (A ⊗ G + λI): applyHost to 1e-10 in float64, mv / vTMv / diagonal /
 * dense to float32 accuracy; none of them materialises the null-space basis, `uA` does (once).
 * Sizes with m < K and K not a multiple of the block sizes (32, 64).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { cholesky, choleskySolve, eighSym } from '../../src/linalg/index.js';
import { completeEigen, eighFromRowsThin } from '../../src/linalg/gram-eigen.js';
import { EigenBlock } from '../../src/object/pspace/kronecker/eigen-block.js';
import { FactorBasis } from '../../src/object/pspace/kronecker/factor-basis.js';
import { useTestBackend } from '../support/backend.js';
import { matmul, orthogonalityError, relativeDifference, transpose, uniform, useImplementation, withSpectrum } from './support.js';

before(async () => {
  await useTestBackend();
  await useImplementation('eigen-wasm');
});

function gramOfRows(x: Float64Array, m: number, k: number, scale: number): Float64Array {
  return matmul(transpose(x, m, k), k, m, x, k).map((v) => v * scale);
}

/** V ↦ f(A) V for A = Σ λ_j u_j u_jᵀ given explicitly (k×k basis), V k×c. */
function applyExplicit(values: Float64Array, vectors: Float64Array, k: number, v: Float64Array, c: number, f: (x: number) => number): Float64Array {
  const coords = matmul(transpose(vectors, k, k), k, k, v, c);
  for (let i = 0; i < k; i++) for (let j = 0; j < c; j++) coords[i * c + j]! *= f(values[i]!);
  return matmul(vectors, k, k, coords, c);
}

test('eighFromRowsThin: U_r orthonormal, A U_r = U_r Λ_r, and f(A) v through P_⊥ equals the completed and the dense decompositions', async () => {
  for (const { m, k, seed } of [{ m: 9, k: 37, seed: 1 }, { m: 40, k: 161, seed: 2 }, { m: 70, k: 290, seed: 3 }]) {
    const x = uniform(m * k, seed);
    const scale = 1 / m;
    const a = gramOfRows(x, m, k, scale);
    const thin = eighFromRowsThin(x, m, k, scale);
    const r = thin.rank;
    assert.equal(r, m, `m=${m} k=${k}: random rows have full rank`);
    // U_rᵀU_r = I and A U_r = U_r Λ_r.
    const utu = matmul(transpose(thin.vectors, k, r), r, k, thin.vectors, r);
    for (let i = 0; i < r; i++) utu[i * r + i]! -= 1;
    assert.ok(Math.sqrt(utu.reduce((s, v) => s + v * v, 0)) < 1e-12, `m=${m} k=${k}: U_rᵀU_r − I`);
    const au = matmul(a, k, k, thin.vectors, r);
    const ul = thin.vectors.map((v, idx) => v * thin.values[idx % r]!);
    assert.ok(relativeDifference(au, ul) < 1e-12, `m=${m} k=${k}: A U_r − U_r Λ_r`);
    // The completion is an orthonormal basis with the zero eigenvalues first.
    const full = completeEigen(thin);
    assert.ok(orthogonalityError(full.vectors, k) < 1e-12, `m=${m} k=${k}: completion VᵀV − I`);
    for (let j = 0; j < k - r; j++) assert.equal(full.values[j], 0);
    // f(A) V with f(λ) = 1/(λ + 0.01), V k×3: implicit, completed and dense eigendecomposition.
    const c = 3;
    const v = uniform(k * c, seed + 10);
    const f = (s: number) => 1 / (s + 0.01);
    const coords = matmul(transpose(thin.vectors, k, r), r, k, v, c);
    const inRange = matmul(thin.vectors, k, r, coords, c);
    const implicit = new Float64Array(k * c);
    for (let i = 0; i < k * c; i++) implicit[i] = f(0) * (v[i]! - inRange[i]!);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) coords[i * c + j]! *= f(thin.values[i]!);
    const back = matmul(thin.vectors, k, r, coords, c);
    for (let i = 0; i < k * c; i++) implicit[i]! += back[i]!;
    const completed = applyExplicit(full.values, full.vectors, k, v, c, f);
    const dense = eighSym(a, k);
    const direct = applyExplicit(dense.values.map((s) => Math.max(s, 0)), dense.vectors, k, v, c, f);
    assert.ok(relativeDifference(implicit, completed) < 1e-10, `m=${m} k=${k}: implicit vs completed ${relativeDifference(implicit, completed)}`);
    assert.ok(relativeDifference(implicit, direct) < 1e-10, `m=${m} k=${k}: implicit vs dense ${relativeDifference(implicit, direct)}`);
  }
});

test('EigenBlock with an implicit null space equals the block on the explicit completion and the dense (A ⊗ G + λI)⁻¹, without materialising the completion', async () => {
  const [m, k, c] = [11, 45, 4];
  const x = uniform(m * k, 21);
  const a = gramOfRows(x, m, k, 1 / m);
  const thin = eighFromRowsThin(x, m, k, 1 / m);
  const lA = new Float64Array(k);
  lA.set(thin.values, k - thin.rank);
  const g = withSpectrum([0.3, 1.1, 2.5, 0.05], 22);
  const eg = eighSym(g, c);
  const regul = 0.02;
  const before = tf.memory().numTensors;
  for (const [label, f] of [['KFAC diagonal (δ = 0)', (s: number) => s], ['(· + λ)⁻¹ (δ = 1/λ)', (s: number) => 1 / (s + regul)]] as const) {
    const d = new Float64Array(k * c);
    for (let i = 0; i < k; i++) for (let j = 0; j < c; j++) d[i * c + j] = f(lA[i]! * Math.max(eg.values[j]!, 0));
    const basis = FactorBasis.thin(thin);
    const implicit = new EigenBlock(k, c, basis, eg.vectors, d);
    const explicit = new EigenBlock(k, c, completeEigen(thin).vectors, eg.vectors, d);
    assert.ok(implicit.isImplicit && !explicit.isImplicit, `${label}: forms`);
    const v = uniform(k * c, 23);
    const vt = tf.tensor1d(Float32Array.from(v));
    const hostImplicit = implicit.applyHost(v, (s) => s);
    assert.ok(relativeDifference(hostImplicit, explicit.applyHost(v, (s) => s)) < 1e-10, `${label}: applyHost`);
    const pairs: Array<[string, tf.Tensor, tf.Tensor]> = [
      ['mv', implicit.mv(vt), explicit.mv(vt)],
      ['vTMv', implicit.vTMv(vt), explicit.vTMv(vt)],
      ['diagonal', implicit.diagonal(), explicit.diagonal()],
      ['dense', implicit.dense(), explicit.dense()],
    ];
    for (const [name, p, q] of pairs) {
      const e = relativeDifference(Float64Array.from(p.dataSync()), Float64Array.from(q.dataSync()));
      assert.ok(e < 1e-5, `${label}: ${name} ${e}`);
    }
    tf.dispose([vt, ...pairs.flatMap(([, p, q]) => [p, q])]);
    if (label.startsWith('(')) {
      // Independent: (A ⊗ G + λI)⁻¹ v by a dense Cholesky solve of the kc × kc matrix.
      const n = k * c;
      const dense = new Float64Array(n * n);
      for (let i = 0; i < k; i++) for (let p = 0; p < c; p++) for (let j = 0; j < k; j++) for (let q = 0; q < c; q++) dense[(i * c + p) * n + j * c + q] = a[i * k + j]! * g[p * c + q]!;
      for (let i = 0; i < n; i++) dense[i * n + i]! += regul;
      const solved = choleskySolve(cholesky(dense, n), n, v, 1);
      assert.ok(relativeDifference(hostImplicit, solved) < 1e-10, `${label}: vs dense solve ${relativeDifference(hostImplicit, solved)}`);
    }
    assert.ok(basis.isImplicit, `${label}: no operation materialised the completion`);
    assert.equal(implicit.uA.length, k * k, `${label}: uA materialises U_A`);
    assert.ok(!basis.isImplicit && implicit.uA === implicit.uA, `${label}: once`);
    // A diagonal whose null rows differ cannot be implicit: the block falls back to the explicit basis.
    const uneven = Float64Array.from(d);
    uneven[0]! += 1;
    const fallback = implicit.withDiagonal(uneven);
    assert.ok(!fallback.isImplicit, `${label}: uneven null rows → explicit`);
    [implicit, explicit, fallback].forEach((b) => b.dispose());
  }
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
});
