/**
 * Merging partial statistics: matrices computed by separate passes over disjoint parts of the
 * data (possibly saved and reloaded in between, possibly on other machines) combine into the
 * matrix of one pass over all of it. Every representation here is an average over examples,
 * M = (1/n) Σᵢ mᵢ, so the merge is the example-weighted mean (n₁M₁ + n₂M₂ + ...)/(n₁ + n₂ + ...);
 * for KFAC both factors are such means, so merging the factors reproduces the single-pass KFAC.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatLowRank } from '../object/pspace/low-rank.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatQuasiDiag } from '../object/pspace/quasi-diag.js';
import { checkOptions, describe } from '../object/arguments.js';

export type Mergeable = PMatDense | PMatDiag | PMatBlockDiag | PMatLowRank | PMatKFAC | PMatQuasiDiag;

/** One partial result and the number of examples it was computed on. */
export interface PartialResult<M extends Mergeable> {
  matrix: M;
  examples: number;
}

const MERGEABLE = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatQuasiDiag];

function weightedMean(arrays: Float64Array[], weights: number[]): Float64Array {
  const out = new Float64Array(arrays[0]!.length);
  arrays.forEach((a, j) => {
    if (a.length !== out.length) throw new InvalidArgumentError('merge: the partial results have different sizes');
    for (let k = 0; k < a.length; k++) out[k]! += weights[j]! * a[k]!;
  });
  return out;
}

/**
 * The matrix of a single pass over all the parts' data. All parts must share the layer
 * collection and the representation (and the KFAC convention).
 *
 * @example const F = mergePartial([{ matrix: F1, examples: 5000 }, { matrix: F2, examples: 3000 }]);
 */
export function mergePartial<M extends Mergeable>(parts: ReadonlyArray<PartialResult<M>>): M {
  if (!Array.isArray(parts) || parts.length === 0) throw new InvalidArgumentError(`merge: 'parts' must be a non-empty array of { matrix, examples }, received ${describe(parts)}`);
  for (const [i, p] of parts.entries()) {
    if (typeof p !== 'object' || p === null) throw new InvalidArgumentError(`merge: part ${i} must be { matrix, examples }, received ${describe(p)}`);
    checkOptions(p, ['matrix', 'examples'], `merge: part ${i}`, `parts[${i}]`);
    if (!MERGEABLE.some((c) => p.matrix instanceof c)) {
      throw new InvalidArgumentError(`merge: part ${i}: ${describe(p.matrix)} cannot be merged (supported: PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatQuasiDiag)`);
    }
  }
  const first = parts[0]!.matrix;
  const lc: LayerCollection = first.layerCollection;
  for (const [i, p] of parts.entries()) {
    if (!p || p.matrix?.constructor !== first.constructor) {
      throw new InvalidArgumentError(`merge: part ${i} is a ${p?.matrix?.constructor?.name ?? typeof p}, not a ${first.constructor.name}`);
    }
    if (!(Number.isInteger(p.examples) && p.examples > 0)) throw new InvalidArgumentError(`merge: part ${i} has examples = ${String(p.examples)}; expected a positive integer`);
    lc.assertSame(p.matrix.layerCollection, `part ${i} of merge`);
  }
  const total = parts.reduce((a, p) => a + p.examples, 0);
  const w = parts.map((p) => p.examples / total);
  const all = parts.map((p) => p.matrix);
  if (first instanceof PMatDense) return new PMatDense(lc, weightedMean((all as PMatDense[]).map((m) => m.values()), w)) as M;
  if (first instanceof PMatDiag) return new PMatDiag(lc, weightedMean((all as PMatDiag[]).map((m) => m.values()), w)) as M;
  if (first instanceof PMatBlockDiag) {
    return PMatBlockDiag.fromBlocks(lc, lc.layers.map((e) => weightedMean((all as PMatBlockDiag[]).map((m) => m.block(e.id)), w))) as M;
  }
  if (first instanceof PMatLowRank) {
    // M = Σ_j w_j J_jᵀJ_j = [√w_j J_j]ᵀ[√w_j J_j]: stack the scaled factors.
    const stacked = tf.tidy(() => tf.concat((all as PMatLowRank[]).map((m, j) => tf.mul(m.factor, Math.sqrt(w[j]!))), 0) as tf.Tensor2D);
    return new PMatLowRank(lc, stacked) as M;
  }
  if (first instanceof PMatKFAC) {
    const kfacs = all as PMatKFAC[];
    if (kfacs.some((m) => m.kfacType !== first.kfacType)) throw new InvalidArgumentError('merge: the KFAC parts use different kfacType conventions');
    return new PMatKFAC(
      lc,
      lc.layers.map((e) => {
        const fs = kfacs.map((m) => m.layerFactors(e.id));
        const merged = { k: fs[0]!.k, c: fs[0]!.c, a: weightedMean(fs.map((f) => f.a), w), g: weightedMean(fs.map((f) => f.g), w) };
        // A separate bias block (Conv2DTranspose) is an exact mean over examples too.
        if (!fs[0]!.bias) return merged;
        if (fs.some((f) => !f.bias)) throw new InvalidArgumentError(`merge: the KFAC parts disagree on the bias block of layer '${e.id}'`);
        return { ...merged, bias: weightedMean(fs.map((f) => f.bias!), w) };
      }),
      first.kfacType,
    ) as M;
  }
  if (first instanceof PMatQuasiDiag) {
    const qs = all as PMatQuasiDiag[];
    return PMatQuasiDiag.fromBlocks(
      lc,
      lc.layers.map((e) => {
        const bs = qs.map((m) => m.layerBlock(e.id));
        return { diag: weightedMean(bs.map((b) => b.diag), w), cross: bs[0]!.cross ? weightedMean(bs.map((b) => b.cross!), w) : null };
      }),
    ) as M;
  }
  throw new InvalidArgumentError(`merge: ${(first as object).constructor.name} cannot be merged (supported: PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatQuasiDiag)`);
}
