/**
 * Where partial results wait for the merge: in Redis (one binary key per partial, up to a size
 * limit, default 64 MiB) or, for larger ones, as files in a directory every worker and the
 * coordinator share (`--store DIR`, written atomically: temporary file then rename). Every
 * partial is addressed by a PartialRef carrying the SHA-256 of its bytes, and `get` refuses
 * bytes that no longer match (a truncated file, a key overwritten by another run). Node only.
 */
import { readFile, readdir, rm, mkdir, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Redis } from 'ioredis';
import { DistributedError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { sha256 } from './hash.js';
import type { PartialRef } from './protocol.js';

/** Default largest partial kept in Redis (bytes); larger ones need a shared store directory. */
export const DEFAULT_MAX_REDIS_BYTES = 64 * 1024 * 1024;

/** Keys of a run's partials: letters, digits, '-' and '_' only (they become Redis keys and file names). */
const SAFE = /^[A-Za-z0-9_-]{1,128}$/;

/** Part name of a pass's merged result (kept after the run for repeated requests; every other part is removed). */
export const RESULT_PART = 'result';

/** Redis key prefix of the partials of run `runId`. */
export const partialKeyPrefix = (runId: string) => `nngeometry:partial:${runId}:`;

export class PartialStore {
  private readonly redis: Redis;
  private readonly directory: string | null;
  private readonly maxRedisBytes: number;

  /** `directory` null: every partial goes to Redis (up to `maxRedisBytes`). */
  constructor(redis: Redis, directory: string | null, maxRedisBytes: number = DEFAULT_MAX_REDIS_BYTES) {
    this.redis = redis;
    this.directory = directory === null ? null : resolve(directory);
    this.maxRedisBytes = maxRedisBytes;
  }

  private file(key: string): string {
    const dir = this.directory!;
    const path = resolve(dir, key);
    // Keys are checked by SAFE and joined as 'run/part', so this holds; kept as the confinement guard.
    if (!path.startsWith(dir + sep)) throw new DistributedError(`partial store: key '${key}' leaves the store directory ${dir}`);
    return path;
  }

  /** Stores `bytes` as part `part` of run `runId` (in the directory when set or when too large for Redis). */
  async put(runId: string, part: string, bytes: Uint8Array, ttlSeconds: number): Promise<PartialRef> {
    for (const [what, v] of [['run id', runId], ['part', part]] as const) {
      if (!SAFE.test(v)) throw new DistributedError(`partial store: ${what} '${v}' must be 1–128 letters, digits, '-' or '_'`);
    }
    const hash = sha256(bytes);
    if (this.directory === null && bytes.length > this.maxRedisBytes) {
      throw new DistributedError(
        `partial store: the partial of ${part} is ${bytes.length.toLocaleString('en-US')} bytes, above the ${this.maxRedisBytes.toLocaleString('en-US')} bytes kept in Redis; pass a directory every worker shares (--store DIR, or 'store' in the API)`,
      );
    }
    if (this.directory === null) {
      const key = `${partialKeyPrefix(runId)}${part}`;
      await this.redis.set(key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'EX', Math.max(1, Math.ceil(ttlSeconds)));
      return { store: 'redis', key, sha256: hash, bytes: bytes.length };
    }
    const key = `${runId}/${part}.ngp`;
    const path = this.file(key);
    await mkdir(join(this.directory, runId), { recursive: true });
    await writeFileAtomic(path, bytes);
    return { store: 'directory', key, sha256: hash, bytes: bytes.length };
  }

  /** Whether the partial of `ref` is still stored (its hash is checked by `get`, not here). */
  async exists(ref: PartialRef): Promise<boolean> {
    if (ref.store === 'redis') return (await this.redis.exists(ref.key)) === 1;
    if (this.directory === null) return false;
    try {
      await stat(this.file(ref.key));
      return true;
    } catch {
      return false;
    }
  }

  /** The bytes of `ref`, after checking their SHA-256 against the reference. */
  async get(ref: PartialRef): Promise<Uint8Array> {
    let bytes: Uint8Array | null;
    if (ref.store === 'redis') {
      const b = await this.redis.getBuffer(ref.key);
      bytes = b === null ? null : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } else {
      if (this.directory === null) throw new DistributedError(`partial store: partial '${ref.key}' is in a store directory, but none was given here (--store DIR)`);
      const path = this.file(ref.key);
      try {
        // Bound the read by the size the reference announces before reading.
        const s = await stat(path);
        if (s.size !== ref.bytes) throw new DistributedError(`partial store: '${path}' has ${s.size} bytes, its reference says ${ref.bytes} (truncated or replaced)`);
        bytes = new Uint8Array(await readFile(path));
      } catch (e) {
        if (e instanceof DistributedError) throw e;
        bytes = null;
      }
    }
    if (bytes === null) throw new DistributedError(`partial store: partial '${ref.key}' is missing (expired, or removed by a cancelled run)`);
    const hash = sha256(bytes);
    if (hash !== ref.sha256) throw new DistributedError(`partial store: partial '${ref.key}' fails its content hash (sha256 ${hash.slice(0, 12)}…, expected ${ref.sha256.slice(0, 12)}…); it was corrupted or overwritten`);
    return bytes;
  }

  /** Removes the partials of `refs` (missing ones are ignored). */
  async remove(refs: ReadonlyArray<PartialRef>): Promise<void> {
    const keys = refs.filter((r) => r.store === 'redis').map((r) => r.key);
    if (keys.length) await this.redis.del(...keys);
    for (const r of refs.filter((x) => x.store === 'directory')) {
      if (this.directory !== null) await rm(this.file(r.key), { force: true });
    }
  }

  /**
   * Removes every partial of run `runId` but the parts named in `keep` (a finished run keeps its
   * result for repeated requests; a cancelled or failed one keeps nothing). Called by the
   * coordinator once the run has ended, never by a merge job: a merge retried after its worker
   * died must still find its children's partials.
   */
  async removeRun(runId: string, keep: ReadonlyArray<string> = []): Promise<void> {
    if (!SAFE.test(runId)) return;
    const prefix = partialKeyPrefix(runId);
    const kept = new Set(keep.map((part) => `${prefix}${part}`));
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      keys.push(...batch.filter((k) => !kept.has(k)));
    } while (cursor !== '0');
    if (keys.length) await this.redis.del(...keys);
    if (this.directory === null) return;
    const dir = join(this.directory, runId);
    if (keep.length === 0) {
      await rm(dir, { recursive: true, force: true });
      return;
    }
    const keptFiles = new Set(keep.map((part) => `${part}.ngp`));
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return; // no partial of this run in the directory
    }
    // Everything else goes, temporary files of interrupted writes included.
    for (const name of names) if (!keptFiles.has(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
}
