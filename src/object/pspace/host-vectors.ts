/** Moves parameter vectors between the device (float32 tensors) and float64 host arrays. */
import { tf } from '../../tf.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';

export function vectorToHost(v: PVector): Float64Array {
  return new Float64Array(v.data.dataSync());
}

export function vectorFromHost(lc: LayerCollection, a: Float64Array): PVector {
  return PVector.adopt(lc, tf.tensor1d(new Float32Array(a)));
}
