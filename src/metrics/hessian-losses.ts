/**
 * Losses for the Hessian, written so that tfjs can differentiate them twice: the batch sum
 * Σ_i ℓ(f(x_i), y_i) of the model outputs f [B, C] (flattened per example) and targets.
 *
 * tf.logSoftmax and tf.losses.softmaxCrossEntropy are tf.customGrad ops whose forward pass saves
 * a value computed off the tape: their gradient is right but its own derivative is not (it
 * misses the softmax curvature, or is disconnected altogether). The built-in cross-entropy is
 * therefore spelled out with elementary ops, and a user's loss is checked once against finite
 * differences of its gradient in output space before it is used (`checkLossCurvature`).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import type { LossFunction, LossName } from './variants.js';
import { withSecondOrderGradients } from './second-order-gradients.js';
import { checkClassLabels, holdsClassIndices } from './labels.js';

/** 'cross_entropy' (softmax on logits, integer or one-hot / probability targets), 'mse' (½‖f − y‖²) or a per-example function. */
export type HessianLoss = LossName | LossFunction;

/** Σ_i ℓ_i for a batch, as a scalar on the tape. */
export type BatchLoss = (f: tf.Tensor2D, ys: tf.Tensor) => tf.Scalar;

/** Validates the `loss` option of Hessian and returns the batch loss. */
export function batchLoss(loss: unknown): BatchLoss {
  if (loss === 'cross_entropy') return crossEntropy;
  if (loss === 'mse') return squaredError;
  if (typeof loss === 'function') return custom(loss as LossFunction);
  throw new InvalidArgumentError(
    `Hessian needs option 'loss': 'cross_entropy', 'mse' or a function (yTrue, yPred) => per-example losses [B]; received ${loss === undefined ? 'undefined' : JSON.stringify(loss)}`,
  );
}

/**
 * Checks the targets of one batch before any product: for 'cross_entropy' with class-index
 * targets, every label an integer in [0, C) (LabelError naming the example of the pass, counted
 * from `firstExample`). `classes` gives C, the model's outputs per example.
 */
export function checkLossTargets(loss: BatchLoss, ys: tf.Tensor, batchSize: number, classes: () => number, firstExample: number): void {
  if (loss !== crossEntropy || !(ys.rank === 1 || (ys.rank === 2 && ys.shape[1] === 1))) return;
  const c = classes();
  if (holdsClassIndices(ys, batchSize, c)) checkClassLabels(ys, c, `Hessian: loss 'cross_entropy'`, firstExample);
}

function crossEntropy(f: tf.Tensor2D, ys: tf.Tensor): tf.Scalar {
  const [b, c] = f.shape;
  const targets = holdsClassIndices(ys, b, c) ? tf.oneHot(tf.cast(ys.reshape([b]), 'int32'), c) : ys;
  if (targets.shape.length !== 2 || targets.shape[0] !== b || targets.shape[1] !== c) {
    throw new ShapeMismatchError(`Hessian 'cross_entropy': targets have shape [${ys.shape}] but the model has ${c} outputs (give class indices [B] or one-hot [B, ${c}])`);
  }
  // log-softmax from elementary ops; the row maximum is a constant (read back, off the tape),
  // so it shifts the logits without adding a path the derivatives would have to follow.
  const max = tf.tensor(tf.max(f, 1, true).dataSync(), [b, 1]);
  const shifted = tf.sub(f, max);
  const logp = tf.sub(shifted, tf.log(tf.sum(tf.exp(shifted), 1, true)));
  return tf.neg(tf.sum(tf.mul(tf.cast(targets, 'float32'), logp))) as tf.Scalar;
}

function squaredError(f: tf.Tensor2D, ys: tf.Tensor): tf.Scalar {
  if (ys.size !== f.size) throw new ShapeMismatchError(`Hessian 'mse': targets have shape [${ys.shape}] but outputs have [${f.shape}]`);
  return tf.mul(0.5, tf.sum(tf.square(tf.sub(f, tf.cast(ys, 'float32').reshape(f.shape)))));
}

function custom(loss: LossFunction): BatchLoss {
  return (f, ys) => {
    const l = loss(ys, f);
    if (!(l instanceof tf.Tensor) || l.rank !== 1 || l.shape[0] !== f.shape[0]) {
      throw new ShapeMismatchError(`Hessian: the loss function must return per-example losses of shape [${f.shape[0]}], returned ${l instanceof tf.Tensor ? `[${l.shape}]` : typeof l}`);
    }
    return tf.sum(l);
  };
}

/**
 * Checks that tfjs differentiates `loss` twice correctly at the outputs f of one batch: the
 * output-space Hessian-vector product ∇_f⟨∇_f L, u⟩ for a fixed random u must match the central
 * difference (∇_f L(f + εu) − ∇_f L(f − εu))/2ε within 5% (it differs by O(1) when an op of the
 * loss uses a custom gradient, and by ~ε² otherwise).
 */
export function checkLossCurvature(loss: BatchLoss, f: tf.Tensor2D, ys: tf.Tensor): void {
  const { ad, fd, grad } = tf.tidy(() => {
    const u = tf.randomNormal(f.shape, 0, 1, 'float32', 17);
    const eps = 1e-2 * Math.max(1, tf.max(tf.abs(f)).dataSync()[0]!);
    const gradient = (x: tf.Tensor) => tf.grad((y: tf.Tensor) => loss(y as tf.Tensor2D, ys))(x);
    const hvp = withSecondOrderGradients(() =>
      // The 0·Σf term keeps the outer derivative defined when the loss is linear in f.
      tf.grad((y: tf.Tensor) => tf.add(tf.sum(tf.mul(gradient(y), u)), tf.mul(0, tf.sum(y))))(f),
    );
    const diff = tf.div(tf.sub(gradient(tf.add(f, tf.mul(u, eps))), gradient(tf.sub(f, tf.mul(u, eps)))), 2 * eps);
    return { ad: tf.norm(tf.sub(hvp, diff)), fd: tf.norm(diff), grad: tf.norm(gradient(f)) };
  });
  const [gap, scale, g] = [ad, fd, grad].map((t) => {
    const v = t.dataSync()[0]!;
    t.dispose();
    return v;
  }) as [number, number, number];
  if (!(gap <= 0.05 * scale + 1e-4 * g + 1e-6)) {
    throw new InvalidArgumentError(
      `Hessian: tfjs does not differentiate the given loss function twice correctly (output-space Hessian-vector product off by ` +
        `${(gap / Math.max(scale, 1e-30)).toPrecision(2)} relative to finite differences). It probably uses an op with a custom gradient ` +
        `(tf.losses.softmaxCrossEntropy, tf.logSoftmax, ...): write it with elementary ops, or use loss 'cross_entropy' or 'mse'.`,
    );
  }
}
