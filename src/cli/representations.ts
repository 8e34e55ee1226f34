/**
 * The representations the CLI, `npm start` and the demo offer, by short name, with what each
 * needs (Kronecker factors, a second pass) and an estimate of its storage and of the work of
 * accumulating it, so that a run can skip what cannot fit and say why. Browser-safe.
 */
import {
  FIM,
  FIMMonteCarlo,
  type LayerCollection,
  type Loader,
  type PMatBase,
  type Progress,
  type Representation,
  type Variant,
  type LossName,
  type MonteCarloVariant,
} from '../index.js';
import type { tf } from '../tf.js';
import { CliError } from './errors.js';
import { REGISTRY, type RepresentationCost } from '../object/pspace/registry.js';

/** Estimated cost of one representation for a layer collection, n examples and O outputs. */
export type Cost = RepresentationCost;

export interface RepresentationInfo {
  /** CLI name: 'dense', 'kfac', ... */
  readonly name: string;
  readonly representation: Representation<PMatBase>;
  /** One line for `--help` and the README. */
  readonly summary: string;
  /** Every layer must have Kronecker factors (`entry.kind.kronecker`). */
  readonly needsKronecker: boolean;
  /** EKFAC: after the factors, `updateDiag` makes a second pass for the exact eigenbasis diagonal. */
  readonly updatesDiagonal: boolean;
  /** Stores nothing: every operation is a pass over the data. */
  readonly matrixFree: boolean;
  cost(lc: LayerCollection, n: number, outputs: number): Cost;
}

/** The registry's representations that have a CLI name, in the registry's order. */
export const REPRESENTATIONS: readonly RepresentationInfo[] = REGISTRY.flatMap((e) => (e.cli && e.representation ? [{ ...e.cli, representation: e.representation }] : []));

/** The representation called `name`, or a CliError listing the valid names. */
export function findRepresentation(name: string): RepresentationInfo {
  const hit = REPRESENTATIONS.find((r) => r.name === name.toLowerCase() || r.representation.representationName.toLowerCase() === name.toLowerCase());
  if (!hit) throw new CliError(`unknown representation '${name}'; choose one of ${REPRESENTATIONS.map((r) => r.name).join(', ')}`);
  return hit;
}

/** Why `info` cannot be computed on `lc` (a layer without Kronecker factors), or null. */
export function unsupportedReason(info: RepresentationInfo, lc: LayerCollection): string | null {
  if (!info.needsKronecker) return null;
  const bad = lc.layers.filter((e) => !e.kind.kronecker);
  return bad.length ? `layer${bad.length > 1 ? 's' : ''} ${bad.map((e) => `'${e.id}' (${e.layer.getClassName()})`).join(', ')} ha${bad.length > 1 ? 've' : 's'} no Kronecker factors` : null;
}

export interface FisherRequest {
  model: tf.LayersModel;
  loader: Loader;
  layerCollection: LayerCollection;
  variant: Variant;
  /** Per-example loss of the 'empirical' variant (default 'cross_entropy'). */
  loss?: LossName;
  /** Output variance of the 'regression' variant (default 1). */
  sigma2?: number;
  /** Monte-Carlo estimate with this many sampled labels per example instead of the closed form. */
  monteCarloTrials?: number;
  /** Seed of the Monte-Carlo label sampler (default 0, so that runs are reproducible). */
  seed?: number;
  onProgress?: (p: Progress) => void;
}

/**
 * Computes the FIM in representation `info` (with EKFAC's second pass, so that 'ekfac' means the
 * eigenvalue-corrected matrix, not KFAC in another basis).
 */
export async function computeFisher(info: RepresentationInfo, request: FisherRequest): Promise<PMatBase> {
  const { model, loader, layerCollection, variant, onProgress, sigma2 } = request;
  const common = { model, loader, layerCollection, onProgress, representation: info.representation, ...(sigma2 !== undefined ? { sigma2 } : {}) };
  const M = request.monteCarloTrials
    ? await FIMMonteCarlo({ ...common, variant: variant as MonteCarloVariant, trials: request.monteCarloTrials, seed: request.seed ?? 0 })
    : await FIM({ ...common, variant, ...(variant === 'empirical' ? { loss: request.loss ?? 'cross_entropy' } : {}) });
  if (info.updatesDiagonal) {
    try {
      await (M as PMatBase & { updateDiag(l: Loader): Promise<unknown> }).updateDiag(loader);
    } catch (e) {
      M.dispose();
      throw e;
    }
  }
  return M;
}
