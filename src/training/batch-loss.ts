/**
 * The training loss whose Fisher the natural-gradient optimizer uses: the negative
 * log-likelihood of the model's predictive distribution, averaged over the batch, so that the
 * Fisher of CONVENTIONS.md (classif_logits: softmax over logits; regression: Gaussian, σ² = 1)
 * is the expected Hessian of this loss (Martens 2020, §9.2).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import { describe } from '../object/arguments.js';

/** The output distributions the optimizer supports. */
export type TrainingVariant = 'classif_logits' | 'regression';

export function checkTrainingVariant(v: unknown, where: string): TrainingVariant {
  if (v === undefined) return 'classif_logits';
  if (v === 'classif_logits' || v === 'regression') return v;
  throw new InvalidArgumentError(`${where}: 'variant' must be 'classif_logits' (softmax cross-entropy on logits) or 'regression' (½‖f − y‖²), received ${describe(v)}`);
}

/**
 * Targets as the loss needs them: for 'classif_logits', integer labels [B] become one-hot
 * [B, C]; one-hot [B, C] is kept. Refuses shapes that do not match the output [B, C].
 */
export function checkTargets(variant: TrainingVariant, ys: tf.Tensor, outputShape: readonly (number | null)[], where: string): tf.Tensor {
  const c = outputShape[outputShape.length - 1] ?? null;
  if (variant === 'classif_logits' && ys.rank === 1) {
    if (ys.dtype !== 'int32') throw new InvalidArgumentError(`${where}: integer class labels 'ys' must be int32, received ${ys.dtype}; or pass one-hot targets [batch, ${c}]`);
    if (c === null) throw new ShapeMismatchError(`${where}: the model output has no fixed class axis; pass one-hot targets`);
    return tf.oneHot(ys as tf.Tensor1D, c);
  }
  const want = outputShape.slice(1);
  if (ys.rank !== want.length + 1 || want.some((s, i) => s !== null && s !== ys.shape[i + 1])) {
    throw new ShapeMismatchError(`${where}: targets 'ys' have shape [${ys.shape}] but the model outputs [batch, ${want.join(', ')}]${variant === 'classif_logits' ? ' (or pass int32 labels [batch])' : ''}`);
  }
  return ys.dtype === 'float32' ? ys.clone() : tf.cast(ys, 'float32');
}

/** The mean negative log-likelihood of the batch. */
export function batchLoss(variant: TrainingVariant, output: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (variant === 'classif_logits') {
      const logits = output.reshape([output.shape[0]!, -1]);
      return tf.neg(tf.mean(tf.sum(tf.mul(targets.reshape(logits.shape), tf.logSoftmax(logits)), 1))) as tf.Scalar;
    }
    const diff = tf.sub(output, targets).reshape([output.shape[0]!, -1]);
    return tf.mean(tf.mul(0.5, tf.sum(tf.square(diff), 1))) as tf.Scalar;
  });
}
