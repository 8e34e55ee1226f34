/**
 * eighSym, for each implementation: A V = V diag(w) and VᵀV = I to 1e-12 (relative to ‖A‖),
 * eigenvalues ascending, the two implementations agreeing on eigenvalues to 1e-10 relative,
 * including matrices with repeated eigenvalues and rank-deficient ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eighSym, eighSymTS } from '../../src/linalg/index.js';
import {
  IMPLEMENTATIONS,
  eigResidual,
  isAscending,
  matmul,
  orthogonalityError,
  randomSpd,
  transpose,
  uniform,
  useImplementation,
  withSpectrum,
} from './support.js';

const SIZES = [0, 1, 2, 5, 64, 200];
const TOL = 1e-12;

function assertDecomposition(a: Float64Array, n: number, label: string): Float64Array {
  const { values, vectors } = eighSym(a, n);
  assert.equal(values.length, n);
  assert.equal(vectors.length, n * n);
  const residual = eigResidual(a, n, values, vectors);
  const orthogonality = orthogonalityError(vectors, n);
  assert.ok(residual < TOL, `${label}: eig residual ${residual}`);
  assert.ok(orthogonality < TOL, `${label}: ‖VᵀV − I‖ ${orthogonality}`);
  assert.ok(isAscending(values), `${label}: eigenvalues not ascending: ${values.slice(0, 8)}`);
  return values;
}

for (const impl of IMPLEMENTATIONS) {
  test(`${impl}: eighSym decomposes random SPD matrices (n = ${SIZES.join(', ')})`, async () => {
    await useImplementation(impl);
    for (const n of SIZES) assertDecomposition(randomSpd(n, 10 + n), n, `n=${n}`);
  });

  test(`${impl}: eighSym handles indefinite symmetric matrices`, async () => {
    await useImplementation(impl);
    const n = 50;
    const g = uniform(n * n, 7);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = g[i * n + j]! + g[j * n + i]!;
    const w = assertDecomposition(a, n, 'indefinite');
    assert.ok(w[0]! < 0 && w[n - 1]! > 0);
  });

  test(`${impl}: eighSym of the identity and of a diagonal with ties`, async () => {
    await useImplementation(impl);
    const n = 6;
    const eye = new Float64Array(n * n);
    for (let i = 0; i < n; i++) eye[i * n + i] = 1;
    assert.deepEqual([...assertDecomposition(eye, n, 'identity')], [1, 1, 1, 1, 1, 1]);
    const diag = [3, 1, 3, 2, 1, 3];
    const d = new Float64Array(n * n);
    diag.forEach((x, i) => (d[i * n + i] = x));
    assert.deepEqual([...assertDecomposition(d, n, 'diagonal')], [1, 1, 2, 3, 3, 3]);
  });

  test(`${impl}: eighSym of a dense matrix with clustered repeated eigenvalues`, async () => {
    await useImplementation(impl);
    const spectrum = [...Array(20).fill(2), ...Array(15).fill(-1), ...Array(5).fill(0.5)];
    const a = withSpectrum(spectrum, 3);
    const w = assertDecomposition(a, spectrum.length, 'clustered');
    const expected = [...spectrum].sort((x, y) => x - y);
    w.forEach((x, i) => assert.ok(Math.abs(x - expected[i]!) < 1e-12, `w[${i}] = ${x}, expected ${expected[i]}`));
  });

  test(`${impl}: eighSym of a rank-deficient PSD matrix has n − r eigenvalues at 0`, async () => {
    await useImplementation(impl);
    const n = 40, r = 12;
    const g = uniform(n * r, 5);
    const a = matmul(g, n, r, transpose(g, n, r), n);
    const w = assertDecomposition(a, n, 'rank-deficient');
    const scale = w[n - 1]!;
    const zeros = [...w].filter((x) => Math.abs(x) < 1e-12 * scale).length;
    assert.equal(zeros, n - r);
  });

  test(`${impl}: eighSym of a block-diagonal matrix whose blocks have interleaved spectra`, async () => {
    // The tridiagonal form splits into blocks, and the eigenvalue nearest to a block's shift
    // often belongs to another block: the shift strategy must not stall on it.
    await useImplementation(impl);
    const b1 = withSpectrum(Array.from({ length: 30 }, (_, i) => 2 * i), 11);
    const b2 = withSpectrum(Array.from({ length: 30 }, (_, i) => 2 * i + 1 + 1e-9 * i), 12);
    const n = 60;
    const a = new Float64Array(n * n);
    for (let i = 0; i < 30; i++) {
      for (let j = 0; j < 30; j++) {
        a[i * n + j] = b1[i * 30 + j]!;
        a[(i + 30) * n + j + 30] = b2[i * 30 + j]!;
      }
    }
    const w = assertDecomposition(a, n, 'block-diagonal');
    const expected = (i: number) => (i % 2 === 0 ? i : i + 1e-9 * ((i - 1) / 2));
    w.forEach((x, i) => assert.ok(Math.abs(x - expected(i)) < 1e-12 * n, `w[${i}] = ${x}`));
  });

  test(`${impl}: eighSym of Wilkinson's matrix W₂₁⁺ (pairs of nearly equal eigenvalues)`, async () => {
    await useImplementation(impl);
    const n = 21;
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      a[i * n + i] = Math.abs(10 - i);
      if (i + 1 < n) a[i * n + i + 1] = a[(i + 1) * n + i] = 1;
    }
    const w = assertDecomposition(a, n, 'W21+');
    // The two largest eigenvalues agree to about 1e-14 (Wilkinson, The Algebraic Eigenvalue Problem, §5.45).
    assert.ok(Math.abs(w[n - 1]! - 10.746194182903393) < 1e-12, `λ_max = ${w[n - 1]}`);
    assert.ok(Math.abs(w[n - 1]! - w[n - 2]!) < 1e-12);
  });

  test(`${impl}: eighSym does not modify its input and accepts a zero matrix`, async () => {
    await useImplementation(impl);
    const a = randomSpd(10, 1);
    const copy = a.slice();
    eighSym(a, 10);
    assert.deepEqual(a, copy);
    const { values, vectors } = eighSym(new Float64Array(9), 3);
    assert.deepEqual([...values], [0, 0, 0]);
    assert.ok(orthogonalityError(vectors, 3) < TOL);
  });
}

test('eigen-wasm and typescript eigenvalues agree to 1e-10 relative', async () => {
  for (const n of [...SIZES, 300]) {
    const a = randomSpd(n, 100 + n);
    await useImplementation('eigen-wasm');
    const wasm = eighSym(a, n).values;
    const ts = eighSymTS(a, n).values;
    for (let i = 0; i < n; i++) {
      const rel = Math.abs(wasm[i]! - ts[i]!) / Math.abs(ts[i]!);
      assert.ok(rel < 1e-10, `n=${n}: eigenvalue ${i}: wasm ${wasm[i]} vs ts ${ts[i]}`);
    }
  }
});

test('eighSym eigenvalues are invariant under scaling of A (no over- or underflow)', async () => {
  const n = 8;
  const a = randomSpd(n, 9);
  for (const impl of IMPLEMENTATIONS) {
    await useImplementation(impl);
    const w = eighSym(a, n).values;
    for (const s of [1e-150, 1e150]) {
      const ws = eighSym(a.map((x) => x * s), n).values;
      ws.forEach((x, i) => assert.ok(Math.abs(x / s - w[i]!) < 1e-12 * w[n - 1]!, `${impl} scale ${s}`));
    }
  }
});
