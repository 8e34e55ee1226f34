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

/** Options of `pairwiseInfluence`: those of the influence functions and the query examples. */
export interface PairwiseInfluenceOptions extends InfluenceOptions {
  /** The query examples with labels ({xs, ys} batches). */
  queryLoader: Loader;
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
  const checked = checkInfluenceOptions(options, where, [...INFLUENCE_OPTIONS, 'queryLoader']);
  if (options.queryLoader === undefined || options.queryLoader === null) throw new InvalidArgumentError(`${where}: 'queryLoader' is required (batches {xs, ys} of the query examples)`);
  const spec = { model: options.model, layerCollection: checked.layerCollection, variant: checked.variant, sigma2: checked.sigma2, where, signal: options.signal };
  // Query gradients first: a bad query loader fails before the pass over the training data.
  const queryParts: tf.Tensor2D[] = [];
  let queries: tf.Tensor2D | null = null;
  let preconditioned: tf.Tensor2D | null = null;
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
    const columns: tf.Tensor2D[] = [];
    try {
      const pre = preconditioned;
      await forEachLossGradientBatch({ ...spec, loaderName: 'trainLoader', onProgress: options.onProgress }, options.trainLoader, (g) => {
        columns.push(tf.matMul(pre, g, false, true));
      });
      return concatAndRelease(columns.splice(0), 1);
    } finally {
      tf.dispose(columns);
    }
  } finally {
    tf.dispose(queryParts);
    queries?.dispose();
    preconditioned?.dispose();
  }
}
