/**
 * Every entry point validates its arguments before any work: a wrong length, dimension or
 * type throws InvalidArgumentError and a NaN or ±Infinity throws NonFiniteError, each naming
 * the function, the argument, what was expected and what was received.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, NonFiniteError } from '../../src/errors.js';
import * as linalg from '../../src/linalg/index.js';
import { IMPLEMENTATIONS, useImplementation } from './support.js';

const square = (n: number) => new Float64Array(n * n).map((_, i) => (i % (n + 1) === 0 ? 2 : 0));
const f64 = (xs: number[]) => new Float64Array(xs);

type Call = [name: string, call: () => unknown];
const squareCalls = (a: unknown, n: number): Call[] => [
  ['eighSym', () => linalg.eighSym(a as Float64Array, n)],
  ['eighSymTS', () => linalg.eighSymTS(a as Float64Array, n)],
  ['cholesky', () => linalg.cholesky(a as Float64Array, n)],
  ['choleskyTS', () => linalg.choleskyTS(a as Float64Array, n)],
  ['choleskySolve', () => linalg.choleskySolve(a as Float64Array, n, new Float64Array(Math.max(n, 0)), 1)],
  ['solveTriangularLower', () => linalg.solveTriangularLower(a as Float64Array, n, new Float64Array(Math.max(n, 0)), 1)],
  ['solveTriangularUpperT', () => linalg.solveTriangularUpperT(a as Float64Array, n, new Float64Array(Math.max(n, 0)), 1)],
  ['choleskySolveTS', () => linalg.choleskySolveTS(a as Float64Array, n, new Float64Array(Math.max(n, 0)), 1)],
];

for (const impl of IMPLEMENTATIONS) {
  test(`${impl}: a matrix of the wrong length is rejected with expected and received lengths`, async () => {
    await useImplementation(impl);
    for (const [name, call] of squareCalls(new Float64Array(8), 3)) {
      assert.throws(call, (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${name}: ${e}`);
        assert.match(e.message, new RegExp(`^${name}: argument '(a|l)' must have length 3×3 = 9, received length 8`));
        return true;
      });
    }
  });

  test(`${impl}: n must be an integer ≥ 0`, async () => {
    await useImplementation(impl);
    for (const n of [-1, 2.5, Number.NaN]) {
      for (const [name, call] of squareCalls(square(2), n)) {
        assert.throws(call, (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError, `${name}: ${e}`);
          assert.match(e.message, new RegExp(`^${name}: argument 'n' must be an integer ≥ 0, received number ${n}`));
          return true;
        });
      }
    }
  });

  test(`${impl}: a non-Float64Array matrix is rejected`, async () => {
    await useImplementation(impl);
    for (const a of [[2, 0, 0, 2], new Float32Array(4), null]) {
      for (const [name, call] of squareCalls(a, 2)) {
        assert.throws(call, (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError, `${name}: ${e}`);
          assert.match(e.message, /must be a Float64Array, received (an Array|a Float32Array|null)/);
          return true;
        });
      }
    }
  });

  test(`${impl}: NaN and ±Infinity are rejected with their position`, async () => {
    await useImplementation(impl);
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const a = square(3);
      a[5] = bad;
      for (const [name, call] of squareCalls(a, 3)) {
        assert.throws(call, (e: unknown) => {
          assert.ok(e instanceof NonFiniteError, `${name}: ${e}`);
          assert.match(e.message, new RegExp(`^${name}: argument '(a|l)' must be finite, received ${bad} at index 5 \\(row 1, column 2\\)`));
          return true;
        });
      }
    }
  });

  test(`${impl}: the right-hand side of a solve is checked against n and nrhs`, async () => {
    await useImplementation(impl);
    const l = square(3);
    assert.throws(() => linalg.choleskySolve(l, 3, new Float64Array(5), 2), /^InvalidArgumentError: choleskySolve: argument 'b' must have length 3×2 = 6, received length 5/);
    assert.throws(() => linalg.solveTriangularLower(l, 3, new Float64Array(3), -1), /argument 'nrhs' must be an integer ≥ 0, received number -1/);
    assert.throws(() => linalg.solveTriangularUpperT(l, 3, f64([1, Number.NaN, 0]), 1), NonFiniteError);
    assert.deepEqual(linalg.choleskySolve(l, 3, new Float64Array(0), 0), new Float64Array(0));
  });

  test(`${impl}: gemm checks both operands against m, k and n`, async () => {
    await useImplementation(impl);
    assert.throws(() => linalg.gemm(new Float64Array(6), 2, 3, new Float64Array(5), 2), /^InvalidArgumentError: gemm: argument 'b' must have length 3×2 = 6, received length 5/);
    assert.throws(() => linalg.gemm(new Float64Array(6), 3, 3, new Float64Array(6), 2), /argument 'a' must have length 3×3 = 9, received length 6/);
    assert.throws(() => linalg.gemmTS(new Float64Array(6), 2, 3, new Float64Array(6), 1.5), /argument 'n' must be an integer ≥ 0/);
    assert.throws(() => linalg.gemm(f64([Infinity]), 1, 1, f64([1]), 1), NonFiniteError);
  });

  test(`${impl}: n = 0 and n = 1 work everywhere`, async () => {
    await useImplementation(impl);
    const empty = new Float64Array(0);
    assert.deepEqual(linalg.eighSym(empty, 0), { values: empty, vectors: empty });
    assert.deepEqual(linalg.cholesky(empty, 0), empty);
    assert.deepEqual(linalg.choleskySolve(empty, 0, empty, 3), empty);
    assert.deepEqual(linalg.eighSym(f64([-4]), 1), { values: f64([-4]), vectors: f64([1]) });
    assert.deepEqual(linalg.cholesky(f64([4]), 1), f64([2]));
    assert.deepEqual(linalg.choleskySolve(f64([2]), 1, f64([8, 4]), 2), f64([2, 1]));
    assert.deepEqual(linalg.solveTriangularUpperT(f64([2]), 1, f64([8]), 1), f64([4]));
  });
}
