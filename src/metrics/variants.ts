/**
 * The FIM variants of CONVENTIONS.md, each written as "square-root" output cotangents: for the
 * model output f(x_i) ∈ R^C, rows M_i[o, :] (o = 1..O, treated as constants) such that
 *   Σ_o (M_i[o,:] J_i)ᵀ (M_i[o,:] J_i) = J_iᵀ H_i J_i,
 * with H_i the Fisher of the output distribution. Back-propagating each row gives the
 * gradients of the O square-root outputs f̃_o = M_i[o,:] f at every layer.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import type { CotangentSource } from '../backend/pass.js';
import { checkClassLabels } from './labels.js';

/** The closed-form Fisher variants of `FIM`: what the model's output is (see docs/conventions.md). */
export const VARIANTS = [
  'classif_logits',
  'classif_logsoftmax',
  'classif_probs',
  'classif_binary_logits',
  'regression',
  'empirical',
] as const;
/** One of `VARIANTS`. */
export type Variant = (typeof VARIANTS)[number];

/** Per-example loss for the `empirical` variant: (targets, outputs) ↦ losses of shape [B]. */
export type LossFunction = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;
/** Built-in losses: softmax cross-entropy on logits (integer or one-hot targets), squared error ½‖y − f‖². */
export type LossName = 'cross_entropy' | 'mse';

export interface VariantOptions {
  /** Gaussian output variance σ² of the `regression` variant (default 1): F = JᵀJ/σ². */
  sigma2?: number;
  /** The loss of the `empirical` variant. */
  loss?: LossFunction | LossName;
}

/** Validates a variant name and its options before any tensor is touched. */
export function checkVariant(variant: unknown, options: VariantOptions): Variant {
  if (typeof variant !== 'string' || !(VARIANTS as readonly string[]).includes(variant)) {
    throw new InvalidArgumentError(`unknown variant ${JSON.stringify(variant)}; valid variants: ${VARIANTS.join(', ')}`);
  }
  const v = variant as Variant;
  if (options.sigma2 !== undefined) {
    if (v !== 'regression') throw new InvalidArgumentError(`option 'sigma2' only applies to the 'regression' variant, not '${v}'`);
    if (!(typeof options.sigma2 === 'number' && Number.isFinite(options.sigma2) && options.sigma2 > 0)) {
      throw new InvalidArgumentError(`'sigma2' must be a finite number > 0, received ${String(options.sigma2)}`);
    }
  }
  if (v === 'empirical') {
    const l = options.loss;
    if (typeof l !== 'function' && l !== 'cross_entropy' && l !== 'mse') {
      throw new InvalidArgumentError(`the 'empirical' variant needs option 'loss': a function (yTrue, yPred) => per-example losses [B], 'cross_entropy' or 'mse'; received ${String(l)}`);
    }
  } else if (options.loss !== undefined) {
    throw new InvalidArgumentError(`option 'loss' only applies to the 'empirical' variant, not '${v}'`);
  }
  return v;
}

const PROB_EPS = 1e-12;

/** Output cotangents [O, B, C] for model outputs [B, C] (outputs are flattened per example). */
export function outputCotangents(variant: Variant, output: tf.Tensor2D, ys: tf.Tensor | undefined, options: VariantOptions, firstExample = 0): tf.Tensor3D {
  const [b, c] = output.shape;
  if (c < 2 && (variant === 'classif_logits' || variant === 'classif_logsoftmax' || variant === 'classif_probs')) {
    throw new InvalidArgumentError(
      `variant '${variant}' needs at least 2 classes but the model has ${c} output; for a single logit use 'classif_binary_logits'`,
    );
  }
  return tf.tidy(() => {
    const eye = tf.eye(c).reshape([c, 1, c]);
    // diag-shaped cotangent: M[o, i, c] = δ_oc · w[i, o]
    const diagonal = (w: tf.Tensor2D): tf.Tensor3D => tf.mul(eye, tf.transpose(w).reshape([c, b, 1])) as tf.Tensor3D;
    switch (variant) {
      case 'classif_logits': {
        // M_i = diag(√p)(I − 1pᵀ): MᵀM = diag(p) − ppᵀ.
        const p = tf.softmax(output);
        return tf.mul(tf.sub(eye, p.reshape([1, b, c])), tf.transpose(tf.sqrt(p)).reshape([c, b, 1])) as tf.Tensor3D;
      }
      case 'classif_logsoftmax': {
        // F = Σ_c p_c ∇log p_c ∇log p_cᵀ.
        const p = tf.exp(output);
        checkDistribution(p, "model outputs exponentiated (variant 'classif_logsoftmax')");
        return diagonal(tf.sqrt(p) as tf.Tensor2D);
      }
      case 'classif_probs': {
        // F = Σ_c (1/p_c) ∇p_c ∇p_cᵀ.
        checkDistribution(output, "model outputs (variant 'classif_probs')");
        return diagonal(tf.rsqrt(tf.maximum(output, PROB_EPS)) as tf.Tensor2D);
      }
      case 'classif_binary_logits': {
        const s = tf.sigmoid(output);
        return diagonal(tf.sqrt(tf.mul(s, tf.sub(1, s))) as tf.Tensor2D);
      }
      case 'regression':
        return diagonal(tf.fill([b, c], 1 / Math.sqrt(options.sigma2 ?? 1)) as tf.Tensor2D);
      case 'empirical':
        return lossGradient(output, ys, options.loss!, firstExample).reshape([1, b, c]) as tf.Tensor3D;
    }
  });
}

/** Number O of square-root outputs for C model outputs. */
export function numSquareRootOutputs(variant: Variant, c: number): number {
  return variant === 'empirical' ? 1 : c;
}

function checkDistribution(p: tf.Tensor2D, what: string): void {
  const [minP, maxRowErr] = tf.tidy(() => [tf.min(p), tf.max(tf.abs(tf.sub(tf.sum(p, 1), 1)))]).map((t) => {
    const v = t.dataSync()[0]!;
    t.dispose();
    return v;
  }) as [number, number];
  if (minP < 0 || maxRowErr > 1e-3) {
    throw new InvalidArgumentError(
      `${what} are not probability distributions (min ${minP}, max |row sum − 1| ${maxRowErr}); ` +
        `use variant 'classif_logits' for logits or 'classif_logsoftmax' for log-probabilities`,
    );
  }
}

/** ∂ℓ_i/∂f_i for every example, shape [B, C]. */
function lossGradient(output: tf.Tensor2D, ys: tf.Tensor | undefined, loss: LossFunction | LossName, firstExample: number): tf.Tensor2D {
  if (!ys) throw new InvalidArgumentError(`the 'empirical' variant needs targets: batches must be {xs, ys} or [xs, ys]`);
  const [b, c] = output.shape;
  const classIndices = ys.rank === 1 || (ys.rank === 2 && ys.shape[1] === 1);
  if (loss === 'cross_entropy' && classIndices) checkClassLabels(ys, c, `variant 'empirical' with loss 'cross_entropy'`, firstExample);
  const perExample = (f: tf.Tensor2D): tf.Tensor => {
    if (loss === 'cross_entropy') {
      const onehot = classIndices ? tf.oneHot(tf.cast(ys.reshape([b]), 'int32'), c) : ys;
      if (onehot.shape[1] !== c) throw new ShapeMismatchError(`targets have shape [${ys.shape}] but the model has ${c} outputs`);
      return tf.neg(tf.sum(tf.mul(tf.cast(onehot, 'float32'), tf.logSoftmax(f)), 1));
    }
    if (loss === 'mse') {
      if (ys.size !== f.size) throw new ShapeMismatchError(`targets have shape [${ys.shape}] but outputs have [${f.shape}]`);
      return tf.mul(0.5, tf.sum(tf.square(tf.sub(f, ys.reshape(f.shape))), 1));
    }
    const l = loss(ys, f);
    if (l.rank !== 1 || l.shape[0] !== b) {
      throw new ShapeMismatchError(`the loss function must return per-example losses of shape [${b}], returned [${l.shape}]`);
    }
    return l;
  };
  return tf.grad((f: tf.Tensor) => tf.sum(perExample(f as tf.Tensor2D)))(output) as tf.Tensor2D;
}

/** The cotangent source of a FIM variant (closed-form expectation over the labels). */
export function variantCotangents(variant: Variant, options: VariantOptions): CotangentSource {
  return {
    description: `variant '${variant}'`,
    needsTargets: variant === 'empirical',
    cotangents: (output, ys, _batchIndex, firstExample) => outputCotangents(variant, output, ys, options, firstExample),
    ...(typeof options.loss === 'function'
      ? {}
      : { definition: { source: 'variant', variant, ...(options.sigma2 !== undefined ? { sigma2: options.sigma2 } : {}), ...(options.loss !== undefined ? { loss: options.loss } : {}) } }),
  };
}
