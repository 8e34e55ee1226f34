/** The model of the kill-during-save test: one Dense layer 1,000 → 1 (d = 1,001 parameters). */
import { tf } from '../../src/tf.js';

export function bigModel(): tf.Sequential {
  return tf.sequential({ layers: [tf.layers.dense({ name: 'big', units: 1, inputShape: [1000], kernelInitializer: 'zeros' })] });
}
