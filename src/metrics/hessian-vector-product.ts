/**
 * Hessian-vector products of the mean loss L(θ) = (1/n) Σ_i ℓ(f(x_i; θ), y_i) by reverse-over-
 * reverse differentiation in tfjs (Pearlmutter 1994): the collected layers' parameters become
 * function arguments through the executor's `weights` hook, g(θ) = ∇θ Σ_batch ℓ is formed on the
 * tape, and H v = ∇θ ⟨g(θ), v⟩. Each product costs, per batch, one forward pass, its backward
 * pass and the backward pass of that backward pass (about 3–4 forward+backward passes), under
 * the gradient replacements of second-order-gradients.ts.
 */
import { tf } from '../tf.js';
import { AbortedError, InvalidArgumentError } from '../errors.js';
import type { LayerCollection, LayerEntry } from '../layers/layer-collection.js';
import { type Batch, type Loader, assertFinite, checkBatchInputs, iterateBatches, releaseBatch } from '../data/loader.js';
import { executeModel } from '../backend/executor.js';
import { ensureKernelFixes } from '../backend/substrate.js';
import { yieldToEventLoop } from '../backend/yield.js';
import type { Progress } from '../backend/pass.js';
import { type BatchLoss, checkLossCurvature, checkLossTargets } from './hessian-losses.js';
import { releaseAbandonedTape, withSecondOrderGradients } from './second-order-gradients.js';
import { translateSecondOrderError } from './hessian-support.js';

/** Everything that defines a Hessian, independent of its representation. */
export interface HessianSpec {
  /** The model; its weights are never modified. */
  readonly model: tf.LayersModel;
  /** The parameters θ the Hessian is over. */
  readonly layerCollection: LayerCollection;
  /** The batches (with targets) of the mean loss. */
  readonly loader: Loader;
  /** The per-example loss ℓ_i whose mean (1/n) Σ ℓ_i is differentiated twice. */
  readonly loss: BatchLoss;
  /** True for a user-supplied loss, checked once against finite differences (hessian-losses.ts). */
  readonly checkLoss: boolean;
  /** Called after each batch of each pass. */
  readonly onProgress?: (p: Progress) => void;
  /** Stops the pass (AbortedError) at the next batch once aborted. */
  readonly signal?: AbortSignal;
}

/** One batch, ready for Hessian-vector products. */
export interface HessianBatch {
  readonly size: number;
  /** Σ_batch H_i v for v given per parameter tensor (layer order, then kernel/bias): [d]. */
  hvp(v: readonly tf.Tensor[]): tf.Tensor1D;
}

/**
 * Visits every batch of the loader (validated: inputs match the model, targets present and
 * finite inputs); returns n. The batch is released after `visit` returns.
 */
export async function forEachHessianBatch(spec: HessianSpec, visit: (b: HessianBatch) => void): Promise<number> {
  ensureKernelFixes();
  const { model, layerCollection: lc } = spec;
  const collected = new Map<tf.layers.Layer, LayerEntry>(lc.layers.map((e) => [e.layer, e]));
  let examples = 0;
  let checked = !spec.checkLoss;
  let weightsChecked = false;
  checkAborted(spec.signal);
  for await (const batch of iterateBatches(spec.loader)) {
    try {
      checkAborted(spec.signal);
      if (batch.size === 0) continue;
      const ys = checkBatch(model, batch);
      checkLossTargets(spec.loss, ys, batch.size, () => outputsPerExample(model, batch, collected), examples);
      if (!weightsChecked) {
        assertFiniteWeights(lc);
        weightsChecked = true;
      }
      const lossOf = (w: readonly tf.Tensor[]): tf.Scalar => {
        const out = executeModel(model, batch.xs, { collected, weights: splitByLayer(lc, w) });
        if (out.length !== 1) throw new InvalidArgumentError(`Hessian: the model has ${out.length} outputs; models with one output are supported`);
        return spec.loss(out[0]!.reshape([batch.size, -1]) as tf.Tensor2D, ys);
      };
      if (!checked) {
        try {
          tf.tidy(() => {
            const out = executeModel(model, batch.xs, { collected });
            checkLossCurvature(spec.loss, out[0]!.reshape([batch.size, -1]) as tf.Tensor2D, ys);
          });
        } catch (e) {
          // A loss that throws inside tf.grad leaves the tensors its custom-gradient ops saved on the tape.
          releaseAbandonedTape();
          throw e;
        }
        checked = true;
      }
      visit({ size: batch.size, hvp: (v) => hessianVectorProduct(spec.model, lc, lossOf, v) });
      examples += batch.size;
    } finally {
      releaseBatch(batch);
    }
    spec.onProgress?.({ examplesDone: examples });
    // Timers and events run between batches (an AbortSignal.timeout fires here).
    await yieldToEventLoop();
    checkAborted(spec.signal);
  }
  return examples;
}

/** ∇θ ⟨∇θ L_batch(θ), v⟩ at the current weights, flattened to [d]. */
function hessianVectorProduct(model: tf.LayersModel, lc: LayerCollection, lossOf: (w: readonly tf.Tensor[]) => tf.Scalar, v: readonly tf.Tensor[]): tf.Tensor1D {
  const params = lc.layers.flatMap((e) => e.layer.trainableWeights.map((w) => w.read()));
  try {
    return withSecondOrderGradients(() =>
      tf.tidy(() => {
        const hv = tf.grads((...w: tf.Tensor[]) => {
          const g = tf.grads((...inner: tf.Tensor[]) => lossOf(inner))(w);
          // ⟨g, v⟩, plus 0·Σθ so that the outer derivative exists even where g does not depend
          // on θ (a loss linear in a model linear in θ: H = 0).
          return g.map((gk, k) => tf.add(tf.sum(tf.mul(gk, v[k]!)), tf.mul(0, tf.sum(w[k]!)))).reduce((a, b) => tf.add(a, b)) as tf.Scalar;
        })(params);
        return tf.concat(hv.map((t) => t.reshape([-1]))) as tf.Tensor1D;
      }),
    );
  } catch (e) {
    releaseAbandonedTape();
    throw translateSecondOrderError(e, model);
  }
}

/** The flat list of parameter tensors as the executor's per-layer `weights` map. */
function splitByLayer(lc: LayerCollection, w: readonly tf.Tensor[]): Map<string, tf.Tensor[]> {
  let k = 0;
  return new Map(lc.layers.map((e) => [e.id, e.parameters.map(() => w[k++]!)]));
}

/** A flat [d] vector as per-parameter tensors in their tfjs shapes (caller disposes). */
export function unflatten(lc: LayerCollection, flat: tf.Tensor1D): tf.Tensor[] {
  return tf.tidy(() =>
    lc.layers.flatMap((e) => {
      let at = e.offset;
      return e.parameters.map((p) => {
        const t = tf.slice(flat, [at], [p.size]).reshape([...p.shape]);
        at += p.size;
        return t;
      });
    }),
  );
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new AbortedError(`Hessian: the pass over the data was aborted${signal.reason !== undefined ? ` (${String(signal.reason)})` : ''}; no partial result is kept`);
  }
}

/** NaN or Infinity in a collected weight would make every product meaningless: name the weight. */
function assertFiniteWeights(lc: LayerCollection): void {
  for (const e of lc.layers) {
    for (const w of e.layer.trainableWeights) {
      if (w.dtype === 'float32') assertFinite(w.read(), `Hessian: weight '${w.name}' of the model`);
    }
  }
}

/** Outputs per example: from the model's output shape, or from a forward pass when it has unknown dimensions. */
function outputsPerExample(model: tf.LayersModel, batch: Batch, collected: Map<tf.layers.Layer, LayerEntry>): number {
  const dims = model.outputs[0]?.shape.slice(1) ?? [];
  if (dims.every((d): d is number => typeof d === 'number')) return dims.reduce((a, b) => a * b, 1);
  return tf.tidy(() => executeModel(model, batch.xs, { collected })[0]!.size / batch.size);
}

function checkBatch(model: tf.LayersModel, batch: Batch): tf.Tensor {
  checkBatchInputs(model, batch, 'Hessian');
  if (!batch.ys) throw new InvalidArgumentError(`Hessian needs targets for its loss: give batches as {xs, ys} or [xs, ys]`);
  return batch.ys;
}
