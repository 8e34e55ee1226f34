/**
 * One pass over the data that hands, for every batch and every square-root output o of the
 * variant, each collected layer's input x and the gradient g of f̃_o at its pre-activation to
 * a visitor. The visitor (a representation's accumulator) turns (x, g) into whatever it needs.
 *
 * How the outputs' cotangents are back-propagated is the spec's backward scheme
 * (backward-scheme.ts): by default the batched one (batched-scheme.ts), one recorded forward
 * pass per batch and the O outputs' cotangents back-propagated together, stacked along the
 * batch axis. The pass around it checks the batch, the model's outputs and the gradients'
 * magnitudes, and stops at the next batch or output once aborted.
 */
import { tf } from '../tf.js';
import { AbortedError, InvalidArgumentError, NonFiniteError } from '../errors.js';
import type { LayerCollection, LayerEntry } from '../layers/layer-collection.js';
import { type Batch, type Loader, checkBatchInputs, countExamples, iterateBatches, releaseBatch } from '../data/loader.js';
import { executeModel } from './executor.js';
import type { BackwardBatch, BackwardScheme, ForwardHooks } from './backward-scheme.js';
import { batchedBackwardScheme } from './batched-scheme.js';
import { ensureKernelFixes } from './substrate.js';
import { yieldToEventLoop } from './yield.js';
import { MagnitudeGuard } from './magnitudes.js';

/** Progress of a pass over the data. */
export interface Progress {
  /** Examples processed so far. */
  examplesDone: number;
  /** All examples of the pass, when the loader knows it (an array of batches). */
  examplesTotal?: number;
}

/**
 * What a visitor receives for one batch: the gradients of `count` consecutive square-root
 * outputs (count = 1 the plain case), stacked output-major along the batch axis (row
 * (o − firstOutput)·B + i is output o, example i; see stacking.ts).
 */
export interface OutputGradients {
  /** Captured input of each collected layer, by layer id, [B, ...]. */
  readonly inputs: ReadonlyMap<string, tf.Tensor>;
  /** Gradient of f̃_o at each collected layer's pre-activation, by layer id, [count·B, ...]. */
  readonly grads: ReadonlyMap<string, tf.Tensor>;
  /** The number B of examples in the batch. */
  readonly batchSize: number;
  /** Index of the first square-root output in `grads`. */
  readonly firstOutput: number;
  /** How many outputs are stacked in `grads` (≥ 1). */
  readonly count: number;
  /** The number O of square-root outputs of the batch (outputs 0 … O − 1 arrive over one or more calls). */
  readonly numOutputs: number;
}

/** The same type under the name that says what it holds: stacked outputs. */
export type StackedOutputGradients = OutputGradients;

/** What a representation does with each batch of one pass over the data. */
export interface BatchVisitor {
  /** Called inside a tidy scope (tensors created here are released unless kept), one or more times per batch. */
  onOutputs(g: OutputGradients): void;
  /** Called after the last output of each batch. */
  onBatchEnd?(): void;
}

/**
 * The square-root outputs of a batch: given the model outputs f (flattened to [B, C]), the
 * targets and the batch's position in the pass, the cotangents M [O, B, C] (constants) whose
 * rows are back-propagated: f̃_o(x_i) = Σ_c M[o, i, c] f_c(x_i). A FIM variant, a Monte-Carlo
 * sample of labels, or the identity (the raw Jacobian) are all cotangent sources.
 */
export interface CotangentSource {
  /** Name used in error messages, e.g. "variant 'classif_logits'". */
  readonly description: string;
  /** Whether batches must carry targets `ys`. */
  readonly needsTargets: boolean;
  /** `firstExample`: the index in the pass of the batch's first example (for errors naming an example). */
  cotangents(output: tf.Tensor2D, ys: tf.Tensor | undefined, batchIndex: number, firstExample: number): tf.Tensor3D;
  /**
   * The source as plain data (a named variant and its options), so that a saved matrix can run
   * later passes after loading (EKFAC's updateDiag); absent when it cannot be written down (a
   * loss function).
   */
  readonly definition?: Readonly<Record<string, string | number>>;
}

/** Everything that defines the matrix to compute, independent of its representation. */
export interface PassSpec {
  /** The model; its weights are never modified. */
  readonly model: tf.LayersModel;
  /** The layers whose inputs and pre-activation gradients the visitors receive. */
  readonly layerCollection: LayerCollection;
  /** The batches of the pass. */
  readonly loader: Loader;
  /** The square-root outputs f̃_o back-propagated for each batch (a variant, sampled labels, the identity). */
  readonly outputs: CotangentSource;
  /** Called after each batch. */
  readonly onProgress?: (p: Progress) => void;
  /** Stops the pass (with AbortedError) at the next batch or output once aborted. */
  readonly signal?: AbortSignal;
  /**
   * Set by a caller that computes several matrices of the same data at once (PMatMixed): the
   * first pass of each joins one shared pass over the data (see SharedPass).
   */
  readonly shared?: SharedPassParticipant;
  /**
   * How the cotangents of the outputs are back-propagated (default `batchedBackwardScheme()`:
   * all outputs of a batch stacked along the batch axis, in chunks within a 256 MB float
   * budget). The tests pass an independent autodiff scheme here to cross-check the default.
   */
  readonly backward?: BackwardScheme;
}

/** What a pass returns: the number of examples n and of square-root outputs O. */
export interface PassResult {
  /** The number n of examples seen. */
  examples: number;
  /** The number O of square-root outputs per example. */
  outputs: number;
}

/** One participant's handle on a shared pass. */
export interface SharedPassParticipant {
  /** Joins the shared pass (the participant's first pass) or runs a pass of its own (later ones). */
  join(spec: PassSpec, visitor: BatchVisitor): Promise<PassResult>;
  /** The participant's computation has settled: the shared pass no longer waits for it. */
  done(): void;
}

const DEFAULT_SCHEME = batchedBackwardScheme();

/** Runs the pass; returns the number of examples n and of square-root outputs O. */
export async function passOverData(spec: PassSpec, visitor: BatchVisitor): Promise<PassResult> {
  if (spec.shared) return spec.shared.join(spec, visitor);
  ensureKernelFixes();
  const { model, layerCollection: lc } = spec;
  const collected = new Map<tf.layers.Layer, LayerEntry>(lc.layers.map((e) => [e.layer, e]));
  let examples = 0;
  let outputs = 0;
  let batchIndex = 0;
  const examplesTotal = countExamples(spec.loader);
  checkAborted(spec.signal);
  for await (const batch of iterateBatches(spec.loader)) {
    try {
      checkAborted(spec.signal);
      if (batch.size === 0) continue;
      checkBatch(model, batch, spec.outputs);
      outputs = processBatch(spec, collected, batch, { index: batchIndex++, firstExample: examples }, visitor);
      examples += batch.size;
    } finally {
      releaseBatch(batch);
    }
    spec.onProgress?.(examplesTotal === undefined ? { examplesDone: examples } : { examplesDone: examples, examplesTotal });
    // Let timers and events run (an AbortSignal.timeout fires here), then see whether they aborted.
    await yieldToEventLoop();
    checkAborted(spec.signal);
  }
  return { examples, outputs };
}

/** NaN/Infinity in the outputs of finite inputs come from the weights: name the layer. */
function assertFiniteOutput(model: tf.LayersModel, f: tf.Tensor): void {
  const finite = (t: tf.Tensor) => {
    const s = tf.sum(tf.mul(t, 0));
    const ok = Number.isFinite(s.dataSync()[0]!);
    s.dispose();
    return ok;
  };
  if (finite(f)) return;
  const culprit = model.weights.find((w) => w.dtype === 'float32' && !finite(w.read()));
  throw new NonFiniteError(
    culprit
      ? `weight '${culprit.name}' of the model contains NaN or Infinity; the matrix would be meaningless`
      : `the model's outputs contain NaN or Infinity for finite inputs (overflow?); the matrix would be meaningless`,
  );
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new AbortedError(`the pass over the data was aborted${signal.reason !== undefined ? ` (${String(signal.reason)})` : ''}; no partial result is kept`);
  }
}

/** The model's only output; models with several outputs are refused. */
function singleOutput(outs: tf.Tensor[]): tf.Tensor {
  if (outs.length !== 1) throw new InvalidArgumentError(`the model has ${outs.length} outputs; models with one output are supported`);
  return outs[0]!;
}

/** Every collected layer must have been reached by the forward pass (its input recorded). */
function checkLayersUsed(lc: LayerCollection, reached: ReadonlySet<string>): void {
  for (const e of lc.layers) {
    if (!reached.has(e.id)) throw new InvalidArgumentError(`layer '${e.id}' of the layer collection is not used by the model's forward pass`);
  }
}

/** Where a batch sits in the pass: its index and the index of its first example. */
interface BatchPosition {
  readonly index: number;
  readonly firstExample: number;
}

/** The batch as the backward scheme sees it: the pass's checks around the scheme's forward and backward work. */
function backwardBatch(
  spec: PassSpec,
  collected: Map<tf.layers.Layer, LayerEntry>,
  batch: Batch,
  at: BatchPosition,
  visitor: BatchVisitor,
): BackwardBatch {
  const { model, layerCollection: lc } = spec;
  const guard = new MagnitudeGuard(lc.layers);
  return {
    layerCollection: lc,
    batchSize: batch.size,
    forward(hooks: ForwardHooks = {}) {
      const reached = new Set<string>();
      const outs = executeModel(model, batch.xs, {
        collected,
        ...(hooks.probes ? { probes: hooks.probes } : {}),
        ...(hooks.onCall ? { onCall: hooks.onCall } : {}),
        onLayer: (e, x, s) => {
          reached.add(e.id);
          hooks.onLayer?.(e, x, s);
        },
      });
      const output = singleOutput(outs);
      checkLayersUsed(lc, reached);
      return output;
    },
    cotangents(output) {
      const f = output.reshape([batch.size, -1]) as tf.Tensor2D;
      assertFiniteOutput(model, f);
      return spec.outputs.cotangents(f, batch.ys, at.index, at.firstExample);
    },
    deliver(g) {
      guard.check(g.inputs, g.grads);
      visitor.onOutputs({ inputs: g.inputs, grads: g.grads, batchSize: batch.size, firstOutput: g.firstOutput, count: g.count, numOutputs: g.numOutputs });
      checkAborted(spec.signal);
    },
  };
}

function processBatch(
  spec: PassSpec,
  collected: Map<tf.layers.Layer, LayerEntry>,
  batch: Batch,
  at: BatchPosition,
  visitor: BatchVisitor,
): number {
  const numOutputs = (spec.backward ?? DEFAULT_SCHEME).backward(backwardBatch(spec, collected, batch, at, visitor));
  visitor.onBatchEnd?.();
  return numOutputs;
}

/** Checks input ranks, sizes and dtypes against the model (integer tokens may feed Embeddings), finiteness, targets. */
function checkBatch(model: tf.LayersModel, batch: Batch, outputs: CotangentSource): void {
  checkBatchInputs(model, batch, 'the batch');
  if (outputs.needsTargets && !batch.ys) {
    throw new InvalidArgumentError(`${outputs.description} needs targets: give batches as {xs, ys} or [xs, ys]`);
  }
}
