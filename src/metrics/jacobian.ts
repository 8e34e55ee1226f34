/**
 * Jacobian: the map J from parameters to outputs, J[o, i, :] = ∂f_o(x_i)/∂θ (CONVENTIONS.md:
 * stacked as [O, n, d], no averaging), in the requested PFMap representation.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { CotangentSource, Progress } from '../backend/pass.js';
import type { Loader } from '../data/loader.js';
import { PFMapDense } from '../object/map/dense.js';
import type { PFMapBase, PFMapRepresentation } from '../object/map/pfmap.js';
import { checkMetricArguments } from './arguments.js';

/** Options of `Jacobian`. */
export interface JacobianOptions<M extends PFMapBase> {
  /** A tf.Sequential or functional tf.LayersModel. Its weights are never modified. */
  model: tf.LayersModel;
  /** Batches of inputs (targets are ignored); see `Loader`. Re-iterable for PFMapImplicit. */
  loader: Loader;
  /** PFMapDense (default) or PFMapImplicit. */
  representation?: PFMapRepresentation<M>;
  /** Which parameters; default LayerCollection.fromModel(model). */
  layerCollection?: LayerCollection;
  /** Called after each batch. */
  onProgress?: (p: Progress) => void;
  /** Aborts the pass (AbortedError; for PFMapImplicit, each product's pass); every tensor is released. */
  signal?: AbortSignal;
}

/**
 * The identity "square-root outputs": row o of the cotangents is the o-th unit vector, so the
 * engine back-propagates every raw output f_o (O = C, the flattened output size) and its
 * gradients are the rows of the Jacobian.
 */
export function jacobianOutputs(): CotangentSource {
  return {
    description: 'the Jacobian',
    needsTargets: false,
    cotangents: (output) => {
      const [b, c] = output.shape;
      return tf.tidy(() => tf.mul(tf.eye(c).reshape([c, 1, c]), tf.ones([1, b, 1])) as tf.Tensor3D);
    },
  };
}

/**
 * Computes the Jacobian of the outputs of `model` on `loader` with respect to the parameters of
 * the layer collection. Costs one forward and O backward passes per batch (O outputs per example).
 *
 * @example
 * const J = await Jacobian({ model, loader: [{ xs }] });   // PFMapDense, J.data is [O, n, d]
 * const v = PVector.random(J.layerCollection, 0);
 * const Jv = J.jvp(v);                                     // FVector [O, n]
 * [J, v, Jv].forEach((o) => o.dispose());
 */
export async function Jacobian<M extends PFMapBase = PFMapDense>(options: JacobianOptions<M>): Promise<M> {
  const layerCollection = checkMetricArguments(options, 'Jacobian', ['model', 'loader', 'representation', 'layerCollection', 'onProgress', 'signal']);
  const representation = (options.representation ?? PFMapDense) as PFMapRepresentation<M>;
  if (typeof (representation as Partial<PFMapRepresentation<M>>).compute !== 'function') {
    throw new InvalidArgumentError(`Jacobian: 'representation' must be a PFMap representation class (PFMapDense or PFMapImplicit)`);
  }
  return representation.compute({
    model: options.model,
    layerCollection,
    loader: options.loader,
    outputs: jacobianOutputs(),
    onProgress: options.onProgress,
    signal: options.signal,
  });
}
