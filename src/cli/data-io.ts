/**
 * Reads the CLI's `--data` and `--labels` files into plain arrays: IDX (gzipped or not, as in
 * the Fashion-MNIST distribution), CSV (one example per row, numbers only; a header row is
 * skipped) or JSON (an array of examples, each a number or a nested array of numbers, or
 * `{ "xs": [...], "ys": [...] }`). Node only.
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { CliError } from './errors.js';
import { looksLikeIdx, parseIdx } from './idx.js';

/** Examples as one flat float array: `n` examples of `perExample` values each. */
export interface ExampleArray {
  readonly values: Float32Array;
  readonly n: number;
  /** Shape of one example as stored in the file (e.g. [28, 28] for IDX images, [k] for CSV rows). */
  readonly exampleShape: number[];
  /** True for uint8 IDX data (pixels), which the CLI scales by 1/255 by default. */
  readonly uint8: boolean;
}

/** Reads a data file; `what` names the option in errors ('--data', '--labels'). */
export function readExamples(path: string, what: string): ExampleArray & { labels?: Int32Array } {
  if (!existsSync(path)) throw new CliError(`${what}: file not found: ${path}`);
  if (!statSync(path).isFile()) throw new CliError(`${what}: not a file: ${path}`);
  let bytes: Uint8Array = readFileSync(path);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new CliError(`${what}: ${path} looks gzipped but does not decompress (${(e as Error).message})`);
    }
  }
  if (looksLikeIdx(bytes)) {
    let idx;
    try {
      idx = parseIdx(bytes, path);
    } catch (e) {
      throw new CliError(`${what}: ${(e as Error).message}`);
    }
    const n = idx.shape[0]!;
    return { values: new Float32Array(idx.data), n, exampleShape: idx.shape.slice(1), uint8: idx.data instanceof Uint8Array };
  }
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes).trim();
  if (text.startsWith('[') || text.startsWith('{')) return readJson(text, path, what);
  return readCsv(text, path, what);
}

function readJson(text: string, path: string, what: string): ExampleArray & { labels?: Int32Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${what}: ${path} is not valid JSON (${(e as Error).message})`);
  }
  let xs = parsed;
  let ys: unknown;
  if (!Array.isArray(parsed) && typeof parsed === 'object' && parsed !== null) ({ xs, ys } = parsed as { xs?: unknown; ys?: unknown });
  if (!Array.isArray(xs) || xs.length === 0) throw new CliError(`${what}: ${path} must hold a non-empty array of examples (or { "xs": [...], "ys": [...] })`);
  const exampleShape = shapeOf(xs[0], path, what);
  const per = exampleShape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(xs.length * per);
  xs.forEach((x, i) => {
    const flat = [x].flat(Infinity) as unknown[];
    if (flat.length !== per) throw new CliError(`${what}: ${path}: example ${i} has ${flat.length} values, example 0 has ${per}`);
    flat.forEach((v, j) => (values[i * per + j] = toNumber(v, `${path}: example ${i}`, what)));
  });
  const out = { values, n: xs.length, exampleShape, uint8: false };
  if (ys === undefined) return out;
  if (!Array.isArray(ys) || ys.length !== xs.length) throw new CliError(`${what}: ${path}: "ys" must be an array with one label per example (${xs.length})`);
  return { ...out, labels: Int32Array.from(ys, (y, i) => toNumber(y, `${path}: label ${i}`, what)) };
}

function shapeOf(x: unknown, path: string, what: string): number[] {
  if (typeof x === 'number') return [];
  if (Array.isArray(x) && x.length > 0) return [x.length, ...shapeOf(x[0], path, what)];
  throw new CliError(`${what}: ${path}: examples must be numbers or non-empty arrays of numbers`);
}

function toNumber(v: unknown, where: string, what: string): number {
  const x = typeof v === 'string' ? Number(v) : v;
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new CliError(`${what}: ${where}: ${JSON.stringify(v)} is not a finite number`);
  return x;
}

function readCsv(text: string, path: string, what: string): ExampleArray {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const rows = lines.map((l) => l.split(/[,;\t]/).map((c) => c.trim()));
  // A first row that is not all numbers is a header.
  if (rows.length > 0 && rows[0]!.some((c) => c === '' || !Number.isFinite(Number(c)))) rows.shift();
  if (rows.length === 0) throw new CliError(`${what}: ${path} has no data rows (expected CSV with one example per row, IDX, or JSON)`);
  const per = rows[0]!.length;
  const values = new Float32Array(rows.length * per);
  rows.forEach((r, i) => {
    if (r.length !== per) throw new CliError(`${what}: ${path}: row ${i + 1} has ${r.length} columns, the first row has ${per}`);
    r.forEach((c, j) => (values[i * per + j] = toNumber(c, `row ${i + 1}, column ${j + 1}`, what)));
  });
  return { values, n: rows.length, exampleShape: per === 1 ? [] : [per], uint8: false };
}

/** Reads a labels file (IDX, CSV with one column, or JSON array) as integers. */
export function readLabels(path: string): Int32Array {
  const { values, exampleShape } = readExamples(path, '--labels');
  if (exampleShape.length !== 0) throw new CliError(`--labels: ${path} must hold one label per example, found [${exampleShape}] per example`);
  return Int32Array.from(values);
}
