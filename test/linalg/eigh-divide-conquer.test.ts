/**
 * The WebAssembly eighSym (blocked tridiagonalisation, divide and conquer, blocked
 * back-transformation): ‖A − VΛVᵀ‖/‖A‖ (as ‖AV − VΛ‖_F/‖A‖_F) and ‖VᵀV − I‖_F ≤ 1e-12, and
 * eigenvalues within 1e-12·‖A‖₂ of the QR-iteration route (`eighSymQR`, the solver before it) on
 * the matrices that stress each part: sizes across the leaf size (32) and the block sizes (32,
 * 64) of the reduction and the back-transformation, several merge levels, clustered and
 * repeated eigenvalues (deflation by rotation), rank-deficient and diagonal matrices (deflation
 * of negligible z), graded matrices, glued Wilkinson matrices (pairs of eigenvalues equal to
 * many digits) and a zero coupling. Each decomposition must come from divide and conquer, not
 * from its QR fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eighSym } from '../../src/linalg/index.js';
import { eighSymQR, lastEighRoute } from '../../src/linalg/eigh.js';
import { eigResidual, isAscending, matmul, orthogonalityError, transpose, uniform, useImplementation, withSpectrum } from './support.js';

const TOL = 1e-12;

function randomSymmetric(n: number, seed: number): Float64Array {
  const g = uniform(n * n, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = g[i * n + j]! + g[j * n + i]!;
  return a;
}

function tridiagonal(d: number[], e: number[]): Float64Array {
  const n = d.length;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) a[i * n + i] = d[i]!;
  for (let i = 0; i + 1 < n; i++) a[i * n + i + 1] = a[(i + 1) * n + i] = e[i]!;
  return a;
}

/** Checks the decomposition and its agreement with the QR route; returns the eigenvalues. */
function check(a: Float64Array, n: number, label: string, tol = TOL): Float64Array {
  const { values, vectors } = eighSym(a, n);
  assert.equal(lastEighRoute(), 'divide-and-conquer', `${label}: took the QR fallback`);
  const residual = eigResidual(a, n, values, vectors);
  const orthogonality = orthogonalityError(vectors, n);
  assert.ok(residual <= tol, `${label}: ‖AV − VΛ‖/‖A‖ = ${residual}`);
  assert.ok(orthogonality <= tol, `${label}: ‖VᵀV − I‖ = ${orthogonality}`);
  assert.ok(isAscending(values), `${label}: eigenvalues not ascending`);
  const reference = eighSymQR(a, n);
  assert.ok(reference, 'the module has the QR route');
  const scale = Math.max(Math.abs(reference.values[0] ?? 0), Math.abs(reference.values[n - 1] ?? 0), Number.MIN_VALUE);
  let worst = 0;
  for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(values[j]! - reference.values[j]!) / scale);
  assert.ok(worst <= tol, `${label}: max |λ − λ_QR| / ‖A‖₂ = ${worst}`);
  return values;
}

test('divide and conquer: random symmetric matrices across the leaf and block sizes', async () => {
  await useImplementation('eigen-wasm');
  for (const n of [1, 2, 3, 31, 32, 33, 63, 64, 65, 97, 130, 257]) check(randomSymmetric(n, 100 + n), n, `random n=${n}`);
});

test('divide and conquer: clustered and repeated eigenvalues (deflation by rotation)', async () => {
  await useImplementation('eigen-wasm');
  const spectrum = [...Array(60).fill(2), ...Array(40).fill(-1), ...Array(30).fill(0.5), 1 + 1e-14, 1, 1 - 1e-14];
  const w = check(withSpectrum(spectrum, 11), spectrum.length, 'clustered');
  const expected = [...spectrum].sort((x, y) => x - y);
  w.forEach((x, i) => assert.ok(Math.abs(x - expected[i]!) < 1e-12, `clustered w[${i}] = ${x}, expected ${expected[i]}`));
  // Two tight clusters of distinct values 1e-9 apart.
  const tight = Array.from({ length: 90 }, (_, i) => (i % 2 ? 3 : -3) + 1e-9 * i);
  check(withSpectrum(tight, 12), tight.length, 'tight clusters');
});

test('divide and conquer: rank-deficient PSD, diagonal and zero-coupling matrices (deflation of negligible z)', async () => {
  await useImplementation('eigen-wasm');
  const n = 150, r = 10;
  const g = uniform(n * r, 13);
  const w = check(matmul(g, n, r, transpose(g, n, r), n), n, 'rank 10');
  for (let j = 0; j < n - r; j++) assert.ok(Math.abs(w[j]!) < 1e-12 * w[n - 1]!, `rank 10: w[${j}] = ${w[j]}`);
  const diag = Array.from({ length: 100 }, (_, i) => ((i * 37) % 23) - 11);
  const dw = check(tridiagonal(diag, Array(99).fill(0)), 100, 'diagonal with ties');
  assert.deepEqual([...dw], [...diag].sort((x, y) => x - y));
  // A tridiagonal whose coupling at the first split (n/2 − 1) is exactly zero, the rest random.
  const d = [...uniform(80, 14)];
  const e = [...uniform(79, 15)];
  e[39] = 0;
  check(tridiagonal(d, e), 80, 'zero coupling');
});

test('divide and conquer: graded matrices and glued Wilkinson matrices', async () => {
  await useImplementation('eigen-wasm');
  // Graded: A = D S D with D = diag(10^(−12 i/n)), S random symmetric.
  const n = 120;
  const s = randomSymmetric(n, 16);
  const scale = Array.from({ length: n }, (_, i) => 10 ** ((-12 * i) / n));
  const graded = s.map((x, idx) => x * scale[Math.floor(idx / n)]! * scale[idx % n]!);
  check(graded, n, 'graded');
  // Eight copies of W21+ (d = |10 − i|, e = 1), glued by 1e-8: eigenvalues in pairs equal to
  // about 1e-14, then split by the glue.
  const d: number[] = [], e: number[] = [];
  for (let b = 0; b < 8; b++) {
    for (let i = 0; i < 21; i++) {
      d.push(Math.abs(10 - i));
      if (i < 20) e.push(1);
    }
    if (b < 7) e.push(1e-8);
  }
  check(tridiagonal(d, e), d.length, 'glued Wilkinson');
});

// The back-transformation applies the n − 2 reflectors in blocks of 128 (n = 129: one partial
// block, 130: one full block, 131: a full block and a block of one reflector, 258/259: two
// full blocks and an edge), on the packed GEMM whose tile is 4 × 4 and whose A block holds
// 128 rows at an inner dimension of 256 and 512 rows at 64 (n = 600 crosses both, and the
// reduction's trailing updates of more than 512 rows). Tolerance 1e-13 (the brief of the
// solver: ‖A − VΛVᵀ‖/‖A‖ and ‖VᵀV − I‖ ≤ 1e-13), eigenvalues within 1e-13·‖A‖₂ of the QR route.
test('divide and conquer: sizes across the back-transformation block (128) and the GEMM blocks, to 1e-13', async () => {
  await useImplementation('eigen-wasm');
  for (const n of [129, 130, 131, 258, 259, 600]) check(randomSymmetric(n, 300 + n), n, `random n=${n}`, 1e-13);
  // Repeated and clustered eigenvalues over three reflector blocks: 100 copies of 1, 80 of −2,
  // 60 values within 1e-10 of 5, the rest spread.
  const spectrum = [
    ...Array(100).fill(1),
    ...Array(80).fill(-2),
    ...Array.from({ length: 60 }, (_, i) => 5 + 1e-10 * i),
    ...Array.from({ length: 77 }, (_, i) => Math.sin(i) * 3),
  ];
  const w = check(withSpectrum(spectrum, 21), spectrum.length, 'repeated n=317', 1e-13);
  const expected = [...spectrum].sort((x, y) => x - y);
  w.forEach((x, i) => assert.ok(Math.abs(x - expected[i]!) < 1e-13 * 5, `repeated n=317: w[${i}] = ${x}, expected ${expected[i]}`));
  // Graded over 14 orders of magnitude, n = 261 (two blocks and an edge).
  const n = 261;
  const s = randomSymmetric(n, 22);
  const scale = Array.from({ length: n }, (_, i) => 10 ** ((-14 * i) / n));
  check(s.map((x, idx) => x * scale[Math.floor(idx / n)]! * scale[idx % n]!), n, 'graded n=261', 1e-13);
});
