/**
 * Reads the CLI's `--data` and `--labels` files into plain arrays: IDX (gzipped or not, as in
 * the Fashion-MNIST distribution), CSV or JSON (either may be gzipped), with bounded memory
 * (bounded-read.ts) and a strict grammar, so that a typo is an error naming its place instead of
 * a silent 0 or NaN. The grammar (also in the README's CLI section):
 *
 * - Numbers are decimal literals (decimal.ts): `-1`, `3.5`, `.5`, `1e-3`. An empty cell, `NaN`,
 *   `Infinity`, `0x10` or any other token is an error naming its row and column; so is a value
 *   beyond the float32 range.
 * - CSV: one example per row; cells separated by the first of `,` `;` or a tab found in the first
 *   row (one column when none is); spaces around a cell are ignored; rows are numbered from 1 at
 *   the top of the file; blank lines only at the end. The first row is a header when every one
 *   of its cells is an identifier (a letter or `_`, then letters, digits, `_ . - : / ( ) [ ]`,
 *   optionally in double quotes) other than `nan`/`inf`/`infinity`; otherwise it is data.
 * - JSON: an array of examples, or `{ "xs": [...], "ys": [...] }`; an example is a number or a
 *   nested array of numbers, every example of the same shape (a ragged example is an error naming
 *   its index); strings are not numbers.
 * - Labels: integers ≥ 0 (the caller checks the upper bound, the model's classes).
 * Node only.
 */
import { CliError } from './errors.js';
import { parseIdx } from './idx.js';
import { readBounded } from './bounded-read.js';
import { FLOAT32_MAX, decimalProblem } from './decimal.js';

/** Examples as one flat float array: `n` examples of `perExample` values each. */
export interface ExampleArray {
  readonly values: Float32Array;
  /** Examples read (at most the `examples` asked for). */
  readonly n: number;
  /** Examples the file holds (from the IDX header, or every row or array element). */
  readonly total: number;
  /** Shape of one example as stored in the file (e.g. [28, 28] for IDX images, [k] for CSV rows). */
  readonly exampleShape: number[];
  /** True for uint8 IDX data (pixels), which the CLI scales by 1/255 by default. */
  readonly uint8: boolean;
}

/**
 * Reads a data file; `what` names the option in errors ('--data', '--labels').
 *
 * @param examples read only the first `examples` examples (an IDX file is then inflated and
 * read no further; CSV and JSON are parsed whole, to report every error in them).
 */
export async function readExamples(path: string, what: string, examples?: number): Promise<ExampleArray & { labels?: Float64Array }> {
  const { bytes, idx } = await readBounded(path, what, examples);
  if (idx) {
    let parsed;
    try {
      parsed = parseIdx(bytes, path, examples);
    } catch (e) {
      throw new CliError(`${what}: ${(e as Error).message}`);
    }
    const n = parsed.shape[0]!;
    if (n === 0) throw new CliError(`${what}: ${path} holds no examples (its IDX header says [${idx.shape}])`);
    return { values: new Float32Array(parsed.data), n, total: idx.shape[0]!, exampleShape: parsed.shape.slice(1), uint8: parsed.data instanceof Uint8Array };
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CliError(`${what}: ${path} is neither IDX nor UTF-8 text (expected IDX, CSV with one example per row, or JSON)`);
  }
  text = text.replace(/^\uFEFF/, '');
  const trimmed = text.trimStart();
  const out = trimmed.startsWith('[') || trimmed.startsWith('{') ? readJson(text, path, what) : readCsv(text, path, what);
  return limit(out, examples);
}

/** The first `examples` examples of a parsed text file. */
function limit<T extends ExampleArray & { labels?: Float64Array }>(a: T, examples?: number): T {
  if (examples === undefined || examples >= a.n) return a;
  const per = a.values.length / a.n;
  return { ...a, n: examples, values: a.values.subarray(0, examples * per), ...(a.labels ? { labels: a.labels.subarray(0, examples) } : {}) };
}

/** A number usable in float32, or an error naming `where`. */
function jsonNumber(v: unknown, where: string, what: string, path: string): number {
  if (typeof v !== 'number') throw new CliError(`${what}: ${path}: ${where} is ${typeof v === 'string' ? `the string ${JSON.stringify(v)}` : JSON.stringify(v) ?? typeof v}, not a number`);
  if (!(Math.abs(v) <= FLOAT32_MAX)) throw new CliError(`${what}: ${path}: ${where} is ${v}, beyond the float32 range (±3.4e38)`);
  return v;
}

/** The shape of a regular nested array (every sibling the same shape), or an error naming the ragged place. */
function regularShape(x: unknown, where: string, what: string, path: string): number[] {
  if (!Array.isArray(x)) return [];
  if (x.length === 0) throw new CliError(`${what}: ${path}: ${where} is an empty array`);
  const first = regularShape(x[0], `${where}[0]`, what, path);
  for (let i = 1; i < x.length; i++) {
    const s = regularShape(x[i], `${where}[${i}]`, what, path);
    if (s.length !== first.length || s.some((d, k) => d !== first[k])) {
      throw new CliError(`${what}: ${path}: ${where} is ragged: ${where}[${i}] has shape [${s}] but ${where}[0] has [${first}]`);
    }
  }
  return [x.length, ...first];
}

function readJson(text: string, path: string, what: string): ExampleArray & { labels?: Float64Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${what}: ${path} is not valid JSON (${(e as Error).message})`);
  }
  let xs = parsed;
  let ys: unknown;
  if (!Array.isArray(parsed) && typeof parsed === 'object' && parsed !== null) {
    const extra = Object.keys(parsed).filter((k) => k !== 'xs' && k !== 'ys');
    if (extra.length > 0) throw new CliError(`${what}: ${path}: unknown key '${extra[0]}'; a JSON data file is an array of examples or { "xs": [...], "ys": [...] }`);
    ({ xs, ys } = parsed as { xs?: unknown; ys?: unknown });
  }
  if (!Array.isArray(xs) || xs.length === 0) throw new CliError(`${what}: ${path} must hold a non-empty array of examples (or { "xs": [...], "ys": [...] })`);
  const exampleShape = regularShape(xs[0], 'example 0', what, path);
  const per = exampleShape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(xs.length * per);
  xs.forEach((x, i) => {
    const shape = regularShape(x, `example ${i}`, what, path);
    if (shape.length !== exampleShape.length || shape.some((d, k) => d !== exampleShape[k])) {
      throw new CliError(`${what}: ${path}: example ${i} has shape [${shape}] but example 0 has [${exampleShape}]; every example must have the same shape`);
    }
    const flat = (Array.isArray(x) ? x.flat(Infinity) : [x]) as unknown[];
    flat.forEach((v, j) => (values[i * per + j] = jsonNumber(v, per === 1 ? `example ${i}` : `example ${i}, value ${j}`, what, path)));
  });
  const out = { values, n: xs.length, total: xs.length, exampleShape, uint8: false };
  if (ys === undefined) return out;
  if (!Array.isArray(ys) || ys.length !== xs.length) throw new CliError(`${what}: ${path}: "ys" must be an array with one label per example (${xs.length})`);
  return { ...out, labels: Float64Array.from(ys, (y, i) => jsonNumber(y, `label ${i}`, what, path)) };
}

/** A header cell: an identifier, optionally quoted. */
const IDENTIFIER = /^(?:"[A-Za-z_][A-Za-z0-9_.:/()[\] -]*"|[A-Za-z_][A-Za-z0-9_.:/()[\] -]*)$/;
/** Words Number() reads as numbers: never a header. */
const NUMBER_WORDS = /^"?[+-]?(?:nan|inf|infinity)"?$/i;

/** True when every cell of `row` is an identifier: the header rule. */
export function isHeaderRow(row: readonly string[]): boolean {
  return row.length > 0 && row.every((c) => IDENTIFIER.test(c) && !NUMBER_WORDS.test(c));
}

function readCsv(text: string, path: string, what: string): ExampleArray {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) throw new CliError(`${what}: ${path} is empty (expected CSV with one example per row, IDX, or JSON)`);
  const first = lines[0]!;
  const delimiter = [',', ';', '\t'].find((d) => first.includes(d));
  const cells = (line: string) => (delimiter === undefined ? [line] : line.split(delimiter)).map((c) => c.trim());
  const header = isHeaderRow(cells(first));
  const start = header ? 1 : 0;
  if (lines.length === start) throw new CliError(`${what}: ${path} has a header row (${first.slice(0, 60)}) but no data rows`);
  const per = cells(lines[start]!).length;
  const n = lines.length - start;
  const values = new Float32Array(n * per);
  for (let i = start; i < lines.length; i++) {
    const row = i + 1;
    if (lines[i]!.trim() === '') throw new CliError(`${what}: ${path}: row ${row} is empty; blank lines are allowed only at the end`);
    const r = cells(lines[i]!);
    if (r.length !== per) throw new CliError(`${what}: ${path}: row ${row} has ${r.length} columns, row ${start + 1} (the first data row) has ${per}`);
    r.forEach((c, j) => {
      const problem = decimalProblem(c);
      if (problem) throw new CliError(`${what}: ${path}: row ${row}, column ${j + 1} ${problem}${c === '' ? '' : ' (numbers are decimal literals such as -1, 3.5, 1e-3)'}`);
      values[(i - start) * per + j] = Number(c);
    });
  }
  return { values, n, total: n, exampleShape: per === 1 ? [] : [per], uint8: false };
}

/** Labels read from a file: integers ≥ 0, one per example. */
export interface LabelArray {
  readonly labels: Int32Array;
  /** Labels the file holds (an IDX file may have been read partly). */
  readonly total: number;
}

/**
 * Checks that every label is an integer ≥ 0 (and < 2³¹) and returns them as int32.
 *
 * @throws CliError naming the label's index and value.
 */
export function integerLabels(values: ArrayLike<number>, where: string): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) throw new CliError(`${where}: label ${i} is ${v}; labels are class indices, integers ≥ 0`);
    out[i] = v;
  }
  return out;
}

/** Reads a labels file (IDX, CSV with one column, or JSON array) as integers ≥ 0; its first `examples` labels when given. */
export async function readLabels(path: string, examples?: number): Promise<LabelArray> {
  const { values, exampleShape, total } = await readExamples(path, '--labels', examples);
  if (exampleShape.length !== 0) throw new CliError(`--labels: ${path} must hold one label per example, found [${exampleShape}] per example`);
  return { labels: integerLabels(values, `--labels: ${path}`), total };
}
