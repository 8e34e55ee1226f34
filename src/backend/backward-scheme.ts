/**
 * The seam between a batch's forward pass and the visitors: a backward scheme turns one batch
 * into the gradients of the O square-root outputs at every collected layer's pre-activation.
 * The pass (pass.ts) owns everything around it — running the model, refusing models with
 * several outputs or layers the forward pass never reaches, checking that the outputs are
 * finite, asking the cotangent source for M [O, B, C], the magnitude guard, abort checks and
 * the visitor — and hands the scheme a {@link BackwardBatch} that exposes those steps.
 *
 * The default, `batchedBackwardScheme()` (batched-scheme.ts), records one forward pass and
 * back-propagates the cotangents of k outputs at once, stacked along the batch axis. A
 * different scheme (the tests' autodiff reference in test/support/, one `tf.grads` per output)
 * is passed as `PassSpec.backward`.
 */
import type { tf } from '../tf.js';
import type { LayerCollection, LayerEntry } from '../layers/layer-collection.js';
import type { LayerCall } from './executor.js';
import type { OutputGradients } from './pass.js';

export type { LayerCall } from './executor.js';

/** What a scheme may observe or change while the model runs on the batch (`BackwardBatch.forward`). */
export interface ForwardHooks {
  /** Receives each collected layer's entry, its input x [B, ...] and its pre-activation s [B, ...] (tensors of the caller's tidy scope). */
  readonly onLayer?: (entry: LayerEntry, input: tf.Tensor, preactivation: tf.Tensor) => void;
  /**
   * Tensors added to the collected layers' pre-activations, by layer id: differentiating the
   * output with respect to zero probes gives the gradients at the pre-activations.
   */
  readonly probes?: ReadonlyMap<string, tf.Tensor>;
  /** Receives every call of a leaf layer in execution order: what a hand-written backward pass needs. */
  readonly onCall?: (call: LayerCall) => void;
}

/**
 * The gradients of `count` consecutive square-root outputs of one batch, as a scheme delivers
 * them: the visitor's {@link OutputGradients} without the batch size, which the pass knows.
 */
export type SchemeGradients = Omit<OutputGradients, 'batchSize'>;

/** One batch of the pass as a backward scheme sees it. */
export interface BackwardBatch {
  /** The layers whose pre-activation gradients the scheme must deliver. */
  readonly layerCollection: LayerCollection;
  /** The number B of examples in the batch. */
  readonly batchSize: number;
  /**
   * Runs the model on the batch (inference mode, through differentiable ops, so it may run
   * inside `tf.grads`) and returns its output [B, ...]. Throws InvalidArgumentError for a model
   * with several outputs or a collected layer the forward pass does not reach. Call inside a
   * tidy scope.
   */
  forward(hooks?: ForwardHooks): tf.Tensor;
  /**
   * The cotangents M [O, B, C] of the batch's output f (as `forward` returns it): f̃_o(x_i) =
   * Σ_c M[o, i, c] f_c(x_i). Throws NonFiniteError, naming the weight, when f is not finite.
   */
  cotangents(output: tf.Tensor): tf.Tensor3D;
  /**
   * Hands the gradients of outputs firstOutput … firstOutput + count − 1 to the visitor, after
   * checking their magnitudes (NonFiniteError past 2⁶⁴), then stops the pass (AbortedError) if
   * it was aborted. Call inside a tidy scope: the visitor's tensors are released with it.
   */
  deliver(gradients: SchemeGradients): void;
}

/**
 * How the cotangents of a batch's square-root outputs are back-propagated to the collected
 * layers' pre-activations.
 *
 * @example
 * ```ts
 * import { batchedBackwardScheme, type PassSpec } from 'nngeometry/engine';
 * // One output per chunk: the least memory, O backward passes per batch.
 * const spec: PassSpec = { ...baseSpec, backward: batchedBackwardScheme({ stackedFloatsBudget: 1 }) };
 * ```
 */
export interface BackwardScheme {
  /** A name for messages, e.g. 'batched'. */
  readonly name: string;
  /**
   * Delivers, through `batch.deliver`, the gradients of every square-root output of the batch
   * (in chunks of any size, in order), releasing every tensor it creates; returns O.
   */
  backward(batch: BackwardBatch): number;
}
