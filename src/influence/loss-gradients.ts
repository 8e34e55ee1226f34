/**
 * Per-example gradients of the negative log-likelihood ℓ(z) = −log p(y | f(x)) at the current
 * weights, batch by batch: the output cotangent ∂ℓ/∂f is p − onehot(y) for logits
 * ('classif_logits', softmax cross-entropy) and (f − y)/σ² for 'regression'
 * (ℓ = ‖f − y‖²/(2σ²) + const), back-propagated once per batch by the engine; the rows of the
 * batch Jacobian of that single output are the per-example gradients ∇θ ℓ(z_i) (Koh & Liang 2017).
 * Each batch is its own pass, accumulating the statistic `outputRows` (statistics/output-rows.ts:
 * the rows of the one output, [1, B, ...]), so that the caller may await its own work (a
 * conjugate-gradient solve, itself passes over data) between batches.
 */
import { tf } from '../tf.js';
import { AbortedError, InvalidArgumentError, ShapeMismatchError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { CotangentSource, OutputGradients, Progress } from '../backend/pass.js';
import { type Loader, countExamples, iterateBatches, releaseBatch } from '../data/loader.js';
import { batchJacobian } from '../statistics/contractions.js';
import { accumulate } from '../statistics/statistic.js';
import { outputRows } from '../statistics/output-rows.js';

/** The likelihoods whose per-example loss gradients are available. */
export type InfluenceVariant = 'classif_logits' | 'regression';

export interface LossGradientSpec {
  model: tf.LayersModel;
  layerCollection: LayerCollection;
  variant: InfluenceVariant;
  sigma2: number;
  /** Name of the loader in error messages, e.g. 'trainLoader'. */
  loaderName: string;
  /** Name of the calling function in error messages. */
  where: string;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** Checks a variant name for the influence functions and the Laplace likelihoods. */
export function checkInfluenceVariant(variant: unknown, where: string): InfluenceVariant {
  if (variant !== 'classif_logits' && variant !== 'regression') {
    throw new InvalidArgumentError(`${where}: 'variant' must be 'classif_logits' (softmax cross-entropy on logits) or 'regression' (Gaussian, variance sigma2), received ${JSON.stringify(variant)}`);
  }
  return variant;
}

/**
 * Refuses a classification likelihood on a model whose last layer already applies a softmax
 * (the likelihood is defined on logits).
 */
export function checkLogitsModel(model: tf.LayersModel, variant: InfluenceVariant, where: string): void {
  if (variant !== 'classif_logits') return;
  const last = model.layers[model.layers.length - 1];
  const activation = (last?.getConfig() as { activation?: unknown } | undefined)?.activation;
  if (activation === 'softmax') {
    throw new InvalidArgumentError(
      `${where}: the classification likelihood needs logits, but the last layer '${last!.name}' applies a softmax; ` +
        `use a model whose last layer is linear (activation 'linear') with the same weights`,
    );
  }
}

/** ∂ℓ/∂f for a batch of outputs [B, C] and labels, checked: [1, B, C]. */
function lossCotangent(spec: LossGradientSpec, output: tf.Tensor2D, ys: tf.Tensor | undefined): tf.Tensor3D {
  const [b, c] = output.shape;
  if (!ys) {
    throw new InvalidArgumentError(`${spec.where}: the batches of '${spec.loaderName}' need labels: pass {xs, ys} or [xs, ys] batches (ys: class indices for 'classif_logits', targets for 'regression')`);
  }
  if (spec.variant === 'regression') {
    if (ys.size !== output.size) throw new ShapeMismatchError(`${spec.where}: '${spec.loaderName}' targets have shape [${ys.shape}] but the model outputs [${output.shape}] (variant 'regression')`);
    return tf.tidy(() => tf.div(tf.sub(output, tf.cast(ys.reshape([b, c]), 'float32')), spec.sigma2).reshape([1, b, c]) as tf.Tensor3D);
  }
  if (c < 2) throw new InvalidArgumentError(`${spec.where}: variant 'classif_logits' needs at least 2 logits but the model has ${c} output; use 'regression' for a real-valued output`);
  const onehot = classOneHot(ys, b, c, `${spec.where}: '${spec.loaderName}'`);
  return tf.tidy(() => {
    const g = tf.sub(tf.softmax(output), onehot);
    onehot.dispose();
    return g.reshape([1, b, c]) as tf.Tensor3D;
  });
}

/**
 * Class labels as one-hot [B, C]: integer indices [B] or [B, 1] in [0, C), or one-hot / soft
 * labels [B, C]. Throws naming `what` for anything else.
 */
export function classOneHot(ys: tf.Tensor, b: number, c: number, what: string): tf.Tensor2D {
  if (ys.rank === 2 && ys.shape[1] === c && c > 1) return tf.cast(ys, 'float32') as tf.Tensor2D;
  if (!(ys.rank === 1 || (ys.rank === 2 && ys.shape[1] === 1))) {
    throw new ShapeMismatchError(`${what} labels have shape [${ys.shape}]; expected class indices [${b}] or one-hot labels [${b}, ${c}]`);
  }
  const values = ys.dataSync();
  for (const v of values) {
    if (!(Number.isInteger(v) && v >= 0 && v < c)) {
      throw new InvalidArgumentError(`${what} has label ${v}, not a class index in 0..${c - 1} (the model has ${c} logits)`);
    }
  }
  return tf.tidy(() => tf.oneHot(tf.tensor1d(Int32Array.from(values), 'int32'), c).toFloat() as tf.Tensor2D);
}

/** The cotangent source of the per-example loss gradients. */
function lossGradientOutputs(spec: LossGradientSpec): CotangentSource {
  return { description: `the ${spec.variant} loss`, needsTargets: false, cotangents: (output, ys) => lossCotangent(spec, output, ys) };
}

/**
 * Calls `visit` with the per-example loss gradients [B, d] of every batch of `loader` in order
 * (the tensor is released after `visit` settles). Returns the number of examples.
 */
export async function forEachLossGradientBatch(
  spec: LossGradientSpec,
  loader: Loader,
  visit: (grads: tf.Tensor2D, start: number) => Promise<void> | void,
): Promise<number> {
  return forEachLossBatch(spec, loader, (out) => batchJacobian(spec.layerCollection, out), visit);
}

/**
 * As `forEachLossGradientBatch`, with `reduce` turning the layers' inputs and output gradients
 * of the loss (one square-root output) into the per-batch tensor handed to `visit`.
 */
export async function forEachLossBatch<T extends tf.Tensor>(
  spec: LossGradientSpec,
  loader: Loader,
  reduce: (out: OutputGradients) => T,
  visit: (value: T, start: number) => Promise<void> | void,
): Promise<number> {
  const total = countExamples(loader);
  let done = 0;
  for await (const batch of iterateBatches(loader)) {
    let grads: T | null = null;
    try {
      if (spec.signal?.aborted) throw new AbortedError(`${spec.where} was aborted; no partial result is kept`);
      if (batch.size === 0) continue;
      const one = { xs: batch.xs, ys: batch.ys };
      const { value } = await accumulate(
        { model: spec.model, layerCollection: spec.layerCollection, loader: [one], outputs: lossGradientOutputs(spec), signal: spec.signal },
        outputRows(reduce),
      );
      // The loss is one output: [1, B, ...] → [B, ...].
      grads = tf.squeeze(value, [0]) as T;
      value.dispose();
      await visit(grads, done);
      done += batch.size;
    } finally {
      grads?.dispose();
      releaseBatch(batch);
    }
    spec.onProgress?.(total === undefined ? { examplesDone: done } : { examplesDone: done, examplesTotal: total });
  }
  return done;
}

/** Concatenates per-batch results along `axis` and releases them. */
export function concatAndRelease<T extends tf.Tensor>(parts: T[], axis: number): T {
  try {
    return (parts.length === 1 ? parts[0]!.clone() : tf.concat(parts, axis)) as T;
  } finally {
    tf.dispose(parts);
  }
}
