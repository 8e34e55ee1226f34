/**
 * The linearised (GLM) predictive of a Laplace posterior N(θ̂, Λ⁻¹) (Immer et al. 2021;
 * laplace-torch's `glm_predictive_distribution`): f(x, θ) ≈ f(x, θ̂) + Jₓ(θ − θ̂), so the
 * outputs are Gaussian with mean f(x, θ̂) and variances diag(Jₓ Λ⁻¹ Jₓᵀ), computed as
 * (1/a) · J_r (F + (δ/a) I)⁻¹ J_rᵀ for every Jacobian row r (Λ = a F + δI), never forming d×d.
 * Inputs are taken in chunks so that the Jacobian of a chunk stays below ~16 MB.
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { Jacobian } from '../metrics/jacobian.js';
import type { DampedInverse } from '../influence/damped-inverse.js';
import { outputsOf } from './data-fit.js';

/** Floats of one chunk's Jacobian [C, B, d]. */
const JACOBIAN_FLOATS = 4 * 1024 * 1024;

/** Mean outputs f(x, θ̂) [B, C] and variances diag(Jₓ Λ⁻¹ Jₓᵀ) [B, C] for inputs xs. */
export async function linearisedOutputs(
  model: tf.LayersModel,
  lc: LayerCollection,
  xs: tf.Tensor,
  inverse: DampedInverse,
  a: number,
  prior: number,
): Promise<{ mean: tf.Tensor2D; variance: tf.Tensor2D }> {
  const mean = outputsOf(model, xs);
  const [b, c] = mean.shape;
  const chunk = Math.max(1, Math.floor(JACOBIAN_FLOATS / (c * lc.numel())));
  const parts: tf.Tensor2D[] = [];
  try {
    for (let start = 0; start < b; start += chunk) {
      const size = Math.min(chunk, b - start);
      const x = tf.slice(xs, [start], [size]);
      const j = await Jacobian({ model, loader: x, layerCollection: lc }).finally(() => x.dispose());
      try {
        const rows = j.data.reshape([c * size, lc.numel()]) as tf.Tensor2D;
        const q = await inverse.quadratic(rows, prior / a).finally(() => rows.dispose());
        parts.push(tf.tidy(() => tf.transpose(tf.div(q, a).reshape([c, size])) as tf.Tensor2D));
        q.dispose();
      } finally {
        j.dispose();
      }
    }
    const variance = (parts.length === 1 ? parts[0]!.clone() : tf.concat(parts, 0)) as tf.Tensor2D;
    return { mean, variance };
  } catch (e) {
    mean.dispose();
    throw e;
  } finally {
    tf.dispose(parts);
  }
}
