/**
 * Approximations of the classification predictive E_{f ~ N(μ, Σ)}[softmax(f)] from the mean
 * logits μ [B, C] and their variances v = diag(Σ) [B, C] (the GLM predictive through the
 * model's Jacobian, Immer et al. 2021 "Improving predictions of Bayesian neural nets via local
 * linearization"):
 *   probit: softmax(μ_c / √(1 + π v_c / 8))   (MacKay 1992; laplace-torch's default),
 *   bridge: the Laplace bridge to a Dirichlet (Hobbhahn et al. 2022), mean probabilities
 *           α_c / Σ α, α_c = (1 − 2/C + e^{μ_c} Σ_k e^{−μ_k} / C²) / v_c.
 */
import { tf } from '../tf.js';

/** Probit-approximated predictive probabilities [B, C]. */
export function probitProbabilities(mean: tf.Tensor2D, variance: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.softmax(tf.div(mean, tf.sqrt(tf.add(1, tf.mul(Math.PI / 8, variance))))) as tf.Tensor2D);
}

/** Laplace-bridge predictive probabilities [B, C] (the mean of the bridged Dirichlet). */
export function bridgeProbabilities(mean: tf.Tensor2D, variance: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const c = mean.shape[1];
    const mu = mean;
    const sumExp = tf.sum(tf.exp(tf.neg(mu)), 1, true);
    const alpha = tf.div(tf.add(1 - 2 / c, tf.div(tf.mul(tf.exp(mu), sumExp), c * c)), tf.maximum(variance, 1e-12));
    return tf.div(alpha, tf.sum(alpha, 1, true)) as tf.Tensor2D;
  });
}
