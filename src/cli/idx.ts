/**
 * The IDX format of (Fashion-)MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
 * [0, 0, type, rank], `rank` big-endian uint32 dimensions, then the values row-major. Pure code
 * (no Node built-ins) so that the browser demo reads the same bundled files.
 */

/** An IDX tensor: its shape and its values (uint8 data stays uint8; other types are widened). */
export interface IdxArray {
  readonly shape: number[];
  readonly data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** Type byte → (element size, reader). IDX stores everything big-endian. */
const TYPES: Record<number, { size: number; name: string }> = {
  0x08: { size: 1, name: 'uint8' },
  0x09: { size: 1, name: 'int8' },
  0x0b: { size: 2, name: 'int16' },
  0x0c: { size: 4, name: 'int32' },
  0x0d: { size: 4, name: 'float32' },
  0x0e: { size: 8, name: 'float64' },
};

/** True when `bytes` start like an IDX file (two zero bytes, a known type, a rank 1–4). */
export function looksLikeIdx(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0 && bytes[2]! in TYPES && bytes[3]! >= 1 && bytes[3]! <= 4;
}

/**
 * Parses an IDX file (already decompressed).
 *
 * @throws Error naming `source` when the header or the length is wrong.
 * @example
 * const { shape, data } = parseIdx(bytes, 'images.idx'); // shape [2000, 28, 28], data Uint8Array
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  if (!looksLikeIdx(bytes)) throw new Error(`${source} is not an IDX file (bad magic number)`);
  const type = TYPES[bytes[2]!]!;
  const rank = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = 4 + 4 * rank;
  if (bytes.length < header) throw new Error(`${source}: truncated IDX header`);
  const shape = Array.from({ length: rank }, (_, k) => view.getUint32(4 + 4 * k, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = header + count * type.size;
  if (bytes.length !== expected) {
    throw new Error(`${source}: IDX header says [${shape}] ${type.name} (${expected} bytes) but the file has ${bytes.length} bytes`);
  }
  const body = bytes.subarray(header);
  switch (type.name) {
    case 'uint8':
      return { shape, data: body };
    case 'int8':
      return { shape, data: new Int8Array(body.buffer, body.byteOffset, count) };
    default: {
      // Multi-byte types are big-endian: read them one by one rather than through a typed view.
      const out = type.name === 'int16' ? new Int16Array(count) : type.name === 'int32' ? new Int32Array(count) : type.name === 'float32' ? new Float32Array(count) : new Float64Array(count);
      const bodyView = new DataView(body.buffer, body.byteOffset, body.byteLength);
      for (let i = 0; i < count; i++) {
        const o = i * type.size;
        out[i] =
          type.name === 'int16' ? bodyView.getInt16(o, false)
          : type.name === 'int32' ? bodyView.getInt32(o, false)
          : type.name === 'float32' ? bodyView.getFloat32(o, false)
          : bodyView.getFloat64(o, false);
      }
      return { shape, data: out };
    }
  }
}

/** Encodes a uint8 array as IDX (type 0x08), e.g. to bundle a slice of a data set. */
export function encodeIdxUint8(shape: readonly number[], data: Uint8Array): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeIdxUint8: shape [${shape}] holds ${count} values, data has ${data.length}`);
  const out = new Uint8Array(4 + 4 * shape.length + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = shape.length;
  shape.forEach((d, k) => view.setUint32(4 + 4 * k, d, false));
  out.set(data, 4 + 4 * shape.length);
  return out;
}
