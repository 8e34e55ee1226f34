/**
 * KL clipping of a natural-gradient update (Ba, Grosse & Martens 2017, §5; the default of
 * tensorflow/kfac's `norm_constraint`): the preconditioned gradient Δ = (F + λI)⁻¹g is scaled
 * by
 *   ν = min(1, √(κ / (η²·Δᵀg))),
 * so that the predicted change of the model's output distribution, KL ≈ ½η²ΔᵀFΔ ≈ ½η²Δᵀg,
 * stays below κ/2. η is the learning rate, κ the bound. Δᵀg ≤ 0 (impossible for a positive
 * definite preconditioner, but float rounding) leaves the update unscaled.
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * ν = min(1, √(κ / (η²·Δᵀg))) for `directionDotGradient` = Δᵀg.
 *
 * @example
 * klClipCoefficient({ learningRate: 0.1, klClip: 1e-3, directionDotGradient: 4 }); // √(1e-3 / 0.04) ≈ 0.158
 */
export function klClipCoefficient(options: { learningRate: number; klClip: number; directionDotGradient: number }): number {
  const { learningRate: lr, klClip, directionDotGradient: dg } = options;
  if (!(klClip > 0) || !Number.isFinite(klClip)) throw new InvalidArgumentError(`klClipCoefficient: 'klClip' must be a finite number > 0, received ${klClip}`);
  const predicted = lr * lr * dg;
  if (!(predicted > 0)) return 1;
  return Math.min(1, Math.sqrt(klClip / predicted));
}
