/**
 * A matrix's definition (the variant and its options, without the data) as meta scalars of a
 * saved state, and back: a saved EKFAC records it so that `updateDiag(loader)` works after a
 * load exactly as before the save. Only named variants and losses are recorded; a loss function
 * cannot be written down (such a matrix loads without its definition).
 */
import type { tf } from '../tf.js';
import type { CotangentSource } from '../backend/pass.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { FisherSpec } from '../object/pspace/pmat.js';
import type { RepresentationState } from '../object/pspace/state.js';
import { checkVariant, variantCotangents } from '../metrics/variants.js';
import { MONTE_CARLO_VARIANTS, type MonteCarloVariant, monteCarloCotangents } from '../metrics/monte-carlo-samples.js';
import { PersistenceError } from './format.js';

const PREFIX = 'definition.';

/** The cotangent source recorded in `meta`, validated; null when none is recorded. */
export function cotangentsFromMeta(meta: RepresentationState['meta']): CotangentSource | null {
  const d = Object.fromEntries(Object.entries(meta).filter(([k]) => k.startsWith(PREFIX)).map(([k, v]) => [k.slice(PREFIX.length), v]));
  if (Object.keys(d).length === 0) return null;
  const bad = (why: string): never => {
    throw new PersistenceError(`load: the file is corrupted (the recorded definition ${JSON.stringify(d)} is invalid: ${why})`);
  };
  const only = (keys: string[]) => Object.keys(d).forEach((k) => keys.includes(k) || bad(`unknown field '${k}'`));
  const positive = (x: unknown, integer: boolean) => typeof x === 'number' && Number.isFinite(x) && x > 0 && (!integer || Number.isSafeInteger(x));
  if (d.source === 'variant') {
    only(['source', 'variant', 'sigma2', 'loss']);
    try {
      const options = { ...(d.sigma2 !== undefined ? { sigma2: d.sigma2 as number } : {}), ...(d.loss !== undefined ? { loss: d.loss as 'mse' } : {}) };
      return variantCotangents(checkVariant(d.variant, options), options);
    } catch (e) {
      return bad((e as Error).message);
    }
  }
  if (d.source === 'monte_carlo') {
    only(['source', 'variant', 'trials', 'seed', 'sigma2', 'classes']);
    if (!(MONTE_CARLO_VARIANTS as readonly unknown[]).includes(d.variant)) bad(`unknown Monte-Carlo variant ${JSON.stringify(d.variant)}`);
    if (!positive(d.trials, true) || !positive(d.classes, true) || !positive(d.sigma2, false)) bad('trials and classes must be integers ≥ 1, sigma2 a number > 0');
    if (!(typeof d.seed === 'number' && Number.isSafeInteger(d.seed))) bad('seed must be an integer');
    return monteCarloCotangents(d.variant as MonteCarloVariant, { trials: d.trials as number, seed: d.seed as number, sigma2: d.sigma2 as number, classes: d.classes as number });
  }
  return bad(`source ${JSON.stringify(d.source)} is neither 'variant' nor 'monte_carlo'`);
}

/** The definition recorded in `meta` as a spec on `lc` without data, or null. */
export function specFromMeta(model: tf.LayersModel, lc: LayerCollection, meta: RepresentationState['meta']): FisherSpec | null {
  const outputs = cotangentsFromMeta(meta);
  return outputs ? { model, layerCollection: lc, loader: [], outputs } : null;
}
