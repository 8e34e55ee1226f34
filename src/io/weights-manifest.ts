/**
 * Checks of a tfjs weights manifest before any byte of weight data is read or decoded: every
 * entry's name, dtype and shape, and the bytes each group of shards must hold. tfjs's own decoder
 * answers a malformed entry with a raw error (or, for a negative dimension, a wrong byte count),
 * and leaks the tensors it decoded before failing; checking first keeps both out of reach.
 * Browser-safe (no Node built-ins).
 */
import type { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../validation.js';

/** Bytes of one stored element for each dtype tfjs writes (the quantized ones are decoded to float32). */
const BYTES_PER_ELEMENT: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANTIZED_BYTES: Readonly<Record<string, number>> = { uint8: 1, uint16: 2, float16: 2 };

/** A weights manifest group as it appears in model.json: shard paths and the entries they hold, in order. */
export interface ManifestGroup {
  readonly paths: readonly string[];
  readonly weights: readonly tf.io.WeightsManifestEntry[];
  /**
   * SHA-256 (lowercase hex) of the group's shards concatenated, written by `saveModel`; absent
   * from files other tools wrote (tfjs ignores the field). A loader that finds it checks it.
   */
  readonly sha256?: string;
}

/**
 * Bytes of one manifest entry, after checking its name, dtype, quantization and shape.
 *
 * @throws InvalidArgumentError naming `where`, the entry and what is wrong with it.
 */
export function entryBytes(entry: unknown, index: number, where: string): number {
  if (typeof entry !== 'object' || entry === null) throw new InvalidArgumentError(`${where}: weights entry ${index} must be an object { name, shape, dtype }, received ${describe(entry)}`);
  const e = entry as Partial<tf.io.WeightsManifestEntry>;
  const label = typeof e.name === 'string' && e.name.length > 0 ? `weight '${e.name}'` : `weights entry ${index}`;
  if (typeof e.name !== 'string' || e.name.length === 0) throw new InvalidArgumentError(`${where}: ${label} has no name (received ${describe(e.name)})`);
  if (!Array.isArray(e.shape)) throw new InvalidArgumentError(`${where}: ${label} has no shape array (received ${describe(e.shape)})`);
  let size = 1;
  for (const d of e.shape as unknown[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new InvalidArgumentError(`${where}: ${label} has shape [${(e.shape as unknown[]).join(', ')}]; every dimension must be an integer ≥ 0`);
    }
    size *= d;
  }
  if (!Number.isSafeInteger(size)) throw new InvalidArgumentError(`${where}: ${label} has shape [${e.shape.join(', ')}], more elements than can be stored`);
  const dtype = e.dtype as string | undefined;
  if (e.quantization !== undefined) {
    const q = e.quantization as { dtype?: unknown };
    const bytes = typeof q?.dtype === 'string' ? QUANTIZED_BYTES[q.dtype] : undefined;
    if (bytes === undefined) throw new InvalidArgumentError(`${where}: ${label} has quantization dtype ${describe(q?.dtype)}; tfjs writes uint8, uint16 or float16`);
    if (dtype !== 'float32' && dtype !== 'int32') throw new InvalidArgumentError(`${where}: ${label} is quantized to ${String(q.dtype)} but has dtype ${describe(dtype)}; a quantized weight decodes to float32 or int32`);
    return size * bytes;
  }
  const bytes = typeof dtype === 'string' ? BYTES_PER_ELEMENT[dtype] : undefined;
  if (bytes === undefined) {
    throw new InvalidArgumentError(`${where}: ${label} has dtype ${describe(dtype)}; the weights of a LayersModel are ${Object.keys(BYTES_PER_ELEMENT).join(', ')} (or quantized)`);
  }
  return size * bytes;
}

/** Bytes of all `entries` in order (each checked by `entryBytes`). */
export function entriesBytes(entries: readonly unknown[], where: string, firstIndex = 0): number {
  let total = 0;
  entries.forEach((e, i) => (total += entryBytes(e, firstIndex + i, where)));
  if (!Number.isSafeInteger(total)) throw new InvalidArgumentError(`${where}: the manifest describes more bytes than can be stored`);
  return total;
}

/**
 * The groups of a model.json's `weightsManifest`, checked: an array of { paths: string[], weights:
 * entry[] }, no weight name twice. Returns [] when the manifest is absent.
 */
export function checkManifest(manifest: unknown, where: string): ManifestGroup[] {
  if (manifest === undefined || manifest === null) return [];
  if (!Array.isArray(manifest)) throw new InvalidArgumentError(`${where}: 'weightsManifest' must be an array of { paths, weights }, received ${describe(manifest)}`);
  const names = new Set<string>();
  let index = 0;
  return manifest.map((g: unknown, k) => {
    const group = g as Partial<ManifestGroup> | null;
    if (typeof group !== 'object' || group === null || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new InvalidArgumentError(`${where}: weightsManifest group ${k} must be { paths: string[], weights: [...] }, received ${describe(g)}`);
    }
    group.paths.forEach((p, j) => {
      if (typeof p !== 'string' || p.length === 0) throw new InvalidArgumentError(`${where}: weightsManifest group ${k} path ${j} must be a non-empty string, received ${describe(p)}`);
    });
    const sha = (group as { sha256?: unknown }).sha256;
    if (sha !== undefined && (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha))) {
      throw new InvalidArgumentError(`${where}: weightsManifest group ${k} has sha256 ${describe(sha)}; it must be 64 lowercase hex digits (or be left out)`);
    }
    for (const e of group.weights) {
      entryBytes(e, index++, where);
      if (names.has(e.name)) throw new InvalidArgumentError(`${where}: weight '${e.name}' appears twice in the manifest`);
      names.add(e.name);
    }
    return group as ManifestGroup;
  });
}
