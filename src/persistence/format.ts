/**
 * The file format of saved objects, version 2:
 *
 *   bytes 0–7    "NNGEOM02"
 *   bytes 8–11   header length L (uint32, little-endian)
 *   bytes 12–19  total file length N (uint32 low word, uint32 high word)
 *   bytes 20–23  CRC-32C of bytes 0–19 followed by bytes 24–(N−1) (everything but itself)
 *   bytes 24–    the header (L bytes of UTF-8 JSON), zero padding to a multiple of 8, then the
 *                payload: the arrays, each starting at a multiple of 8, zero padding between.
 *
 * The header names the object's kind (its registry name), the layers it lives on (ids, kinds,
 * parameter shapes), its state (meta scalars, the names of its arrays, its parts) and every array
 * (name, dtype, length, byte offset in the payload). Decoding checks, before any array is read:
 * the signature, the length (truncation), the checksum (any flipped bit), then every header
 * field's type and range, and that the arrays are laid out exactly as the encoder lays them out
 * (in order, aligned, no overlap, no aliasing, no gap beyond alignment, ending at the file's end),
 * so that the memory a load takes is bounded by the file's size. Every value must be finite.
 *
 * Version 1 ("NNGEOM01", no length, no checksum, `meta` and flat arrays) still loads, with the
 * same header and layout checks.
 */
import { InvalidArgumentError } from '../errors.js';
import type { RepresentationState, StatePart, StateScalar } from '../object/pspace/state.js';
import { crc32c } from './crc32c.js';

export const MAGIC = 'NNGEOM02';
export const MAGIC_V1 = 'NNGEOM01';
export const FORMAT_VERSION = 2;
/** Bytes before the header: signature, header length, file length, checksum. */
export const PREFIX_BYTES = 24;
/** Deepest nesting of parts (a PMatMixed's groups are one level). */
const MAX_DEPTH = 4;

/** Thrown for a truncated, corrupted, wrong-version or mismatched file, naming what is wrong. */
export class PersistenceError extends InvalidArgumentError {}

export interface ArrayEntry {
  name: string;
  dtype: 'float32' | 'float64';
  length: number;
  offset: number;
}

export interface SavedLayer {
  id: string;
  kind: string;
  shapes: number[][];
}

/** A state in the header: arrays by name (their bytes are in the payload). */
interface HeaderState {
  meta: Record<string, StateScalar>;
  arrays: string[];
  parts?: Array<{ kind: string; layerIds: string[]; state: HeaderState }>;
}

export interface Header {
  format: 'nngeometry';
  version: number;
  kind: string;
  layers: SavedLayer[];
  state: HeaderState;
  arrays: ArrayEntry[];
}

/** A decoded file: the kind, the saved layers and the state with its arrays (copies). */
export interface Decoded {
  version: number;
  kind: string;
  layers: SavedLayer[];
  state: RepresentationState;
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;
const ARRAY_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** The bytes of a state saved as `kind` on `layers`. */
export function encode(kind: string, layers: SavedLayer[], state: RepresentationState): Uint8Array {
  const arrays: Array<{ name: string; data: Float32Array | Float64Array }> = [];
  const flatten = (s: RepresentationState, prefix: string, depth: number): HeaderState => {
    if (depth > MAX_DEPTH) throw new PersistenceError(`save: parts nested deeper than ${MAX_DEPTH} levels`);
    const names = Object.keys(s.arrays);
    for (const name of names) {
      if (!ARRAY_NAME.test(name)) throw new PersistenceError(`save: array name '${name}' is not letters, digits and '_'`);
      const data = s.arrays[name]!;
      if (!(data instanceof Float32Array || data instanceof Float64Array)) throw new PersistenceError(`save: array '${name}' is not a Float32Array or Float64Array`);
      arrays.push({ name: prefix + name, data });
    }
    const out: HeaderState = { meta: { ...s.meta }, arrays: names };
    if (s.parts) out.parts = s.parts.map((p, j) => ({ kind: p.kind, layerIds: [...p.layerIds], state: flatten(p.state, `${prefix}parts.${j}.`, depth + 1) }));
    return out;
  };
  const headerState = flatten(state, '', 0);
  let offset = 0;
  const entries: ArrayEntry[] = arrays.map(({ name, data }) => {
    const e: ArrayEntry = { name, dtype: data instanceof Float64Array ? 'float64' : 'float32', length: data.length, offset };
    offset = align8(offset + data.byteLength);
    return e;
  });
  const header: Header = { format: 'nngeometry', version: FORMAT_VERSION, kind, layers, state: headerState, arrays: entries };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = align8(PREFIX_BYTES + json.length);
  const total = start + offset;
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, json.length, true);
  view.setUint32(12, total % 2 ** 32, true);
  view.setUint32(16, Math.floor(total / 2 ** 32), true);
  out.set(json, PREFIX_BYTES);
  arrays.forEach(({ data }, i) => out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), start + entries[i]!.offset));
  view.setUint32(20, checksum(out), true);
  return out;
}

/** CRC-32C of every byte but the checksum field itself. */
function checksum(bytes: Uint8Array): number {
  return crc32c(bytes.subarray(PREFIX_BYTES), crc32c(bytes.subarray(0, 20)));
}

/** Decodes and validates a saved file (any supported version). */
export function decode(bytes: Uint8Array): Decoded {
  if (!(bytes instanceof Uint8Array)) throw new PersistenceError(`load: expected the bytes of a saved object (Uint8Array), received ${typeof bytes}`);
  const signature = bytes.length >= 8 ? String.fromCharCode(...bytes.subarray(0, 8)) : '';
  if (signature === MAGIC_V1) return decodeV1(bytes);
  if (signature !== MAGIC) {
    if (/^NNGEOM\d\d$/.test(signature)) {
      throw new PersistenceError(`load: format version ${Number(signature.slice(6))} is not supported by this version of nngeometry (it reads versions 1 and ${FORMAT_VERSION}); upgrade nngeometry`);
    }
    throw new PersistenceError(`load: this is not an nngeometry file (missing the ${MAGIC} signature)`);
  }
  if (bytes.length < PREFIX_BYTES) throw new PersistenceError(`load: the file is truncated (${bytes.length} bytes, shorter than the ${PREFIX_BYTES}-byte prefix)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8, true);
  const total = view.getUint32(12, true) + view.getUint32(16, true) * 2 ** 32;
  if (bytes.length < total) throw new PersistenceError(`load: the file is truncated (${bytes.length} bytes, the header says ${total})`);
  if (bytes.length > total) throw new PersistenceError(`load: the file is corrupted (${bytes.length} bytes, the header says ${total}: ${bytes.length - total} trailing bytes)`);
  const stored = view.getUint32(20, true);
  const actual = checksum(bytes);
  if (stored !== actual) {
    throw new PersistenceError(`load: the file is corrupted (checksum mismatch: stored CRC-32C ${hex(stored)}, computed ${hex(actual)}); it was damaged after it was saved`);
  }
  if (PREFIX_BYTES + length > total) throw new PersistenceError(`load: the file is corrupted (header of ${length} bytes in a file of ${total})`);
  const raw = parseJson(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + length));
  const header = checkHeader(raw, 2);
  const start = align8(PREFIX_BYTES + length);
  checkZero(bytes, PREFIX_BYTES + length, start, 'the padding after the header');
  const arrays = readArrays(bytes, header.arrays, start);
  const used = new Set<string>();
  const state = buildState(header.state, '', arrays, used, 0);
  const unused = header.arrays.find((e) => !used.has(e.name));
  if (unused) throw new PersistenceError(`load: the file is corrupted (array '${unused.name}' belongs to no part of the state)`);
  return { version: 2, kind: header.kind, layers: header.layers, state };
}

/** Version 1: "NNGEOM01" | L (uint32) | header | padding | arrays; `meta` and flat arrays, no checksum. */
function decodeV1(bytes: Uint8Array): Decoded {
  if (bytes.length < 12) throw new PersistenceError(`load: the file is truncated (${bytes.length} bytes)`);
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + length > bytes.length) throw new PersistenceError(`load: the file is truncated (header of ${length} bytes, file of ${bytes.length})`);
  const header = checkHeader(parseJson(bytes.subarray(12, 12 + length)), 1) as unknown as Omit<Header, 'state'> & { meta: Record<string, StateScalar> };
  const start = align8(12 + length);
  checkZero(bytes, Math.min(12 + length, bytes.length), Math.min(start, bytes.length), 'the padding after the header');
  const arrays = readArrays(bytes, header.arrays, start);
  return { version: 1, kind: header.kind, layers: header.layers, state: { meta: header.meta, arrays: Object.fromEntries(arrays) } };
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new PersistenceError('load: the header is corrupted (not valid UTF-8 JSON)');
  }
}

function checkZero(bytes: Uint8Array, from: number, to: number, what: string): void {
  for (let k = from; k < to; k++) if (bytes[k] !== 0) throw new PersistenceError(`load: the file is corrupted (${what} is not zero at byte ${k})`);
}

/**
 * The arrays, checked against the exact layout the encoder writes (so none overlap, alias or
 * reach past the file, and together they take no more than the file's bytes), then copied and
 * checked finite.
 */
function readArrays(bytes: Uint8Array, entries: readonly ArrayEntry[], start: number): Map<string, Float32Array | Float64Array> {
  let expected = 0;
  for (const e of entries) {
    const width = e.dtype === 'float64' ? 8 : 4;
    if (e.offset !== expected) throw new PersistenceError(`load: the file is corrupted (array '${e.name}' starts at payload byte ${e.offset}, expected ${expected}: arrays must follow one another, 8-byte aligned, without overlap)`);
    const end = start + e.offset + e.length * width;
    if (end > bytes.length) throw new PersistenceError(`load: the file is truncated (array '${e.name}' of ${e.length} ${e.dtype} values ends at byte ${end}, the file has ${bytes.length})`);
    expected = align8(e.offset + e.length * width);
    checkZero(bytes, end, Math.min(start + expected, bytes.length), `the padding after array '${e.name}'`);
  }
  if (start + expected < bytes.length) throw new PersistenceError(`load: the file is corrupted (${bytes.length - start - expected} bytes after the last array)`);
  if (start + expected > bytes.length) throw new PersistenceError(`load: the file is truncated (the arrays end at byte ${start + expected}, the file has ${bytes.length})`);
  const out = new Map<string, Float32Array | Float64Array>();
  for (const e of entries) {
    const begin = start + e.offset;
    const copy = bytes.slice(begin, begin + e.length * (e.dtype === 'float64' ? 8 : 4)).buffer;
    const a = e.dtype === 'float64' ? new Float64Array(copy) : new Float32Array(copy);
    const k = e.dtype === 'float64' ? firstNonFinite64(a as Float64Array) : firstNonFinite32(a as Float32Array);
    if (k >= 0) throw new PersistenceError(`load: the file is corrupted (array '${e.name}' holds ${a[k]} at index ${k}; saved values are finite)`);
    out.set(e.name, a);
  }
  return out;
}

/**
 * Index of the first value of `a` that is NaN or ±∞, or −1. x·0 is ±0 for every finite x and NaN
 * otherwise, so one branch-free sum over the array decides, and only a corrupted array is scanned
 * again for the index. One function per array type, so that each loop sees one element kind.
 */
function firstNonFinite64(a: Float64Array): number {
  let probe = 0;
  for (let k = 0; k < a.length; k++) probe += a[k]! * 0;
  if (probe === 0) return -1;
  for (let k = 0; k < a.length; k++) if (!Number.isFinite(a[k]!)) return k;
  return -1;
}

function firstNonFinite32(a: Float32Array): number {
  let probe = 0;
  for (let k = 0; k < a.length; k++) probe += a[k]! * 0;
  if (probe === 0) return -1;
  for (let k = 0; k < a.length; k++) if (!Number.isFinite(a[k]!)) return k;
  return -1;
}

function buildState(h: HeaderState, prefix: string, arrays: Map<string, Float32Array | Float64Array>, used: Set<string>, depth: number): RepresentationState {
  const own: Record<string, Float32Array | Float64Array> = {};
  for (const name of h.arrays) {
    const a = arrays.get(prefix + name);
    if (!a) throw new PersistenceError(`load: the file is corrupted (the state names array '${prefix + name}', which the file does not hold)`);
    if (used.has(prefix + name)) throw new PersistenceError(`load: the file is corrupted (array '${prefix + name}' is named twice)`);
    used.add(prefix + name);
    own[name] = a;
  }
  const parts: StatePart[] | undefined = h.parts?.map((p, j) => ({ kind: p.kind, layerIds: p.layerIds, state: buildState(p.state, `${prefix}parts.${j}.`, arrays, used, depth + 1) }));
  return parts ? { meta: h.meta, arrays: own, parts } : { meta: h.meta, arrays: own };
}

// ---------------------------------------------------------------- header validation

type Json = unknown;
const isRecord = (x: Json): x is Record<string, Json> => typeof x === 'object' && x !== null && !Array.isArray(x);

function corrupted(what: string): never {
  throw new PersistenceError(`load: the header is corrupted (${what})`);
}

function exactKeys(x: Json, required: readonly string[], optional: readonly string[], where: string): Record<string, Json> {
  if (!isRecord(x)) corrupted(`${where} is not an object`);
  for (const k of required) if (!(k in x)) corrupted(`${where} has no '${k}'`);
  for (const k of Object.keys(x)) if (!required.includes(k) && !optional.includes(k)) corrupted(`${where} has an unknown field '${k}'`);
  return x;
}

function name(x: Json, where: string, pattern?: RegExp): string {
  if (typeof x !== 'string' || x.length === 0 || x.length > 1000 || (pattern && !pattern.test(x))) corrupted(`${where} is not a valid name: ${JSON.stringify(x)?.slice(0, 80)}`);
  return x;
}

function count(x: Json, where: string): number {
  if (!(typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) corrupted(`${where} is not an integer ≥ 0: ${JSON.stringify(x)}`);
  return x;
}

function list(x: Json, where: string): Json[] {
  if (!Array.isArray(x)) corrupted(`${where} is not an array`);
  return x;
}

function checkMeta(x: Json, where: string): Record<string, StateScalar> {
  if (!isRecord(x)) corrupted(`${where} is not an object`);
  for (const [k, v] of Object.entries(x)) {
    const ok = v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
    if (!ok) corrupted(`${where}.${k} is not a string, finite number, boolean or null`);
  }
  return x as Record<string, StateScalar>;
}

function checkHeaderState(x: Json, where: string, layerIds: ReadonlySet<string>, depth: number): HeaderState {
  if (depth > MAX_DEPTH) corrupted(`parts nested deeper than ${MAX_DEPTH} levels`);
  const s = exactKeys(x, ['meta', 'arrays'], ['parts'], where);
  const arrays = list(s.arrays, `${where}.arrays`).map((a, i) => name(a, `${where}.arrays[${i}]`, ARRAY_NAME));
  const out: HeaderState = { meta: checkMeta(s.meta, `${where}.meta`), arrays };
  if (s.parts !== undefined) {
    out.parts = list(s.parts, `${where}.parts`).map((p, j) => {
      const at = `${where}.parts[${j}]`;
      const part = exactKeys(p, ['kind', 'layerIds', 'state'], [], at);
      const ids = list(part.layerIds, `${at}.layerIds`).map((id, i) => name(id, `${at}.layerIds[${i}]`));
      for (const id of ids) if (!layerIds.has(id)) corrupted(`${at} names layer '${id}', which the file's layers do not include`);
      return { kind: name(part.kind, `${at}.kind`), layerIds: ids, state: checkHeaderState(part.state, `${at}.state`, layerIds, depth + 1) };
    });
  }
  return out;
}

/** Every field's type and range; array names unique; layer ids unique. */
function checkHeader(raw: Json, version: 1 | 2): Header {
  const h = exactKeys(raw, ['format', 'version', 'kind', 'layers', version === 2 ? 'state' : 'meta', 'arrays'], [], 'the header');
  if (h.format !== 'nngeometry') corrupted(`format is ${JSON.stringify(h.format)}, not "nngeometry"`);
  if (h.version !== version) {
    if (typeof h.version === 'number') throw new PersistenceError(`load: format version ${h.version} is not supported here (the signature says version ${version})`);
    corrupted(`version is ${JSON.stringify(h.version)}`);
  }
  const kind = name(h.kind, 'kind', /^[A-Za-z][A-Za-z0-9_]*$/);
  const ids = new Set<string>();
  const layers = list(h.layers, 'layers').map((l, i): SavedLayer => {
    const e = exactKeys(l, ['id', 'kind', 'shapes'], [], `layers[${i}]`);
    const id = name(e.id, `layers[${i}].id`);
    if (ids.has(id)) corrupted(`layer '${id}' is listed twice`);
    ids.add(id);
    const shapes = list(e.shapes, `layers[${i}].shapes`).map((s, j) => list(s, `layers[${i}].shapes[${j}]`).map((n, k) => count(n, `layers[${i}].shapes[${j}][${k}]`)));
    return { id, kind: name(e.kind, `layers[${i}].kind`), shapes };
  });
  const names = new Set<string>();
  const arrays = list(h.arrays, 'arrays').map((a, i): ArrayEntry => {
    const e = exactKeys(a, ['name', 'dtype', 'length', 'offset'], [], `arrays[${i}]`);
    const n = name(e.name, `arrays[${i}].name`, version === 2 ? /^(parts\.\d+\.)*[A-Za-z][A-Za-z0-9_]*$/ : ARRAY_NAME);
    if (names.has(n)) corrupted(`array '${n}' is listed twice`);
    names.add(n);
    if (e.dtype !== 'float32' && e.dtype !== 'float64') corrupted(`array '${n}' has dtype ${JSON.stringify(e.dtype)}, not 'float32' or 'float64'`);
    const offset = count(e.offset, `arrays[${i}].offset`);
    if (offset % 8 !== 0) corrupted(`array '${n}' starts at payload byte ${offset}, not a multiple of 8`);
    return { name: n, dtype: e.dtype, length: count(e.length, `arrays[${i}].length`), offset };
  });
  if (version === 1) return { format: 'nngeometry', version, kind, layers, meta: checkMeta(h.meta, 'meta'), arrays } as unknown as Header;
  return { format: 'nngeometry', version, kind, layers, state: checkHeaderState(h.state, 'state', ids, 0), arrays };
}
