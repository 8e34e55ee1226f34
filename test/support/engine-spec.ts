/**
 * Pass specifications built as `FIM` and `FIMMonteCarlo` build them, with a chosen backward
 * scheme: the engine tests compute the same matrices through `Representation.compute(spec)` with
 * the default scheme, the batched scheme in chunks, and the autodiff reference
 * (autodiff-scheme.ts). Call `initLinalg()` first, as FIM does.
 */
import type { tf } from '../../src/tf.js';
import type { BackwardScheme, PassSpec } from '../../src/engine.js';
import type { Loader } from '../../src/index.js';
import { LayerCollection } from '../../src/layers/layer-collection.js';
import { type Variant, variantCotangents } from '../../src/metrics/variants.js';
import { monteCarloCotangents } from '../../src/metrics/monte-carlo-samples.js';

/** What FIM({ model, loader, variant }) passes to the representation, with `backward` (undefined: the default scheme). */
export function fimSpec(model: tf.LayersModel, loader: Loader, variant: Variant, backward?: BackwardScheme): PassSpec {
  return { model, layerCollection: LayerCollection.fromModel(model), loader, outputs: variantCotangents(variant, {}), ...(backward ? { backward } : {}) };
}

/** What FIMMonteCarlo({ model, loader, trials, seed }) ('classif_logits') passes to the representation, with `backward`. */
export function monteCarloSpec(model: tf.LayersModel, loader: Loader, trials: number, seed: number, backward?: BackwardScheme): PassSpec {
  const shape = model.outputs[0]!.shape;
  const classes = shape[shape.length - 1] ?? 1;
  return {
    model,
    layerCollection: LayerCollection.fromModel(model),
    loader,
    outputs: monteCarloCotangents('classif_logits', { trials, seed, sigma2: 1, classes }),
    ...(backward ? { backward } : {}),
  };
}

/** A scheme that counts what it delivers: the tests check that the scheme they pass is the one that ran, and its chunking. */
export interface WatchedScheme extends BackwardScheme {
  /** Batches the scheme back-propagated. */
  readonly batches: number;
  /** The largest number of outputs delivered at once. */
  readonly largestCount: number;
}

/** `scheme`, counting its batches and the largest chunk of outputs it delivers. */
export function watched(scheme: BackwardScheme): WatchedScheme {
  let batches = 0;
  let largestCount = 0;
  return {
    name: scheme.name,
    get batches() {
      return batches;
    },
    get largestCount() {
      return largestCount;
    },
    backward(batch) {
      batches++;
      return scheme.backward({
        layerCollection: batch.layerCollection,
        batchSize: batch.batchSize,
        forward: (hooks) => batch.forward(hooks),
        cotangents: (output) => batch.cotangents(output),
        deliver: (g) => {
          largestCount = Math.max(largestCount, g.count);
          batch.deliver(g);
        },
      });
    },
  };
}
