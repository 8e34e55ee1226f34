/**
 * The data term of the Laplace marginal likelihood at the MAP θ̂, gathered in one forward pass
 * over the training data: the summed cross-entropy Σ −log softmax(f(x_i))_{y_i} for
 * classification, or the summed squared error Σ ‖f(x_i) − y_i‖² for regression (so that the
 * Gaussian log-likelihood can be re-evaluated for any σ² without a new pass).
 */
import { tf } from '../tf.js';
import { AbortedError, InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors.js';
import { type Loader, countExamples, iterateBatches, releaseBatch } from '../data/loader.js';
import type { Progress } from '../backend/pass.js';
import { classOneHot } from '../influence/loss-gradients.js';
import { preciseSumOf } from '../object/reductions.js';

/** The likelihoods of `Laplace.fit`. */
export type LaplaceLikelihood = 'classification' | 'regression';

export interface DataFit {
  /** Number of examples n. */
  examples: number;
  /** Outputs per example (classes, or regression targets). */
  outputs: number;
  /** Σ cross-entropy (classification) or Σ ‖f − y‖² (regression). */
  loss: number;
}

/** Model outputs of a batch as [B, C] (inference mode). */
export function outputsOf(model: tf.LayersModel, xs: tf.Tensor | tf.Tensor[]): tf.Tensor2D {
  return tf.tidy(() => {
    const f = model.predict(xs) as tf.Tensor;
    if (Array.isArray(f)) throw new InvalidArgumentError(`the model has ${f.length} outputs; Laplace handles models with one output`);
    return f.reshape([f.shape[0]!, -1]) as tf.Tensor2D;
  });
}

/** One pass: the loss sums of `likelihood` at the current weights. */
export async function dataFit(model: tf.LayersModel, loader: Loader, likelihood: LaplaceLikelihood, where: string, onProgress?: (p: Progress) => void, signal?: AbortSignal): Promise<DataFit> {
  const total = countExamples(loader);
  let examples = 0;
  let outputs = 0;
  let loss = 0;
  let batches = 0;
  for await (const batch of iterateBatches(loader)) {
    try {
      if (signal?.aborted) throw new AbortedError(`${where} was aborted; no partial result is kept`);
      if (batch.size === 0) continue;
      if (!batch.ys) throw new InvalidArgumentError(`${where}: the batches of 'loader' need labels: pass {xs, ys} or [xs, ys] batches (class indices for 'classification', targets for 'regression')`);
      const ys = batch.ys;
      const f = outputsOf(model, batch.xs.length === 1 ? batch.xs[0]! : batch.xs);
      try {
        const [b, c] = f.shape;
        outputs = c;
        if (likelihood === 'regression') {
          if (ys.size !== f.size) throw new ShapeMismatchError(`${where}: targets have shape [${ys.shape}] but the model outputs [${f.shape}] (likelihood 'regression')`);
          loss += preciseSumOf(() => tf.square(tf.sub(f, tf.cast(ys.reshape([b, c]), 'float32'))));
        } else {
          if (c < 2) throw new InvalidArgumentError(`${where}: likelihood 'classification' needs at least 2 logits but the model has ${c} output; use likelihood 'regression' for a real-valued output`);
          const onehot = classOneHot(ys, b, c, `${where}: 'loader'`);
          loss += preciseSumOf(() => tf.neg(tf.mul(onehot, tf.logSoftmax(f))));
          onehot.dispose();
        }
      } finally {
        f.dispose();
      }
      if (!Number.isFinite(loss)) throw new NonFiniteError(`${where}: the log-likelihood of batch ${batches} is not finite (NaN or Infinity in the inputs, the targets or the model's outputs)`);
      examples += batch.size;
      batches++;
    } finally {
      releaseBatch(batch);
    }
    onProgress?.(total === undefined ? { examplesDone: examples } : { examplesDone: examples, examplesTotal: total });
  }
  return { examples, outputs, loss };
}
