/**
 * Options shared by the spectral tools: progress, cancellation, seeds, and the checks that turn
 * a bad argument into an InvalidArgumentError naming the function, the option and the value.
 */
import { AbortedError, InvalidArgumentError } from '../errors.js';
import { checkOptions, describe } from '../object/arguments.js';

/** Reported after every product with the operator. */
export interface SpectralProgress {
  /** Products M v taken so far. */
  products: number;
  /** The most products the call may take (its budget; eigsh may stop earlier). */
  maxProducts: number;
}

/** Options every spectral function accepts. */
export interface SpectralCommonOptions {
  /** Seed of the random probes / start vectors (an integer; default 0). Same seed, same result. */
  seed?: number;
  /** Called after every product with the operator. */
  onProgress?: (progress: SpectralProgress) => void;
  /** Stops the computation between two products with AbortedError. */
  signal?: AbortSignal;
}

export const COMMON_KEYS = ['seed', 'onProgress', 'signal'] as const;

/** Throws AbortedError when `signal` has fired. */
export function checkAbort(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) throw new AbortedError(`${where} was aborted${signal.reason !== undefined ? ` (${String(signal.reason)})` : ''}; no tensor was kept`);
}

/** Validates the options object and the common options; returns it typed. */
export function checkSpectralOptions<T extends SpectralCommonOptions>(options: T | undefined, allowed: readonly string[], where: string): T & { seed: number } {
  const o = checkOptions(options, [...allowed, ...COMMON_KEYS], where) as T;
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError(`${where}: 'seed' must be an integer, received ${describe(o.seed)}`);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new InvalidArgumentError(`${where}: 'onProgress' must be a function, received ${describe(o.onProgress)}`);
  if (o.signal !== undefined && !(typeof o.signal === 'object' && o.signal !== null && 'aborted' in o.signal)) {
    throw new InvalidArgumentError(`${where}: 'signal' must be an AbortSignal, received ${describe(o.signal)}`);
  }
  checkAbort(o.signal, where);
  return { ...o, seed };
}

/** An integer in [min, max] (max default Infinity), else InvalidArgumentError. */
export function checkInteger(value: unknown, name: string, where: string, min: number, max = Infinity, hint = ''): number {
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max)) {
    const range = max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`;
    throw new InvalidArgumentError(`${where}: '${name}' must be an integer ${range}, received ${describe(value)}${hint}`);
  }
  return value;
}

/** One of `allowed`, else InvalidArgumentError listing them. */
export function checkChoice<T extends string>(value: unknown, allowed: readonly T[], name: string, where: string): T {
  if (!allowed.includes(value as T)) throw new InvalidArgumentError(`${where}: '${name}' must be ${allowed.map((a) => `'${a}'`).join(' or ')}, received ${describe(value)}`);
  return value as T;
}
