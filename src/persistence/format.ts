/**
 * The file format of saved objects: one binary blob
 *   "NNGEOM01" (8 bytes) | header length L (uint32, little-endian) | header (L bytes of UTF-8 JSON)
 *   | zero padding to a multiple of 8 | payload (the arrays, each 8-byte aligned)
 * The header names the object's kind, the format version, the layer collection (ids, kinds,
 * parameter shapes) and every array (name, dtype, length, byte offset in the payload). Float64
 * arrays stay float64, so round trips are exact.
 */
import { InvalidArgumentError } from '../errors.js';

export const MAGIC = 'NNGEOM01';
export const FORMAT_VERSION = 1;

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

export interface Header {
  format: 'nngeometry';
  version: number;
  kind: string;
  layers: SavedLayer[];
  /** Kind-specific scalars and strings (e.g. kfacType, scaling). */
  meta: Record<string, string | number | boolean | null>;
  arrays: ArrayEntry[];
}

/** Thrown for a truncated, corrupted, wrong-version or mismatched file. */
export class PersistenceError extends InvalidArgumentError {}

export type NamedArray = { name: string; data: Float32Array | Float64Array };

const align8 = (n: number) => (n + 7) & ~7;

export function encode(header: Omit<Header, 'arrays' | 'format' | 'version'>, arrays: NamedArray[]): Uint8Array {
  let offset = 0;
  const entries: ArrayEntry[] = arrays.map(({ name, data }) => {
    const e: ArrayEntry = { name, dtype: data instanceof Float64Array ? 'float64' : 'float32', length: data.length, offset };
    offset = align8(offset + data.byteLength);
    return e;
  });
  const json = new TextEncoder().encode(JSON.stringify({ format: 'nngeometry', version: FORMAT_VERSION, ...header, arrays: entries }));
  const start = align8(12 + json.length);
  const out = new Uint8Array(start + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  arrays.forEach(({ data }, i) => out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), start + entries[i]!.offset));
  return out;
}

export function decode(bytes: Uint8Array): { header: Header; arrays: Map<string, Float32Array | Float64Array> } {
  if (!(bytes instanceof Uint8Array)) throw new PersistenceError(`load: expected the bytes of a saved object (Uint8Array), received ${typeof bytes}`);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new PersistenceError(`load: this is not an nngeometry file (missing the ${MAGIC} signature)`);
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + length > bytes.length) throw new PersistenceError(`load: the file is truncated (header of ${length} bytes, file of ${bytes.length})`);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length))) as Header;
  } catch {
    throw new PersistenceError('load: the header is corrupted (not valid JSON)');
  }
  if (header.format !== 'nngeometry' || !Array.isArray(header.arrays) || !Array.isArray(header.layers)) {
    throw new PersistenceError('load: the header is corrupted (missing fields)');
  }
  if (header.version !== FORMAT_VERSION) {
    throw new PersistenceError(`load: format version ${header.version} is not supported by this version of nngeometry (expected ${FORMAT_VERSION})`);
  }
  const start = align8(12 + length);
  const arrays = new Map<string, Float32Array | Float64Array>();
  for (const e of header.arrays) {
    const width = e.dtype === 'float64' ? 8 : 4;
    const begin = start + e.offset;
    if (begin + e.length * width > bytes.length) throw new PersistenceError(`load: the file is truncated (array '${e.name}' is incomplete)`);
    const copy = bytes.slice(begin, begin + e.length * width).buffer;
    arrays.set(e.name, e.dtype === 'float64' ? new Float64Array(copy) : new Float32Array(copy));
  }
  return { header, arrays };
}
