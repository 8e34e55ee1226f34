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

/** What an IDX header says: the shape, the element type, and the bytes of header and of one example. */
export interface IdxHeader {
  readonly shape: number[];
  readonly typeName: string;
  readonly elementBytes: number;
  readonly headerBytes: number;
  /** Bytes of one example (the product of the dimensions after the first, times the element size). */
  readonly exampleBytes: number;
  /** Bytes of the whole file as the header describes it. */
  readonly totalBytes: number;
}

/**
 * Reads the header at the start of `bytes` (at least 4 + 4·rank bytes of an IDX file), or
 * undefined when `bytes` do not start like IDX or are too short to hold the header.
 */
export function idxHeader(bytes: Uint8Array): IdxHeader | undefined {
  if (!looksLikeIdx(bytes)) return undefined;
  const type = TYPES[bytes[2]!]!;
  const rank = bytes[3]!;
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: rank }, (_, k) => view.getUint32(4 + 4 * k, false));
  const exampleBytes = shape.slice(1).reduce((a, b) => a * b, 1) * type.size;
  return { shape, typeName: type.name, elementBytes: type.size, headerBytes, exampleBytes, totalBytes: headerBytes + shape[0]! * exampleBytes };
}

/**
 * Parses an IDX file (already decompressed), or its first `examples` examples when `bytes` hold
 * only those (a file read partly: the returned shape then starts with `examples`).
 *
 * @throws Error naming `source` when the header or the length is wrong.
 * @example
 * const { shape, data } = parseIdx(bytes, 'images.idx'); // shape [2000, 28, 28], data Uint8Array
 */
export function parseIdx(bytes: Uint8Array, source: string, examples?: number): IdxArray {
  if (!looksLikeIdx(bytes)) throw new Error(`${source} is not an IDX file (bad magic number)`);
  const head = idxHeader(bytes);
  if (!head) throw new Error(`${source}: truncated IDX header`);
  const type = { size: head.elementBytes, name: head.typeName };
  const header = head.headerBytes;
  const n = examples === undefined ? head.shape[0]! : Math.min(examples, head.shape[0]!);
  const shape = [n, ...head.shape.slice(1)];
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = header + count * type.size;
  if (bytes.length !== expected) {
    throw new Error(`${source}: IDX header says [${head.shape}] ${type.name} (${head.totalBytes} bytes) but the file has ${bytes.length} bytes${n < head.shape[0]! ? ` (${expected} expected for its first ${n} examples)` : ''}`);
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
