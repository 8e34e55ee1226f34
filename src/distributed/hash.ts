/**
 * Content hashes of a distributed run: SHA-256 of the bytes a partial result travels as (the
 * merge refuses a partial whose bytes no longer match), of the model files and of the data files
 * (a worker whose copy differs from the coordinator's refuses the shard), and the per-shard
 * Monte-Carlo seed derived from (seed, shard index), so that sampled labels depend neither on
 * which worker runs a shard nor on how often it is retried. Node only.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { DistributedError } from '../errors.js';

/** Hex SHA-256 of `bytes`. */
export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Hex SHA-256 of several byte strings, each prefixed by its length so that boundaries count. */
function hashParts(parts: ReadonlyArray<Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(p.length));
    h.update(len).update(p);
  }
  return h.digest('hex');
}

async function readOrThrow(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new DistributedError(`${what}: cannot read '${path}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); every worker must be able to read it (shared storage)`);
  }
}

/** Cache by path, size and modification time: a worker hashes each file once while it is unchanged. */
const cache = new Map<string, { size: number; mtimeMs: number; hash: string }>();

async function cachedFileHash(path: string, what: string, hash: (bytes: Uint8Array) => Promise<string> | string): Promise<string> {
  const abs = resolve(path);
  let s;
  try {
    s = await stat(abs);
  } catch (e) {
    throw new DistributedError(`${what}: cannot read '${path}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); every worker must be able to read it (shared storage)`);
  }
  const hit = cache.get(abs);
  if (hit && hit.size === s.size && hit.mtimeMs === s.mtimeMs) return hit.hash;
  const value = await hash(await readOrThrow(abs, what));
  cache.set(abs, { size: s.size, mtimeMs: s.mtimeMs, hash: value });
  return value;
}

/**
 * SHA-256 over a model.json and, in manifest order, the weight files it lists (paths relative to
 * the model.json): two workers agree on it exactly when they would load the same weights.
 */
export async function modelHash(modelJsonPath: string): Promise<string> {
  return cachedFileHash(modelJsonPath, 'model', async (json) => {
    let manifest: Array<{ paths?: unknown }> = [];
    try {
      const parsed = JSON.parse(new TextDecoder().decode(json)) as { weightsManifest?: Array<{ paths?: unknown }> };
      manifest = Array.isArray(parsed.weightsManifest) ? parsed.weightsManifest : [];
    } catch {
      throw new DistributedError(`model: '${modelJsonPath}' is not a JSON model file (expected a tfjs model.json)`);
    }
    const shards: Uint8Array[] = [];
    for (const group of manifest) {
      for (const p of Array.isArray(group.paths) ? group.paths : []) {
        shards.push(await readOrThrow(join(dirname(resolve(modelJsonPath)), String(p)), 'model weights'));
      }
    }
    return hashParts([json, ...shards]);
  });
}

/** SHA-256 of the data file and, when given, the labels file. */
export async function dataHash(dataPath: string, labelsPath?: string): Promise<string> {
  const data = await cachedFileHash(dataPath, 'data', (b) => sha256(b));
  const labels = labelsPath === undefined ? '' : await cachedFileHash(labelsPath, 'labels', (b) => sha256(b));
  return sha256(`${data}:${labels}`);
}

/**
 * The Monte-Carlo seed of shard `index` of a run seeded with `seed`: the first 32 bits of
 * SHA-256("nngeometry-shard-seed:seed:index"). It depends only on the run's seed and the shard,
 * so the sampled labels (and the estimate) are the same for any number of workers and retries.
 */
export function shardSeed(seed: number, index: number): number {
  return Number.parseInt(sha256(`nngeometry-shard-seed:${seed}:${index}`).slice(0, 8), 16);
}

/** JSON with the keys of every object sorted, at every depth: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The default id of a run: `prefix`, '-' and 20 hex digits of SHA-256 over everything that
 * defines its result (as canonical JSON, so that nested definitions such as a PMatMixed's groups
 * count in full).
 */
export function runIdFor(prefix: string, definition: unknown): string {
  return `${prefix}-${sha256(canonicalJson(definition)).slice(0, 20)}`;
}
