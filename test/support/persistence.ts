/**
 * Test helpers for the saved-file format: the version-1 encoder exactly as nngeometry wrote it
 * (to check that old files still load), and a way to craft a version-2 file with any header and
 * a valid checksum (what an attacker or a buggy writer could produce).
 */
import { crc32c } from '../../src/persistence/crc32c.js';

const align8 = (n: number) => (n + 7) & ~7;

/** The version-1 encoder ("NNGEOM01" | L | header JSON | padding | arrays), as shipped before format 2. */
export function encodeV1(
  header: { kind: string; layers: Array<{ id: string; kind: string; shapes: number[][] }>; meta: Record<string, string | number | boolean | null> },
  arrays: Array<{ name: string; data: Float32Array | Float64Array }>,
): Uint8Array {
  let offset = 0;
  const entries = arrays.map(({ name, data }) => {
    const e = { name, dtype: data instanceof Float64Array ? 'float64' : 'float32', length: data.length, offset };
    offset = align8(offset + data.byteLength);
    return e;
  });
  const json = new TextEncoder().encode(JSON.stringify({ format: 'nngeometry', version: 1, ...header, arrays: entries }));
  const start = align8(12 + json.length);
  const out = new Uint8Array(start + offset);
  out.set(new TextEncoder().encode('NNGEOM01'), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  arrays.forEach(({ data }, i) => out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), start + entries[i]!.offset));
  return out;
}

/** The header of a version-2 file, parsed. */
export function headerOf(bytes: Uint8Array): Record<string, unknown> {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(24, 24 + length))) as Record<string, unknown>;
}

/** Recomputes the length and checksum fields of a version-2 file in place (after a deliberate change). */
export function resign(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(12, bytes.length % 2 ** 32, true);
  view.setUint32(16, Math.floor(bytes.length / 2 ** 32), true);
  view.setUint32(20, crc32c(bytes.subarray(24), crc32c(bytes.subarray(0, 20))), true);
  return bytes;
}

/**
 * A version-2 file with `header` (any JSON) and `payload` as its arrays' bytes, with valid
 * length and checksum fields.
 */
export function craft(header: unknown, payload: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = align8(24 + json.length);
  const out = new Uint8Array(start + payload.length);
  out.set(new TextEncoder().encode('NNGEOM02'), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 24);
  out.set(payload, start);
  return resign(out);
}

/** The payload (the arrays' bytes) of a version-2 file. */
export function payloadOf(bytes: Uint8Array): Uint8Array {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  return bytes.slice(align8(24 + length));
}

/** A seeded uniform generator in [0, 1) (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
