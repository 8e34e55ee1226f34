/**
 * Hessian: the Hessian of the mean loss, H = ∇²θ (1/n) Σ_i ℓ(f(x_i; θ), y_i) (CONVENTIONS.md:
 * the mean, on the scale of the Fisher; for a model linear in θ with cross-entropy, H = GGN =
 * FIM('classif_logits')), from tfjs grad-of-grad, in a dense, diagonal, block-diagonal or
 * matrix-free representation.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { Progress } from '../backend/pass.js';
import type { Loader } from '../data/loader.js';
import { initLinalg } from '../linalg/index.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatImplicit } from '../object/pspace/implicit.js';
import { checkMetricArguments } from './arguments.js';
import { type HessianLoss, batchLoss } from './hessian-losses.js';
import { checkSecondOrderSupport } from './hessian-support.js';
import { type HessianSpec, forEachHessianBatch, unflatten } from './hessian-vector-product.js';
import { PMatHessianImplicit } from '../object/pspace/hessian-implicit.js';

/** Representations the Hessian can be computed in. PMatImplicit gives a PMatHessianImplicit. */
export type HessianRepresentation = typeof PMatDense | typeof PMatDiag | typeof PMatBlockDiag | typeof PMatImplicit | typeof PMatHessianImplicit;

/** Options of `Hessian`. */
export interface HessianOptions<R extends HessianRepresentation> {
  /** A tf.Sequential or functional tf.LayersModel. Its weights are never modified. */
  model: tf.LayersModel;
  /** Batches of inputs and targets {xs, ys} or [xs, ys]; re-iterable for the implicit representation. */
  loader: Loader;
  /**
   * Per-example loss ℓ: 'cross_entropy' (softmax cross-entropy on logits; class indices [B] or
   * one-hot [B, C] targets), 'mse' (½‖f − y‖²), or a function (yTrue, yPred [B, C]) => losses [B]
   * made of ops tfjs differentiates twice (checked once against finite differences).
   */
  loss: HessianLoss;
  /** PMatDense, PMatDiag, PMatBlockDiag (all from d Hessian-vector products), or PMatImplicit / PMatHessianImplicit. */
  representation: R;
  /** Which parameters; default LayerCollection.fromModel(model). */
  layerCollection?: LayerCollection;
  /** Compute even with layer classes whose second derivatives have not been verified (see hessian-support.ts). Default false. */
  allowUnverifiedLayers?: boolean;
  /** Called after each batch. */
  onProgress?: (p: Progress) => void;
  /** Aborts the pass (AbortedError; for the implicit representation, each product's pass); every tensor is released. */
  signal?: AbortSignal;
}

/** The matrix type each representation gives. */
export type HessianResult<R> = R extends typeof PMatDense
  ? PMatDense
  : R extends typeof PMatDiag
    ? PMatDiag
    : R extends typeof PMatBlockDiag
      ? PMatBlockDiag
      : PMatHessianImplicit;

/**
 * Computes the Hessian of the mean loss of `model` on `loader` with respect to the layer
 * collection's parameters. Stored representations are assembled from the d columns H e_k, each
 * a Hessian-vector product per batch (about 3–4 forward+backward passes each: for small d);
 * the dense one is symmetrised, (H + Hᵀ)/2. The implicit one makes one pass per product.
 *
 * @throws UnsupportedLayerError for models tfjs cannot differentiate twice correctly (e.g. a
 *   MaxPooling2D after a collected layer, a 'logSoftmax' activation), naming the layer.
 * @example
 * const H = await Hessian({ model, loader: [{ xs, ys }], loss: 'cross_entropy', representation: PMatDense });
 * H.norm(2);   // sharpness: the largest |eigenvalue|
 * H.dispose();
 */
export async function Hessian<R extends HessianRepresentation>(options: HessianOptions<R>): Promise<HessianResult<R>> {
  const layerCollection = checkMetricArguments(options, 'Hessian', ['model', 'loader', 'loss', 'representation', 'layerCollection', 'allowUnverifiedLayers', 'onProgress', 'signal']);
  const loss = batchLoss(options.loss);
  const rep = options.representation as HessianRepresentation;
  const supported: HessianRepresentation[] = [PMatDense, PMatDiag, PMatBlockDiag, PMatImplicit, PMatHessianImplicit];
  if (!supported.includes(rep)) {
    const name = (rep as { representationName?: string } | undefined)?.representationName ?? String(rep);
    throw new InvalidArgumentError(`Hessian: representation ${name} is not supported; use PMatDense, PMatDiag, PMatBlockDiag or PMatImplicit`);
  }
  if (options.allowUnverifiedLayers !== undefined && typeof options.allowUnverifiedLayers !== 'boolean') {
    throw new InvalidArgumentError(`Hessian: 'allowUnverifiedLayers' must be a boolean, received ${String(options.allowUnverifiedLayers)}`);
  }
  checkSecondOrderSupport(options.model, layerCollection, options.allowUnverifiedLayers ?? false);
  const classes = options.model.outputs[0]?.shape.slice(1).reduce<number | null>((a, b) => (a === null || b === null ? null : a * b), 1);
  if (options.loss === 'cross_entropy' && classes === 1) {
    throw new InvalidArgumentError(
      `Hessian: loss 'cross_entropy' needs at least 2 classes but model '${options.model.name}' has 1 output (a softmax over one class is constant, its Hessian 0); ` +
        `for a single logit give a binary cross-entropy as a loss function, or use 'mse'`,
    );
  }
  await initLinalg();
  const spec: HessianSpec = {
    model: options.model,
    layerCollection,
    loader: options.loader,
    loss,
    checkLoss: typeof options.loss === 'function',
    onProgress: options.onProgress,
    signal: options.signal,
  };
  if (rep === PMatImplicit || rep === PMatHessianImplicit) return new PMatHessianImplicit(spec) as HessianResult<R>;
  return (await fromColumns(spec, rep === PMatDense ? 'dense' : rep === PMatDiag ? 'diag' : 'blockDiag')) as HessianResult<R>;
}

/**
 * H from its columns H e_k (k = 1..d), each the sum over batches of a Hessian-vector product,
 * keeping what the representation stores: all of it, the diagonal, or the per-layer blocks.
 */
async function fromColumns(spec: HessianSpec, kind: 'dense' | 'diag' | 'blockDiag'): Promise<PMatDense | PMatDiag | PMatBlockDiag> {
  const lc = spec.layerCollection;
  const d = lc.numel();
  const layerAt = new Int32Array(d);
  lc.layers.forEach((e, l) => layerAt.fill(l, e.offset, e.offset + e.numel));
  const dense = kind === 'dense' ? new Float64Array(d * d) : null;
  const diag = kind === 'diag' ? new Float64Array(d) : null;
  const blocks = kind === 'blockDiag' ? lc.layers.map((e) => new Float64Array(e.numel * e.numel)) : null;
  const n = await forEachHessianBatch(spec, (batch) => {
    for (let k = 0; k < d; k++) {
      const unit = tf.tidy(() => unflatten(lc, tf.oneHot(k, d).cast('float32') as tf.Tensor1D));
      let column: Float32Array;
      try {
        const hv = batch.hvp(unit);
        column = hv.dataSync() as Float32Array;
        hv.dispose();
      } finally {
        tf.dispose(unit);
      }
      if (dense) for (let j = 0; j < d; j++) dense[k * d + j]! += column[j]!;
      if (diag) diag[k]! += column[k]!;
      if (blocks) {
        const e = lc.layers[layerAt[k]!]!;
        const row = k - e.offset;
        const block = blocks[layerAt[k]!]!;
        for (let j = 0; j < e.numel; j++) block[row * e.numel + j]! += column[e.offset + j]!;
      }
    }
  });
  if (dense) return new PMatDense(lc, symmetrise(dense, d, n));
  if (diag) return new PMatDiag(lc, diag.map((x) => x / n));
  return PMatBlockDiag.fromBlocks(lc, blocks!.map((b, l) => symmetrise(b, lc.layers[l]!.numel, n)));
}

/** (A + Aᵀ)/(2n) in place: the mean, with the rounding asymmetry of the columns removed. */
function symmetrise(a: Float64Array, size: number, n: number): Float64Array {
  for (let i = 0; i < size; i++) {
    a[i * size + i]! /= n;
    for (let j = i + 1; j < size; j++) {
      const m = (a[i * size + j]! + a[j * size + i]!) / (2 * n);
      a[i * size + j] = m;
      a[j * size + i] = m;
    }
  }
  return a;
}

