/**
 * Argument checks shared by every linear-algebra entry point. Each error names the function,
 * the argument, what was expected and what was received, so that a wrong input never turns
 * into a silently wrong number (or an out-of-bounds read inside WebAssembly).
 */
import { InvalidArgumentError, NonFiniteError, NotPositiveDefiniteError } from '../errors.js';

/** Checks that `value` is an integer ≥ 0 (a dimension). */
export function checkDimension(fn: string, name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      `${fn}: argument '${name}' must be an integer ≥ 0, received ${describe(value)}`,
    );
  }
}

/**
 * Checks that `array` is a Float64Array of `rows`×`cols` finite numbers (row-major).
 * The finiteness scan is O(rows·cols), negligible next to the O(n³) work that follows.
 */
export function checkMatrix(
  fn: string,
  name: string,
  array: unknown,
  rows: number,
  cols: number,
): asserts array is Float64Array {
  if (!(array instanceof Float64Array)) {
    throw new InvalidArgumentError(
      `${fn}: argument '${name}' must be a Float64Array, received ${describe(array)}`,
    );
  }
  const expected = rows * cols;
  if (array.length !== expected) {
    throw new InvalidArgumentError(
      `${fn}: argument '${name}' must have length ${rows}×${cols} = ${expected}, received length ${array.length}`,
    );
  }
  for (let i = 0; i < expected; i++) {
    const x = array[i]!;
    // x - x is 0 for finite x and NaN for NaN and ±Infinity: one comparison per entry.
    if (x - x !== 0) {
      const row = cols > 0 ? Math.floor(i / cols) : 0;
      throw new NonFiniteError(
        `${fn}: argument '${name}' must be finite, received ${x} at index ${i} (row ${row}, column ${i - row * cols})`,
      );
    }
  }
}

/** Checks a square n×n matrix argument together with its dimension. */
export function checkSquare(fn: string, name: string, a: unknown, n: number): asserts a is Float64Array {
  checkDimension(fn, 'n', n);
  checkMatrix(fn, name, a, n, n);
}

/**
 * The error thrown when a Cholesky pivot of the n×n matrix `a` is not positive. A pivot
 * ≤ 0 means A is indefinite or singular to working precision; the advice scales the damping
 * to A's own diagonal, since the pivot's size alone says little about the eigenvalue deficit.
 */
export function notPositiveDefinite(
  fn: string,
  pivot: number,
  value: number,
  a: Float64Array,
  n: number,
): NotPositiveDefiniteError {
  let trace = 0;
  for (let i = 0; i < n; i++) trace += Math.abs(a[i * n + i]!);
  const meanDiagonal = n > 0 ? trace / n : 0;
  const advice =
    meanDiagonal > 0
      ? `e.g. 1e-6 to 1e-3 times its mean |diagonal| ${meanDiagonal.toPrecision(3)}`
      : 'its diagonal is zero, so any positive regul is a start';
  return new NotPositiveDefiniteError(
    `${fn}: matrix 'a' (n = ${n}) is not positive definite: pivot ${pivot} is ${value} (must be > 0). ` +
      `Add a larger damping \`regul\` to the diagonal before factorising (${advice}).`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an Array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const length = (value as { length?: number }).length ?? value.byteLength;
    return `a ${value.constructor.name} of length ${length}`;
  }
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`;
  return `${typeof value} ${String(value)}`;
}
