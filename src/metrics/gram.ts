/**
 * GramMatrix: the empirical neural tangent kernel of a model on a data set,
 * K[o, i, o', j] = ⟨∂f_o(x_i)/∂θ, ∂f_o'(x_j)/∂θ⟩ (CONVENTIONS.md: [O, n, O, n], no averaging),
 * in the requested FMat representation.
 */
import type { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { Progress } from '../backend/pass.js';
import type { Loader } from '../data/loader.js';
import { initLinalg } from '../linalg/index.js';
import { FMatDense } from '../object/fspace/dense.js';
import type { FMatBase, FMatRepresentation } from '../object/fspace/fmat.js';
import { checkMetricArguments } from './arguments.js';
import { jacobianOutputs } from './jacobian.js';

/** Options of `GramMatrix`. */
export interface GramMatrixOptions<F extends FMatBase> {
  /** A tf.Sequential or functional tf.LayersModel. Its weights are never modified. */
  model: tf.LayersModel;
  /** Batches of inputs (targets are ignored); see `Loader`. */
  loader: Loader;
  /** FMatDense (default). */
  representation?: FMatRepresentation<F>;
  /**
   * Center the per-example gradients: K^c[o,i,o',j] = ⟨∇f_o(x_i) − μ_o, ∇f_o'(x_j) − μ_o'⟩ with
   * μ_o = (1/n) Σ_i ∇f_o(x_i), i.e. C K C with C = I − 11ᵀ/n on the example axes. Default false.
   */
  centering?: boolean;
  /** Which parameters; default LayerCollection.fromModel(model). */
  layerCollection?: LayerCollection;
  /** Called after each batch. */
  onProgress?: (p: Progress) => void;
  /** Aborts the computation (AbortedError) at the next batch or output; every tensor is released. */
  signal?: AbortSignal;
}

/**
 * Computes the empirical NTK of `model` on `loader` from per-layer kernels (Dense:
 * (x̃ₐx̃_bᵀ)∘(gₐg_bᵀ)), in blocks of example batches, without forming the Jacobian: one forward
 * and O backward passes per batch, then one block product per pair of batches. Memory: the
 * collected layers' inputs and pre-activation gradients of all examples (n·Σ|x_l| + O·n·Σ|g_l|
 * floats) and the (O·n)² result.
 *
 * @example
 * const K = await GramMatrix({ model, loader: [{ xs }] });   // FMatDense [O, n, O, n]
 * const { values } = K.eigendecomposition({ k: 5 });       // top of the NTK spectrum
 * K.dispose();
 */
export async function GramMatrix<F extends FMatBase = FMatDense>(options: GramMatrixOptions<F>): Promise<F> {
  const layerCollection = checkMetricArguments(options, 'GramMatrix', ['model', 'loader', 'representation', 'centering', 'layerCollection', 'onProgress', 'signal']);
  const representation = (options.representation ?? FMatDense) as FMatRepresentation<F>;
  if (typeof (representation as Partial<FMatRepresentation<F>>).compute !== 'function') {
    throw new InvalidArgumentError(`GramMatrix: 'representation' must be an FMat representation class such as FMatDense`);
  }
  if (options.centering !== undefined && typeof options.centering !== 'boolean') {
    throw new InvalidArgumentError(`GramMatrix: 'centering' must be a boolean, received ${String(options.centering)}`);
  }
  await initLinalg();
  return representation.compute({
    model: options.model,
    layerCollection,
    loader: options.loader,
    outputs: jacobianOutputs(),
    onProgress: options.onProgress,
    signal: options.signal,
    centering: options.centering ?? false,
  });
}
