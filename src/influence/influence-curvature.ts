/**
 * The curvature shared by the influence scores: F = `FIM` over the training data (its mean over
 * examples) in the chosen representation — for PMatEKFAC with the eigenvalue correction
 * (`updateDiag`, George et al. 2018), as kronfluence does — or a matrix the caller computed, and
 * the damping λ, by default 0.1 × the mean eigenvalue tr(F)/d (kronfluence's heuristic).
 */
import type { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { LayerCollection } from '../layers/layer-collection.js';
import type { Loader } from '../data/loader.js';
import type { Progress } from '../backend/pass.js';
import { FIM } from '../metrics/fim.js';
import type { PMatBase, Representation } from '../object/pspace/pmat.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { PMatImplicit } from '../object/pspace/implicit.js';
import { checkModel, checkOptions, describe } from '../object/arguments.js';
import { DampedInverse, INVERTIBLE_REPRESENTATIONS, type ImplicitSolveOptions, checkNonNegative } from './damped-inverse.js';
import { type InfluenceVariant, checkInfluenceVariant, checkLogitsModel } from './loss-gradients.js';

/** Options shared by `pairwiseInfluence` and `selfInfluence`. */
export interface InfluenceOptions {
  /** A tf.Sequential or functional tf.LayersModel at its trained weights (never modified). */
  model: tf.LayersModel;
  /** The training examples with labels ({xs, ys} batches): F is computed over them, and they are scored. */
  trainLoader: Loader;
  /**
   * The representation of F: PMatEKFAC (default), PMatKFAC, PMatDiag, PMatDense,
   * PMatBlockDiag, PMatLowRank or PMatImplicit (conjugate gradient, a pass per iteration).
   */
  representation?: Representation<PMatBase>;
  /** A precomputed F on the same layer collection (then `representation` is ignored); stays the caller's. */
  curvature?: PMatBase;
  /** λ ≥ 0 in (F + λI)⁻¹. Default 0.1 · tr(F)/d. */
  damping?: number;
  /** 'classif_logits' (default; cross-entropy on logits) or 'regression' (squared error / (2·sigma2)). */
  variant?: InfluenceVariant;
  /** Output variance of 'regression' (default 1). */
  sigma2?: number;
  /** Which parameters; default LayerCollection.fromModel(model). */
  layerCollection?: LayerCollection;
  /** Conjugate-gradient settings (PMatImplicit only). */
  cg?: ImplicitSolveOptions;
  /** Called after each batch of the scoring pass over `trainLoader`. */
  onProgress?: (p: Progress) => void;
  /** Aborts (AbortedError) at the next batch; every tensor is released. */
  signal?: AbortSignal;
}

export const INFLUENCE_OPTIONS = ['model', 'trainLoader', 'representation', 'curvature', 'damping', 'variant', 'sigma2', 'layerCollection', 'cg', 'onProgress', 'signal'] as const;

const INVERTIBLE_NAMES = ['PMatDense', 'PMatDiag', 'PMatBlockDiag', 'PMatKFAC', 'PMatEKFAC', 'PMatLowRank', 'PMatImplicit'];

export interface CheckedInfluence {
  layerCollection: LayerCollection;
  variant: InfluenceVariant;
  sigma2: number;
}

/** Validates the shared options before any tensor is touched. */
export function checkInfluenceOptions(options: InfluenceOptions, where: string, allowed: readonly string[]): CheckedInfluence {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`${where}: expected an options object { model, trainLoader, ... }, received ${describe(options)}`);
  checkOptions(options, allowed, where);
  checkModel(options.model, where);
  if (options.trainLoader === undefined || options.trainLoader === null) throw new InvalidArgumentError(`${where}: 'trainLoader' is required (batches {xs, ys} of the training data)`);
  const variant = checkInfluenceVariant(options.variant ?? 'classif_logits', where);
  checkLogitsModel(options.model, variant, where);
  if (options.sigma2 !== undefined && variant !== 'regression') throw new InvalidArgumentError(`${where}: 'sigma2' only applies to variant 'regression', not '${variant}'`);
  const sigma2 = checkNonNegative(options.sigma2 ?? 1, 'sigma2', where, true);
  if (options.damping !== undefined) checkNonNegative(options.damping, 'damping', where);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new InvalidArgumentError(`${where}: 'onProgress' must be a function`);
  // A precomputed curvature brings its own collection (e.g. the last layer only).
  const lc = options.layerCollection ?? options.curvature?.layerCollection ?? LayerCollection.fromModel(options.model);
  if (!(lc instanceof LayerCollection)) throw new InvalidArgumentError(`${where}: 'layerCollection' must be a LayerCollection, received ${describe(lc)}`);
  lc.layersOf(options.model);
  const rep = options.representation as Partial<Representation<PMatBase>> | undefined;
  if (rep !== undefined && !(rep && typeof rep.compute === 'function' && INVERTIBLE_NAMES.includes(String(rep.representationName)))) {
    throw new InvalidArgumentError(`${where}: 'representation' must be one of ${INVERTIBLE_REPRESENTATIONS}, received ${rep && typeof rep.representationName === 'string' ? rep.representationName : describe(rep)}`);
  }
  if (options.curvature !== undefined) {
    const c = options.curvature as Partial<PMatBase> | null;
    if (!c || !(c.layerCollection instanceof LayerCollection)) throw new InvalidArgumentError(`${where}: 'curvature' must be a matrix such as PMatEKFAC, received ${describe(options.curvature)}`);
    lc.assertSame(c.layerCollection, `the 'curvature' given to ${where}`);
  }
  return { layerCollection: lc, variant, sigma2 };
}

/** F (computed, or the caller's), its damped inverse and the damping. `owned`: F must be disposed by the caller of this. */
export async function influenceCurvature(
  options: InfluenceOptions,
  checked: CheckedInfluence,
  where: string,
): Promise<{ inverse: DampedInverse; damping: number; matrix: PMatBase; owned: boolean }> {
  let matrix = options.curvature;
  const owned = matrix === undefined;
  if (!matrix) {
    matrix = await FIM({
      model: options.model,
      loader: options.trainLoader,
      representation: options.representation ?? PMatEKFAC,
      variant: checked.variant,
      ...(checked.variant === 'regression' ? { sigma2: checked.sigma2 } : {}),
      layerCollection: checked.layerCollection,
      signal: options.signal,
      workers: 1,
    });
  }
  try {
    if (owned && matrix instanceof PMatEKFAC && matrix.diagonalSource === 'kfac') await matrix.updateDiag(options.trainLoader);
    const damping = options.damping ?? (0.1 * (await (matrix as unknown as { trace(): number | Promise<number> }).trace())) / checked.layerCollection.numel();
    const inverse = DampedInverse.of(matrix, where, options.cg);
    return { inverse, damping, matrix, owned };
  } catch (e) {
    if (owned) matrix.dispose();
    throw e;
  }
}

/** Whether `m` recomputes from the data (its solves are passes). */
export function isImplicit(m: PMatBase): boolean {
  return m instanceof PMatImplicit;
}
