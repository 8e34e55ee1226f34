/**
 * cholesky, the solves and gemm, for each implementation: L Lᵀ = A to 1e-13 relative,
 * A X = B to 1e-12, triangular solves invert their triangle, NotPositiveDefiniteError names
 * the failing pivot, and the two implementations agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotPositiveDefiniteError } from '../../src/errors.js';
import {
  cholesky,
  choleskySolve,
  choleskyTS,
  gemm,
  gemmTS,
  solveTriangularLower,
  solveTriangularUpperT,
} from '../../src/linalg/index.js';
import { IMPLEMENTATIONS, matmul, randomSpd, relativeDifference, transpose, uniform, useImplementation } from './support.js';

const SIZES = [0, 1, 2, 5, 64, 200];

for (const impl of IMPLEMENTATIONS) {
  test(`${impl}: cholesky gives lower-triangular L with L Lᵀ = A (n = ${SIZES.join(', ')})`, async () => {
    await useImplementation(impl);
    for (const n of SIZES) {
      const a = randomSpd(n, 20 + n);
      const copy = a.slice();
      const l = cholesky(a, n);
      assert.deepEqual(a, copy, 'input modified');
      for (let i = 0; i < n; i++) {
        assert.ok(l[i * n + i]! > 0, `n=${n}: diagonal ${i} not positive`);
        for (let j = i + 1; j < n; j++) assert.equal(l[i * n + j], 0, `n=${n}: L[${i}][${j}] above the diagonal`);
      }
      const residual = relativeDifference(matmul(l, n, n, transpose(l, n, n), n), a);
      assert.ok(residual < 1e-13 || n === 0, `n=${n}: ‖LLᵀ − A‖/‖A‖ = ${residual}`);
    }
  });

  test(`${impl}: choleskySolve solves A X = B with several right-hand sides`, async () => {
    await useImplementation(impl);
    for (const n of SIZES) {
      for (const nrhs of [1, 3, n]) {
        const a = randomSpd(n, 30 + n);
        const b = uniform(n * nrhs, 31 + n);
        const copy = b.slice();
        const x = choleskySolve(cholesky(a, n), n, b, nrhs);
        assert.deepEqual(b, copy, 'b modified');
        const residual = relativeDifference(matmul(a, n, n, x, nrhs), b);
        assert.ok(residual < 1e-12 || n * nrhs === 0, `n=${n}, nrhs=${nrhs}: ‖AX − B‖/‖B‖ = ${residual}`);
      }
    }
  });

  test(`${impl}: solveTriangularLower and solveTriangularUpperT invert L and Lᵀ`, async () => {
    await useImplementation(impl);
    const n = 64, nrhs = 5;
    const l = cholesky(randomSpd(n, 4), n);
    const b = uniform(n * nrhs, 6);
    const x = solveTriangularLower(l, n, b, nrhs);
    assert.ok(relativeDifference(matmul(l, n, n, x, nrhs), b) < 1e-12);
    const y = solveTriangularUpperT(l, n, b, nrhs);
    assert.ok(relativeDifference(matmul(transpose(l, n, n), n, n, y, nrhs), b) < 1e-12);
    // Entries above the diagonal are ignored.
    const dirty = l.slice();
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) dirty[i * n + j] = 1e3;
    assert.deepEqual(solveTriangularLower(dirty, n, b, nrhs), x);
    assert.deepEqual(solveTriangularUpperT(dirty, n, b, nrhs), y);
  });

  test(`${impl}: cholesky throws NotPositiveDefiniteError naming the pivot and suggesting regul`, async () => {
    await useImplementation(impl);
    assert.throws(() => cholesky(new Float64Array([1, 2, 2, 1]), 2), (e: unknown) => {
      assert.ok(e instanceof NotPositiveDefiniteError);
      assert.match(e.message, /pivot 1 is -3\b/);
      assert.match(e.message, /regul/);
      return true;
    });
    // A large matrix with one bad diagonal entry fails exactly there, with the same pivot value
    // in both implementations.
    const n = 100;
    const a = randomSpd(n, 8);
    a[70 * n + 70] = -1;
    let tsMessage = '';
    try {
      choleskyTS(a, n);
    } catch (e) {
      tsMessage = (e as Error).message;
    }
    const value = Number(/pivot 70 is (\S+) /.exec(tsMessage)?.[1]);
    assert.ok(value < -1, tsMessage);
    assert.throws(() => cholesky(a, n), (e: unknown) => {
      assert.ok(e instanceof NotPositiveDefiniteError);
      const got = Number(/pivot 70 is (\S+) /.exec(e.message)?.[1]);
      assert.ok(Math.abs(got - value) < 1e-12 * Math.abs(value), `${e.message} vs ${tsMessage}`);
      return true;
    });
    // Singular: a zero matrix fails at pivot 0.
    assert.throws(() => cholesky(new Float64Array(9), 3), /pivot 0 is 0 /);
  });

  // The WebAssembly product computes Cᵀ = Bᵀ Aᵀ column-major, so its rows are n here and its
  // columns m: 130×300×1030 crosses kc = 256 and the A block of 128 rows (at kc = 256) with an
  // edge of 2 rows, 1030×70×9 the panel nc = 1024 and a 4 × 4 tile edge in both directions,
  // 7×64×1030 the A block of 512 rows (at kc = 64), 3×520×3 two inner-dimension blocks.
  test(`${impl}: gemm multiplies rectangular matrices, including empty ones`, async () => {
    await useImplementation(impl);
    for (const [m, k, n] of [[3, 5, 4], [1, 1, 1], [17, 33, 9], [64, 64, 64], [65, 257, 7], [130, 300, 1030], [1030, 70, 9], [7, 64, 1030], [3, 520, 3], [0, 3, 2], [2, 0, 3], [2, 3, 0]] as const) {
      const a = uniform(m * k, m + 7 * k);
      const b = uniform(k * n, n + 11 * k);
      const c = gemm(a, m, k, b, n);
      assert.equal(c.length, m * n);
      const expected = matmul(a, m, k, b, n);
      assert.ok(relativeDifference(c, expected) < 1e-14, `${m}×${k}×${n}`);
      assert.ok(relativeDifference(gemmTS(a, m, k, b, n), expected) < 1e-14, `gemmTS ${m}×${k}×${n}`);
    }
  });
}
