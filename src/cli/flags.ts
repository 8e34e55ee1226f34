/**
 * Numeric command-line flags, parsed with the data files' decimal grammar (decimal.ts) and held
 * to documented bounds, so that `--mc 1e9` or `--count 0x10` is a one-line user error naming
 * the flag and its range rather than a RangeError deep in a computation. Browser-safe.
 */
import { CliError } from './errors.js';
import { DECIMAL } from './decimal.js';

/** The documented range of each bounded integer flag. */
export const FLAG_BOUNDS = {
  '--batch-size': [1, 65_536],
  '--count': [1, 100_000_000],
  '--mc': [1, 10_000],
  '--top': [1, 10_000],
  '--seed': [0, 4_294_967_295],
} as const satisfies Record<string, readonly [number, number]>;

const fmt = (x: number) => x.toLocaleString('en-US').replace(/,/g, '');

/**
 * An integer flag in [min, max]; `fallback` when absent (required when there is none).
 *
 * @throws CliError naming the flag, the received text and the range.
 * @example integerFlag('100', '--mc', 1, 10000) // 100
 */
export function integerFlag(value: string | undefined, name: string, min: number, max: number, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new CliError(`${name} is required`);
    return fallback;
  }
  const x = DECIMAL.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isInteger(x) || x < min || x > max) {
    const kind = min === 1 ? 'a positive integer' : 'an integer';
    throw new CliError(`${name} must be ${kind} in [${fmt(min)}, ${fmt(max)}], received '${value}'`);
  }
  return x;
}

/** A bounded integer flag from FLAG_BOUNDS. */
export function boundedFlag(value: string | undefined, name: keyof typeof FLAG_BOUNDS, fallback?: number): number {
  const [min, max] = FLAG_BOUNDS[name];
  return integerFlag(value, name, min, max, fallback);
}

/**
 * A real-valued flag (a decimal literal) with `test` deciding the allowed range, described by
 * `range` in the error ('a number > 0').
 *
 * @throws CliError naming the flag, the received text and the range.
 */
export function numberFlag(value: string | undefined, name: string, range: string, test: (x: number) => boolean = Number.isFinite): number | undefined {
  if (value === undefined) return undefined;
  const x = DECIMAL.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isFinite(x) || !test(x)) throw new CliError(`${name} must be ${range}, received '${value}'`);
  return x;
}
