/**
 * Self-influence (Koh & Liang 2017; Grosse et al. 2023): s_t = ∇ℓ(z_t)ᵀ (F + λI)⁻¹ ∇ℓ(z_t) for
 * every training example, the influence of an example on its own loss. Large values flag
 * examples the model fits against the rest of the data: mislabelled or atypical ones
 * (kronfluence's mislabel-detection benchmark ranks by it).
 *
 * With (E)KFAC each batch of per-example gradients is projected into the Kronecker eigenbasis
 * layer by layer, s_t = Σ_l Σ_ab (U_Aᵀ ∇W_t U_G)²_ab / (D_ab + λ); with Diag it is
 * Σ g²/(f + λ); with Dense, BlockDiag and LowRank the float64 eigendecomposition; with
 * PMatImplicit a conjugate-gradient solve per batch (a pass over the data per iteration).
 */
import { tf } from '../tf.js';
import { INFLUENCE_OPTIONS, type InfluenceOptions, checkInfluenceOptions, influenceCurvature } from './influence-curvature.js';
import { concatAndRelease, forEachLossBatch, forEachLossGradientBatch } from './loss-gradients.js';
import { kroneckerSelfInfluence } from './kronecker-self-influence.js';

/** Options of `selfInfluence` (those of every influence function). */
export type SelfInfluenceOptions = InfluenceOptions;

/**
 * s_t = ∇ℓ(z_t)ᵀ (F + λI)⁻¹ ∇ℓ(z_t) for every training example, a [nTrain] tensor (the caller
 * disposes it).
 *
 * @example
 * const s = await selfInfluence({ model, trainLoader, representation: PMatEKFAC });
 * const suspicious = tf.topk(s, 20).indices;   // candidates for mislabelled examples
 */
export async function selfInfluence(options: SelfInfluenceOptions): Promise<tf.Tensor1D> {
  const where = 'selfInfluence';
  const checked = checkInfluenceOptions(options, where, INFLUENCE_OPTIONS);
  const { inverse, damping, matrix, owned } = await influenceCurvature(options, checked, where);
  const parts: tf.Tensor1D[] = [];
  try {
    const spec = { model: options.model, layerCollection: checked.layerCollection, variant: checked.variant, sigma2: checked.sigma2, where, loaderName: 'trainLoader', onProgress: options.onProgress, signal: options.signal };
    const blocks = inverse.eigen?.kroneckerBlocks();
    const factored = blocks ? kroneckerSelfInfluence(checked.layerCollection, blocks, damping) : null;
    if (factored) await forEachLossBatch(spec, options.trainLoader, factored, (s) => void parts.push(s.clone()));
    else await forEachLossGradientBatch(spec, options.trainLoader, async (g) => void parts.push(await inverse.quadratic(g, damping)));
    return concatAndRelease(parts.splice(0), 0);
  } finally {
    tf.dispose(parts);
    inverse.dispose();
    if (owned) matrix.dispose();
  }
}
