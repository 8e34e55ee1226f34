/**
 * Generic argument checks with no dependency on the rest of the library (so that every layer
 * of the design can use them): descriptions of received values and options-object checks.
 */
import { InvalidArgumentError } from './errors.js';

/** A short description of a received value for error messages: 'null', 'a string "x"', 'an object', 'PVector', ... */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? name : 'a plain object';
}

/** Levenshtein distance (small strings only). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

/** The valid name closest to `name`, when it is close enough to be a likely misspelling. */
export function closestName(name: string, valid: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const v of valid) {
    const d = distance(name, v);
    if (d < bestD) [best, bestD] = [v, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/**
 * Checks that `options` is undefined or an object whose keys are all in `allowed` (keys set to
 * undefined are ignored); returns it as a record ({} for undefined).
 */
export function checkOptions(options: unknown, allowed: readonly string[], where: string, name = 'options'): Record<string, unknown> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${where}: '${name}' must be an object { ${allowed.join(', ')} }, received ${describe(options)}`);
  }
  const record = options as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (allowed.includes(key) || record[key] === undefined) continue;
    const near = closestName(key, allowed);
    throw new InvalidArgumentError(
      `${where}: unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}; valid options: ${allowed.join(', ')}`,
    );
  }
  return record;
}

