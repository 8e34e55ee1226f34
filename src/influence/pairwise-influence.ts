/**
 * Pairwise influence scores (Koh & Liang 2017; the EK-FAC route of Grosse et al. 2023 and
 * kronfluence): scores[q, t] = ∇ℓ(z_q)ᵀ (F + λI)⁻¹ ∇ℓ(z_t), with F the Fisher over the
 * training data (its mean over examples) and ℓ the per-example negative log-likelihood at the
 * current weights. A positive score: a gradient step on z_t lowers the loss on z_q (z_t helps);
 * a negative one: z_t harms z_q.
 *
 * The query gradients are preconditioned once, (F + λI)⁻¹∇ℓ(z_q) [nQuery, d] (for (E)KFAC in
 * the Kronecker eigenbasis layer by layer, never forming d×d), and reused for every batch of
 * training gradients: memory O(nQuery·d + B·d), one backward pass per training batch.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { Loader } from '../data/loader.js';
import { INFLUENCE_OPTIONS, type InfluenceOptions, checkInfluenceOptions, influenceCurvature } from './influence-curvature.js';
import { concatAndRelease, forEachLossGradientBatch } from './loss-gradients.js';
import { LowRankQueries } from './low-rank-queries.js';
import { describe } from '../object/arguments.js';

/** Options of `pairwiseInfluence`: those of the influence functions and the query examples. */
export interface PairwiseInfluenceOptions extends InfluenceOptions {
  /** The query examples with labels ({xs, ys} batches). */
  queryLoader: Loader;
  /**
   * Keeps each layer's preconditioned query gradient as its best rank-`queryRank` approximation
   * (truncated SVD of the layer's [inputs, outputs] matrix, kronfluence's
   * `query_gradient_low_rank`): memory nQuery·k·(rows + cols) per layer instead of
   * nQuery·rows·cols, scores approximate. Default: no compression (exact).
   */
  queryRank?: number;
}

/**
 * scores[q, t] = ∇ℓ(z_q)ᵀ (F + λI)⁻¹ ∇ℓ(z_t), a [nQuery, nTrain] tensor (the caller disposes it).
 *
 * @example
 * const scores = await pairwiseInfluence({ model, trainLoader, queryLoader, representation: PMatEKFAC });
 * const helpful = tf.topk(scores.slice([0, 0], [1, -1]).reshape([-1]), 5);  // most helpful for query 0
 * scores.dispose();
 */
export async function pairwiseInfluence(options: PairwiseInfluenceOptions): Promise<tf.Tensor2D> {
  const where = 'pairwiseInfluence';
  const checked = checkInfluenceOptions(options, where, [...INFLUENCE_OPTIONS, 'queryLoader', 'queryRank']);
  if (options.queryLoader === undefined || options.queryLoader === null) throw new InvalidArgumentError(`${where}: 'queryLoader' is required (batches {xs, ys} of the query examples)`);
  const rank = options.queryRank;
  if (rank !== undefined && !(Number.isInteger(rank) && rank >= 1)) throw new InvalidArgumentError(`${where}: 'queryRank' must be an integer ≥ 1, received ${typeof rank === 'number' ? rank : describe(rank)}`);
  const spec = { model: options.model, layerCollection: checked.layerCollection, variant: checked.variant, sigma2: checked.sigma2, where, signal: options.signal };
  // Query gradients first: a bad query loader fails before the pass over the training data.
  const queryParts: tf.Tensor2D[] = [];
  let queries: tf.Tensor2D | null = null;
  let preconditioned: tf.Tensor2D | null = null;
  let compressed: LowRankQueries | null = null;
  try {
    await forEachLossGradientBatch({ ...spec, loaderName: 'queryLoader' }, options.queryLoader, (g) => void queryParts.push(g.clone()));
    queries = concatAndRelease(queryParts.splice(0), 0);
    const { inverse, damping, matrix, owned } = await influenceCurvature(options, checked, where);
    try {
      preconditioned = await inverse.apply(queries, damping);
    } finally {
      inverse.dispose();
      if (owned) matrix.dispose();
    }
    queries.dispose();
    queries = null;
    if (rank !== undefined) {
      compressed = LowRankQueries.compress(checked.layerCollection, preconditioned, rank);
      preconditioned.dispose();
      preconditioned = null;
    }
    const columns: tf.Tensor2D[] = [];
    try {
      const pre = preconditioned;
      const low = compressed;
      await forEachLossGradientBatch({ ...spec, loaderName: 'trainLoader', onProgress: options.onProgress }, options.trainLoader, (g) => {
        columns.push(low ? low.scores(g) : tf.matMul(pre!, g, false, true));
      });
      return concatAndRelease(columns.splice(0), 1);
    } finally {
      tf.dispose(columns);
    }
  } finally {
    compressed?.dispose();
    tf.dispose(queryParts);
    queries?.dispose();
    preconditioned?.dispose();
  }
}
