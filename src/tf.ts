/**
 * The one place the library imports TensorFlow.js. `@tensorflow/tfjs` (not `tfjs-core`) is
 * required: only the umbrella package registers the gradient functions that autodiff needs.
 */
import * as tf from '@tensorflow/tfjs';

export { tf };
export type Tensor = tf.Tensor;
