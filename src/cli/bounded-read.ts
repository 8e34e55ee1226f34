/**
 * Reading a `--data`/`--labels` file with bounded memory, gzipped or not (Node only). A gzip
 * file is inflated as a stream, never whole: a 0.5 MB file can inflate to gigabytes (a "zip
 * bomb"), so the output is capped and inflation stops as soon as what is needed has been read.
 *
 * - IDX files: the header (the first 4 + 4·rank bytes) says how many bytes the file holds. With
 *   `examples` set (`--count`), reading stops after the header and that many examples; otherwise
 *   the whole file is read and must end exactly where the header says. Either way the bytes to
 *   read are compared with MAX_IDX_BYTES from the header, before reading them.
 * - Anything else (CSV, JSON) is read whole, up to MAX_TEXT_BYTES.
 * Only regular files are read (a fifo or a device such as /dev/zero is refused up front).
 */
import { createReadStream, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { CliError } from './errors.js';
import { type IdxHeader, idxHeader, looksLikeIdx } from './idx.js';
import { humanBytes } from './format.js';

/** The most bytes an IDX file may inflate to for one run (1 GiB): pass --count to read a prefix of a larger one. */
export const MAX_IDX_BYTES = 1024 ** 3;
/** The most bytes a CSV or JSON file may hold, after decompression (256 MiB). */
export const MAX_TEXT_BYTES = 256 * 1024 ** 2;

/** What was read: the bytes, and the IDX header when the file is IDX. */
export interface BoundedBytes {
  readonly bytes: Uint8Array;
  readonly idx?: IdxHeader;
  readonly gzipped: boolean;
}

/** The largest IDX header: magic (4 bytes) and 4 dimensions of 4 bytes. */
const MAX_IDX_HEADER = 4 + 4 * 4;

/** True when the first bytes of the file are the gzip magic number. */
async function isGzip(path: string): Promise<boolean> {
  const stream = createReadStream(path, { start: 0, end: 1 });
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  const head = Buffer.concat(chunks);
  return head.length === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, total - at);
    out.set(c.subarray(0, take), at);
    at += take;
    if (at === total) break;
  }
  return out;
}

/**
 * Reads `path` (see the file comment); `what` names the flag in errors ('--data').
 *
 * @param examples read only the first `examples` examples of an IDX file.
 * @throws CliError naming the flag, the file and the limit that was hit.
 */
export async function readBounded(path: string, what: string, examples?: number): Promise<BoundedBytes> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new CliError(`${what}: file not found: ${path}`);
  }
  if (!st.isFile()) throw new CliError(`${what}: not a regular file: ${path}`);
  const gzipped = await isGzip(path);
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const source = gzipped ? file.pipe(createGunzip({ chunkSize: 1 << 16 })) : file;
  file.on('error', (e) => source.destroy(e));
  const chunks: Uint8Array[] = [];
  let total = 0;
  // Bytes wanted (undefined until the header is known) and whether the stream must end there.
  let wanted: number | undefined;
  let exact = false;
  let idx: IdxHeader | undefined;
  let decided = false;
  const decide = (head: Uint8Array) => {
    decided = true;
    idx = looksLikeIdx(head) ? idxHeader(head) : undefined;
    if (!idx) {
      wanted = MAX_TEXT_BYTES;
      return;
    }
    const n = idx.shape[0]!;
    const take = examples === undefined ? n : Math.min(examples, n);
    wanted = idx.headerBytes + take * idx.exampleBytes;
    exact = take === n;
    if (wanted > MAX_IDX_BYTES) {
      throw new CliError(
        `${what}: ${path} holds [${idx.shape}] ${idx.typeName} by its IDX header; reading ${take.toLocaleString('en-US')} examples needs ${humanBytes(wanted)}, more than the ${humanBytes(MAX_IDX_BYTES)} limit; pass a smaller --count`,
      );
    }
  };
  try {
    for await (const chunk of source) {
      const c = chunk as Uint8Array;
      chunks.push(c);
      total += c.length;
      if (!decided && total >= MAX_IDX_HEADER) decide(concat(chunks, Math.min(total, MAX_IDX_HEADER)));
      if (decided && idx && total >= wanted! && !exact) break; // the examples asked for are in
      if (decided && total > wanted!) {
        if (idx) throw new CliError(`${what}: ${path} is longer than its IDX header says ([${idx.shape}] ${idx.typeName}, ${idx.totalBytes} bytes)`);
        throw new CliError(`${what}: ${path} holds more than ${humanBytes(MAX_TEXT_BYTES)}${gzipped ? ' once decompressed' : ''}, the limit of a CSV or JSON file; use an IDX file, or split the data`);
      }
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    const why = (e as Error).message.split('\n')[0];
    throw new CliError(gzipped ? `${what}: ${path} looks gzipped but does not decompress (${why})` : `${what}: cannot read ${path} (${why})`);
  } finally {
    source.destroy();
    file.destroy();
  }
  if (!decided) decide(concat(chunks, total));
  const bytes = concat(chunks, idx ? Math.min(total, wanted!) : total);
  return { bytes, gzipped, ...(idx ? { idx } : {}) };
}
