/**
 * The leaf layers of a model, depth-first in model order, nested models expanded in place: the
 * order that fixes the flat parameter vector (CONVENTIONS.md).
 */
import type { tf } from '../tf.js';
import { isContainer } from './tfjs-internals.js';

/** Every leaf layer of `model` with its id: the layer name, prefixed by the names of enclosing nested models ('inner/dense_1'). */
export function* leafLayers(model: tf.LayersModel, prefix = ''): Generator<{ id: string; layer: tf.layers.Layer }> {
  for (const layer of model.layers) {
    if (isContainer(layer)) yield* leafLayers(layer, `${prefix}${layer.name}/`);
    else yield { id: `${prefix}${layer.name}`, layer };
  }
}
