/**
 * Merging partial statistics: matrices computed by separate passes over disjoint parts of the
 * data (possibly saved and reloaded in between, possibly on other machines) combine into the
 * matrix of one pass over all of it. Every representation here is an average over examples,
 * M = (1/n) Σᵢ mᵢ, so the merge is the example-weighted mean (n₁M₁ + n₂M₂ + ...)/(n₁ + n₂ + ...);
 * how each representation forms it is declared in the registry (`merge`): for KFAC both factors
 * are such means, so merging the factors reproduces the single-pass KFAC.
 */
import { InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { PMat } from '../object/pspace/pmat.js';
import { entryOf, mergeMatrices, mergeableNames } from '../object/pspace/registry.js';
import { checkOptions, describe } from '../object/arguments.js';

/** A matrix `mergePartial` accepts: a stored representation whose registry entry merges (`mergeableNames()`). */
export type Mergeable = PMat;

/** One partial result and the number of examples it was computed on. */
export interface PartialResult<M extends Mergeable> {
  /** The matrix computed on one part of the data. */
  matrix: M;
  /** The number of examples of that part: its weight in the example-weighted mean. */
  examples: number;
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
    if (!entryOf(p.matrix)?.merge) {
      throw new InvalidArgumentError(`merge: part ${i}: ${describe(p.matrix)} cannot be merged (supported: ${mergeableNames().join(', ')})`);
    }
  }
  const first = parts[0]!.matrix;
  const lc: LayerCollection = first.layerCollection;
  for (const [i, p] of parts.entries()) {
    if (p.matrix.constructor !== first.constructor) {
      throw new InvalidArgumentError(`merge: part ${i} is a ${p.matrix.constructor.name}, not a ${first.constructor.name}`);
    }
    if (!(Number.isInteger(p.examples) && p.examples > 0)) throw new InvalidArgumentError(`merge: part ${i} has examples = ${String(p.examples)}; expected a positive integer`);
    lc.assertSame(p.matrix.layerCollection, `part ${i} of merge`);
  }
  const total = parts.reduce((a, p) => a + p.examples, 0);
  return mergeMatrices(parts.map((p) => p.matrix), parts.map((p) => p.examples / total), lc) as M;
}
