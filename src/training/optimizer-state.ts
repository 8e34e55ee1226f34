/**
 * Saving and restoring a NaturalGradientOptimizer: the step counters, the damping, the moving
 * average of the curvature, the preconditioner it was last rebuilt from and the momentum
 * buffer. The matrices and the vector go through the library's persistence (`serialize` /
 * `deserialize`, checksummed and checked against the model); this file only frames them:
 *   "NNGOPT01" | u32 header length | u32 FNV-1a of the header | header (JSON) | parts
 * where the header lists the counters and each part's name, byte length and FNV-1a checksum.
 * A restored optimizer continues exactly like the original (the eigendecompositions of a KFAC
 * preconditioner are recomputed from its saved factors, deterministically).
 */
import { InvalidArgumentError } from '../errors.js';
import { PVector } from '../object/pvector.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import type { KroneckerFactors } from '../statistics/kronecker-factors.js';
import { PersistenceError, deserialize, serialize, type Saveable } from '../persistence/index.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import type { NaturalGradientOptimizer } from './natural-gradient-optimizer.js';

const MAGIC = 'NNGOPT01';
const MAX_HEADER_BYTES = 1 << 16;

interface StateHeader {
  representation: string;
  iterations: number;
  curvatureUpdates: number;
  inverseUpdates: number;
  damping: number;
  parts: Array<{ name: string; bytes: number; fnv: number }>;
}

/** FNV-1a 32-bit hash (Fowler–Noll–Vo): detects truncation and flipped bytes in the framing. */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The optimizer's state as bytes (see the file header for the layout).
 *
 * @example
 * const bytes = serializeOptimizerState(opt);
 * loadOptimizerState(sameConfigOptimizer, bytes);
 */
export function serializeOptimizerState(opt: NaturalGradientOptimizer): Uint8Array {
  const { curvature } = opt.internals;
  const objects: Array<[string, Saveable]> = [];
  try {
    if (curvature.factors || curvature.diagonal) objects.push(['average', curvature.average()]);
    if (curvature.hasPreconditioner) {
      if (curvature.kind === 'kfac') objects.push(['snapshot', new PMatKFAC(opt.layerCollection, curvature.snapshotFactors!.map(copy))]);
      else objects.push(['snapshot', curvature.preconditioner()]);
    }
    objects.push(['velocity', opt.velocityVector()]);
    const blobs = objects.map(([name, o]) => ({ name, bytes: serialize(o) }));
    const header: StateHeader = {
      representation: opt.representationName,
      iterations: opt.iterations,
      curvatureUpdates: opt.curvatureUpdates,
      inverseUpdates: opt.inverseUpdates,
      damping: opt.damping,
      parts: blobs.map((b) => ({ name: b.name, bytes: b.bytes.length, fnv: fnv1a(b.bytes) })),
    };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(16 + json.length + blobs.reduce((s, b) => s + b.bytes.length, 0));
    out.set(new TextEncoder().encode(MAGIC), 0);
    const view = new DataView(out.buffer);
    view.setUint32(8, json.length, true);
    view.setUint32(12, fnv1a(json), true);
    out.set(json, 16);
    let at = 16 + json.length;
    for (const b of blobs) {
      out.set(b.bytes, at);
      at += b.bytes.length;
    }
    return out;
  } finally {
    objects.forEach(([, o]) => o.dispose());
  }
}

/**
 * Restores a state saved by `serializeOptimizerState` into `opt`, an optimizer built with the
 * same model (same layers) and representation; its other options are its own.
 *
 * @throws PersistenceError for bytes that are not a state or are corrupted;
 * InvalidArgumentError for a state of another representation or model.
 */
export function loadOptimizerState(opt: NaturalGradientOptimizer, bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`loadOptimizerState: 'bytes' must be a Uint8Array, received ${typeof bytes}`);
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw new PersistenceError(`loadOptimizerState: not an optimizer state (bad magic number)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8, true);
  if (length > MAX_HEADER_BYTES || 16 + length > bytes.length) throw new PersistenceError(`loadOptimizerState: the file is truncated or corrupted (header of ${length} bytes)`);
  const json = bytes.subarray(16, 16 + length);
  if (fnv1a(json) !== view.getUint32(12, true)) throw new PersistenceError(`loadOptimizerState: the header is corrupted (checksum mismatch)`);
  let header: StateHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(json)) as StateHeader;
  } catch {
    throw new PersistenceError(`loadOptimizerState: the header is corrupted (not JSON)`);
  }
  const count = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!(count(header.iterations) && count(header.curvatureUpdates) && count(header.inverseUpdates) && typeof header.damping === 'number' && header.damping > 0 && Array.isArray(header.parts))) {
    throw new PersistenceError(`loadOptimizerState: the header is corrupted (bad counters)`);
  }
  if (header.representation !== opt.representationName) {
    throw new InvalidArgumentError(`loadOptimizerState: the state is of a ${header.representation} optimizer, this optimizer uses ${opt.representationName}; build it with representation: ${header.representation}`);
  }
  const parts = new Map<string, Uint8Array>();
  let at = 16 + length;
  for (const p of header.parts) {
    if (!(typeof p?.name === 'string' && count(p.bytes) && at + p.bytes <= bytes.length)) throw new PersistenceError(`loadOptimizerState: the file is truncated or corrupted`);
    const blob = bytes.subarray(at, at + p.bytes);
    if (fnv1a(blob) !== p.fnv) throw new PersistenceError(`loadOptimizerState: part '${p.name}' is corrupted (checksum mismatch)`);
    parts.set(p.name, blob);
    at += p.bytes;
  }
  if (at !== bytes.length) throw new PersistenceError(`loadOptimizerState: ${bytes.length - at} unexpected bytes after the last part`);
  // Decode everything first: a bad part leaves the optimizer as it was.
  const decoded = new Map<string, Saveable>();
  try {
    for (const [name, blob] of parts) decoded.set(name, deserialize(blob, opt.model));
    const average = decoded.get('average');
    const snapshot = decoded.get('snapshot');
    const velocity = decoded.get('velocity');
    const kind = opt.internals.curvature.kind;
    const want = kind === 'diag' ? PMatDiag : PMatKFAC;
    if ((average && !(average instanceof want)) || !(velocity instanceof PVector) || (snapshot && !(snapshot instanceof (kind === 'ekfac' ? PMatEKFAC : want)))) {
      throw new PersistenceError(`loadOptimizerState: the parts do not match a ${opt.representationName} optimizer`);
    }
    opt.layerCollection.assertSame(velocity.layerCollection, 'the saved optimizer state');
    const { curvature, setVelocity, setDamping, spec } = opt.internals;
    const lc = opt.layerCollection;
    curvature.factors = average instanceof PMatKFAC ? lc.layers.map((e) => copy(average.layerFactors(e.id))) : null;
    curvature.diagonal = average instanceof PMatDiag ? new Float64Array(average.values()) : null;
    if (snapshot instanceof PMatEKFAC) curvature.restoreBasis(snapshot.eigenBlocks(), spec());
    else if (snapshot instanceof PMatKFAC) curvature.restoreSnapshot(lc.layers.map((e) => copy(snapshot.layerFactors(e.id))), null);
    else if (snapshot instanceof PMatDiag) curvature.restoreSnapshot(null, new Float64Array(snapshot.values()));
    setVelocity(header.iterations > 0 ? velocity.toFlat() : null);
    setDamping(header.damping);
    opt.iterations = header.iterations;
    opt.curvatureUpdates = header.curvatureUpdates;
    opt.inverseUpdates = header.inverseUpdates;
  } finally {
    decoded.forEach((o) => o.dispose());
  }
}

/** Writes the state to a file atomically (Node). */
export async function saveOptimizerState(opt: NaturalGradientOptimizer, path: string): Promise<void> {
  await writeFileAtomic(path, serializeOptimizerState(opt));
}

function copy(f: KroneckerFactors): KroneckerFactors {
  return { k: f.k, c: f.c, a: new Float64Array(f.a), g: new Float64Array(f.g), ...(f.bias ? { bias: new Float64Array(f.bias) } : {}) };
}
