/**
 * Child process of the kill-during-save test: saves two versions of one model (all weights 1,
 * then all weights 2, ~16 MB of weights each) to the folder given as argv[2], alternately,
 * forever; prints "saving" once the first save has begun its second round.
 */
import { tf } from '../../../src/tf.js';
import { saveModel } from '../../../src/index.js';

const dir = process.argv[2]!;
await tf.setBackend('cpu');
const model = tf.sequential({ layers: [tf.layers.dense({ units: 2000, inputShape: [2000], useBias: false })] });
const versions = [1, 2].map((v) => model.weights.map((w) => tf.fill(w.shape as number[], v)));
for (let round = 0; ; round++) {
  model.setWeights(versions[round % 2]!);
  await saveModel(model, dir, { userDefinedMetadata: { version: (round % 2) + 1 } });
  if (round === 1) console.log('saving');
}
