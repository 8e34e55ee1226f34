/**
 * The representations the CLI, `npm start` and the demo offer, by short name, with what each
 * needs (Kronecker factors, a second pass) and an estimate of its storage and of the work of
 * accumulating it, so that a run can skip what cannot fit and say why. Browser-safe.
 */
import {
  FIM,
  FIMMonteCarlo,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PMatQuasiDiag,
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

/** Estimated cost of one representation for a layer collection, n examples and O outputs. */
export interface Cost {
  /** Bytes the matrix stores. */
  bytes: number;
  /** Multiply-adds of the accumulation beyond the forward/backward passes themselves. */
  flops: number;
}

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

/** [K, C] Kronecker factor sizes of a layer, or [numel, 1] for a layer without factors. */
function factorSizes(e: LayerCollection['layers'][number]): [number, number] {
  return e.kind.kronecker ? e.kind.kronecker.factorSizes(e.layer) : [e.numel, 1];
}

const sum = (lc: LayerCollection, f: (e: LayerCollection['layers'][number]) => number) => lc.layers.reduce((a, e) => a + f(e), 0);

export const REPRESENTATIONS: readonly RepresentationInfo[] = [
  {
    name: 'dense', representation: PMatDense, summary: 'the full d×d matrix (float64)', needsKronecker: false, updatesDiagonal: false, matrixFree: false,
    cost: (lc, n, o) => ({ bytes: 8 * lc.numel() ** 2, flops: n * o * lc.numel() ** 2 }),
  },
  {
    name: 'blockdiag', representation: PMatBlockDiag, summary: 'one dense block per layer, no cross-layer terms', needsKronecker: false, updatesDiagonal: false, matrixFree: false,
    cost: (lc, n, o) => ({ bytes: 8 * sum(lc, (e) => e.numel ** 2), flops: n * o * sum(lc, (e) => e.numel ** 2) }),
  },
  {
    name: 'diag', representation: PMatDiag, summary: 'the exact diagonal', needsKronecker: false, updatesDiagonal: false, matrixFree: false,
    cost: (lc, n, o) => ({ bytes: 8 * lc.numel(), flops: n * o * lc.numel() }),
  },
  {
    name: 'lowrank', representation: PMatLowRank, summary: 'JᵀJ/n from the stacked per-example gradients J (n·O rows)', needsKronecker: false, updatesDiagonal: false, matrixFree: false,
    cost: (lc, n, o) => ({ bytes: 4 * n * o * lc.numel(), flops: n * o * lc.numel() }),
  },
  {
    name: 'kfac', representation: PMatKFAC, summary: 'Kronecker-factored blocks A ⊗ G per layer (Martens & Grosse 2015)', needsKronecker: true, updatesDiagonal: false, matrixFree: false,
    cost: (lc, n, o) => ({ bytes: 8 * sum(lc, (e) => factorSizes(e)[0] ** 2 + factorSizes(e)[1] ** 2), flops: n * o * sum(lc, (e) => factorSizes(e)[0] ** 2 + factorSizes(e)[1] ** 2) }),
  },
  {
    name: 'ekfac', representation: PMatEKFAC, summary: 'KFAC eigenbases with the exact diagonal in them (George et al. 2018; two passes)', needsKronecker: true, updatesDiagonal: true, matrixFree: false,
    cost: (lc, n, o) => ({ bytes: 8 * sum(lc, (e) => factorSizes(e)[0] ** 2 + factorSizes(e)[1] ** 2 + e.numel), flops: n * o * sum(lc, (e) => factorSizes(e)[0] ** 2 + factorSizes(e)[1] ** 2 + e.numel) }),
  },
  {
    name: 'quasidiag', representation: PMatQuasiDiag, summary: 'diagonal plus weight–bias cross terms per unit (Ollivier 2015)', needsKronecker: true, updatesDiagonal: false, matrixFree: false,
    cost: (lc, n, o) => ({ bytes: 16 * lc.numel(), flops: 2 * n * o * lc.numel() }),
  },
  {
    name: 'ekfac-blockdiag', representation: PMatEKFACBlockDiag, summary: 'EKFAC where a layer has Kronecker factors, a dense block elsewhere (two passes)', needsKronecker: false, updatesDiagonal: true, matrixFree: false,
    cost: (lc, n, o) => ({
      bytes: 8 * sum(lc, (e) => (e.kind.kronecker ? factorSizes(e)[0] ** 2 + factorSizes(e)[1] ** 2 + e.numel : e.numel ** 2)),
      flops: n * o * sum(lc, (e) => (e.kind.kronecker ? factorSizes(e)[0] ** 2 + factorSizes(e)[1] ** 2 + e.numel : e.numel ** 2)),
    }),
  },
  {
    name: 'implicit', representation: PMatImplicit, summary: 'matrix-free: each product is a pass over the data', needsKronecker: false, updatesDiagonal: false, matrixFree: true,
    cost: () => ({ bytes: 0, flops: 0 }),
  },
];

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
