/**
 * What the demo computes, free of DOM code: one representation of the FIM of a bundled model on
 * the sub-network drawn in the heatmap, next to the dense matrix of the same sub-network. Runs in
 * the browser (demo/main.ts); the end-to-end test checks its numbers against the library API in
 * Node.
 */
import { tf } from '../src/tf.js';
import { FIM, LayerCollection, PMatDense, type PMat } from '../src/index.js';
import { findRepresentation, computeFisher } from '../src/cli/representations.js';
import { denseEntries, measure, pickSubnetwork, relativeFrobeniusDistance } from '../src/cli/measure.js';

/** The representations offered by the demo (PMatImplicit stores no entries to draw). */
export const DEMO_REPRESENTATIONS = ['kfac', 'ekfac', 'diag', 'blockdiag', 'quasidiag', 'lowrank', 'ekfac-blockdiag', 'dense'] as const;
export const DEMO_MODELS = ['fmnist-cnn', 'fmnist-mlp'] as const;
/** Largest sub-network drawn (parameters), as in `npm start`. */
export const SUBNETWORK_PARAMETERS = 400;

export interface DemoResult {
  representation: string;
  /** Layer ids and sizes of the sub-network. */
  layers: Array<{ id: string; offset: number; numel: number }>;
  d: number;
  n: number;
  seconds: number;
  bytes: number | null;
  trace: number;
  frobenius: number | null;
  topEigenvalue: number | null;
  /** ‖M − F‖_F / ‖F‖_F with F the dense matrix of the same sub-network and data. */
  distance: number;
  /** Row-major d×d entries of the representation and of the dense reference. */
  entries: Float32Array;
  reference: Float32Array;
}

/** The first n examples in batches of `batchSize` (views the caller disposes with the result). */
export function batchesOf(xs: tf.Tensor, n: number, batchSize = 100): Array<{ xs: tf.Tensor }> {
  return Array.from({ length: Math.ceil(n / batchSize) }, (_, k) => ({ xs: tf.slice(xs, [k * batchSize], [Math.min(batchSize, n - k * batchSize)]) }));
}

/** The sub-network of `model` drawn by the demo (and by `npm start`). */
export function demoSubnetwork(model: tf.LayersModel): LayerCollection {
  return pickSubnetwork(model, LayerCollection.fromModel(model), SUBNETWORK_PARAMETERS);
}

/**
 * Computes representation `name` and the dense reference on the demo's sub-network over the
 * first `n` examples of `xs`. Releases every tensor it creates.
 */
export async function computeDemo(model: tf.LayersModel, xs: tf.Tensor, name: string, n: number): Promise<DemoResult> {
  const info = findRepresentation(name);
  const sub = demoSubnetwork(model);
  const loader = batchesOf(xs, n);
  try {
    const dense = await FIM({ model, loader, representation: PMatDense, layerCollection: sub });
    const reference = await denseEntries(dense);
    dense.dispose();
    const t0 = performance.now();
    const M = (await computeFisher(info, { model, loader, layerCollection: sub, variant: 'classif_logits' })) as PMat;
    const seconds = (performance.now() - t0) / 1000;
    try {
      const m = await measure(M);
      const entries = await denseEntries(M);
      return {
        representation: info.representation.representationName,
        layers: sub.layers.map((e) => ({ id: e.id, offset: e.offset, numel: e.numel })),
        d: sub.numel(),
        n,
        seconds,
        bytes: m.bytes,
        trace: m.trace,
        frobenius: m.frobenius,
        topEigenvalue: m.topEigenvalue,
        distance: relativeFrobeniusDistance(entries, reference),
        entries,
        reference,
      };
    } finally {
      M.dispose();
    }
  } finally {
    tf.dispose(loader.map((b) => b.xs));
  }
}
