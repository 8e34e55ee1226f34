/**
 * eighFromRows (the Gram route for A = s·XᵀX from m < K rows) against the direct eigensolver
 * on the dense A: eigenvalues to 1e-8 relative to the largest, the projector onto each
 * eigenspace of the non-zero spectrum (U_r U_rᵀ, insensitive to the basis chosen), A V = V Λ
 * and VᵀV = I, on both implementations; orthonormalComplement is orthonormal and orthogonal to
 * its input, including degenerate inputs (coordinate vectors, r = 0, r = K).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eighSym } from '../../src/linalg/index.js';
import { eighFromRows, orthonormalComplement } from '../../src/linalg/gram-eigen.js';
import { IMPLEMENTATIONS, eigResidual, matmul, orthogonalityError, transpose, uniform, useImplementation } from './support.js';

function gramOfRows(x: Float64Array, m: number, k: number, scale: number): Float64Array {
  const a = matmul(transpose(x, m, k), k, m, x, k);
  return a.map((v) => v * scale);
}

/** Largest |P_a − P_b| entry of the projectors onto the last r columns of two k×k bases. */
function projectorDifference(va: Float64Array, vb: Float64Array, k: number, r: number): number {
  const cols = (v: Float64Array) => {
    const u = new Float64Array(k * r);
    for (let i = 0; i < k; i++) for (let j = 0; j < r; j++) u[i * r + j] = v[i * k + k - r + j]!;
    return u;
  };
  const ua = cols(va);
  const ub = cols(vb);
  const pa = matmul(ua, k, r, transpose(ua, k, r), k);
  const pb = matmul(ub, k, r, transpose(ub, k, r), k);
  let worst = 0;
  for (let i = 0; i < pa.length; i++) worst = Math.max(worst, Math.abs(pa[i]! - pb[i]!));
  return worst;
}

for (const impl of IMPLEMENTATIONS) {
  test(`${impl}: eighFromRows equals the direct eigendecomposition of s·XᵀX (m < K, m = K, rank-deficient rows)`, async () => {
    await useImplementation(impl);
    const cases = [
      { m: 7, k: 40, scale: 1 / 7, seed: 1 },
      { m: 30, k: 97, scale: 0.5, seed: 2 },
      { m: 12, k: 12, scale: 1, seed: 3 },
      { m: 1, k: 9, scale: 2, seed: 4 },
      // More rows than one QR panel (64): the blocked update of the later columns.
      { m: 150, k: 331, scale: 1 / 150, seed: 6 },
    ];
    for (const { m, k, scale, seed } of cases) {
      const x = uniform(m * k, seed);
      const a = gramOfRows(x, m, k, scale);
      const direct = eighSym(a, k);
      const gram = eighFromRows(x, m, k, scale);
      const top = direct.values[k - 1]!;
      for (let j = 0; j < k; j++) {
        assert.ok(Math.abs(gram.values[j]! - direct.values[j]!) <= 1e-8 * top, `m=${m} k=${k}: λ${j} ${gram.values[j]} vs ${direct.values[j]}`);
      }
      assert.ok(eigResidual(a, k, gram.values, gram.vectors) < 1e-10, `m=${m} k=${k}: AV − VΛ`);
      assert.ok(orthogonalityError(gram.vectors, k) < 1e-10, `m=${m} k=${k}: VᵀV − I`);
      // Distinct non-zero eigenvalues (random rows): the eigenvector projectors agree one by one and as a whole.
      const r = Math.min(m, k);
      assert.ok(projectorDifference(gram.vectors, direct.vectors, k, r) < 1e-8, `m=${m} k=${k}: U_r U_rᵀ`);
      for (let j = 1; j <= r; j++) {
        let dot = 0;
        for (let i = 0; i < k; i++) dot += gram.vectors[i * k + k - j]! * direct.vectors[i * k + k - j]!;
        assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-8, `m=${m} k=${k}: eigenvector ${k - j} |⟨u, u'⟩| = ${Math.abs(dot)}`);
      }
    }
    // Rank-deficient rows: row 3 = row 0 + row 1, a zero column (a dead feature), rank 4 of 5 rows.
    const m = 5;
    const k = 23;
    const x = uniform(m * k, 9);
    for (let i = 0; i < k; i++) x[3 * k + i] = x[i]! + x[k + i]!;
    for (let i = 0; i < m; i++) x[i * k + 4] = 0;
    const a = gramOfRows(x, m, k, 1 / m);
    const gram = eighFromRows(x, m, k, 1 / m);
    const direct = eighSym(a, k);
    const top = direct.values[k - 1]!;
    for (let j = 0; j < k; j++) assert.ok(Math.abs(gram.values[j]! - direct.values[j]!) <= 1e-8 * top, `rank-deficient λ${j}`);
    assert.equal(gram.values.filter((v) => v > 0).length, 4, 'rank 4: four positive eigenvalues, the rest exactly 0');
    assert.ok(eigResidual(a, k, gram.values, gram.vectors) < 1e-10);
    assert.ok(orthogonalityError(gram.vectors, k) < 1e-10);
    assert.ok(projectorDifference(gram.vectors, direct.vectors, k, 4) < 1e-8, 'rank-deficient: projector onto the range');
  });
}

test('orthonormalComplement: orthonormal, orthogonal to the input, for random, coordinate, empty and full inputs', () => {
  const check = (u: Float64Array, k: number, r: number, label: string) => {
    const q = orthonormalComplement(u, k, r);
    const z = k - r;
    assert.equal(q.length, k * z, label);
    const qtq = matmul(transpose(q, k, z), z, k, q, z);
    for (let i = 0; i < z; i++) for (let j = 0; j < z; j++) assert.ok(Math.abs(qtq[i * z + j]! - (i === j ? 1 : 0)) < 1e-12, `${label}: QᵀQ`);
    const utq = matmul(transpose(u, k, r), r, k, q, z);
    for (const v of utq) assert.ok(Math.abs(v) < 1e-12, `${label}: UᵀQ`);
  };
  // Orthonormal columns from the eigenvectors of a random symmetric matrix.
  const k = 31;
  const sym = uniform(k * k, 5);
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) sym[i * k + j] = sym[j * k + i]!;
  const v = eighSym(sym, k).vectors;
  for (const r of [1, 6, 30]) {
    const u = new Float64Array(k * r);
    for (let i = 0; i < k; i++) for (let j = 0; j < r; j++) u[i * r + j] = v[i * k + j]!;
    check(u, k, r, `random r=${r}`);
  }
  // Coordinate vectors, including +e_0 (a reflector that is the identity) and −e_2.
  const e = new Float64Array(k * 2);
  e[0] = 1;
  e[2 * 2 + 1] = -1;
  check(e, k, 2, 'coordinates');
  check(new Float64Array(0), 4, 0, 'r = 0');
  // Past one QR panel (64 reflectors): 150 orthonormal columns of 200.
  const big = 200;
  const sym2 = uniform(big * big, 8);
  for (let i = 0; i < big; i++) for (let j = 0; j < i; j++) sym2[i * big + j] = sym2[j * big + i]!;
  const v2 = eighSym(sym2, big).vectors;
  const u2 = new Float64Array(big * 150);
  for (let i = 0; i < big; i++) for (let j = 0; j < 150; j++) u2[i * 150 + j] = v2[i * big + 25 + j]!;
  check(u2, big, 150, 'blocked r=150');
  assert.equal(orthonormalComplement(v, k, k).length, 0, 'r = K: empty complement');
});
