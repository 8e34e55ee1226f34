/**
 * The one grammar of numbers the CLI reads, in data files (CSV cells) and in numeric flags: a
 * plain decimal literal, optionally signed, with an optional fraction and exponent —
 * `-1`, `3.5`, `.5`, `2.`, `1e-3`, `+4E2`. Everything JavaScript's `Number()` would also accept
 * is refused: an empty string (Number('') is 0), hex/octal/binary literals (`0x10`), `NaN`,
 * `Infinity`, digit separators, surrounding garbage. Browser-safe.
 */

/** A decimal literal: sign, digits with an optional point (or a point and digits), optional exponent. */
export const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The largest finite float32 (tfjs computes in float32: a larger value would become Infinity). */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** Why `token` is not a usable number, or null when it is one. */
export function decimalProblem(token: string): string | null {
  if (token === '') return 'is empty';
  if (!DECIMAL.test(token)) return `${JSON.stringify(token.length > 24 ? `${token.slice(0, 24)}…` : token)} is not a decimal number`;
  if (!(Math.abs(Number(token)) <= FLOAT32_MAX)) return `${token} is beyond the float32 range (±3.4e38)`;
  return null;
}

/** The value of a decimal literal, or undefined when `token` does not follow the grammar (see the file comment). */
export function parseDecimal(token: string): number | undefined {
  return decimalProblem(token) === null ? Number(token) : undefined;
}
