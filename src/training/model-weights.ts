/**
 * The model's trainable weights seen through a layer collection: the tf.Variables in the flat
 * parameter order of CONVENTIONS.md, and their current values as one differentiable [d] tensor
 * (read inside a `tf.variableGrads` closure, the tape reaches the variables through it).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { checkModel, describe } from '../object/arguments.js';

/** The variables of `lc`'s parameters in `model`, in flat parameter order. */
export function collectionVariables(model: tf.LayersModel, lc: LayerCollection): tf.Variable[] {
  return lc.layersOf(model).flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
}

/** The current weights as a [d] tensor built from the variables (differentiable w.r.t. them). */
export function flatWeights(variables: readonly tf.Variable[]): tf.Tensor1D {
  return tf.tidy(() => (variables.length === 0 ? tf.zeros([0]) : tf.concat(variables.map((v) => tf.reshape(v, [-1]))))) as tf.Tensor1D;
}

/**
 * Resolves `{ model | layerCollection }` options: the model (required to read weights) and the
 * collection (default LayerCollection.fromModel(model)); `where` names the caller in errors.
 */
export function modelAndCollection(options: { model?: tf.LayersModel; layerCollection?: LayerCollection }, where: string): { model: tf.LayersModel; lc: LayerCollection } {
  if (options.model === undefined) {
    throw new InvalidArgumentError(`${where}: 'model' is required (the tf.LayersModel whose current weights are used), received ${describe(options.model)}`);
  }
  const model = checkModel(options.model, where);
  if (options.layerCollection !== undefined && !(options.layerCollection instanceof LayerCollection)) {
    throw new InvalidArgumentError(`${where}: 'layerCollection' must be a LayerCollection, received ${describe(options.layerCollection)}`);
  }
  return { model, lc: options.layerCollection ?? LayerCollection.fromModel(model) };
}
