/**
 * Class-index targets: where a loss reads `ys` as class indices (softmax cross-entropy with
 * targets [B] or [B, 1]), every label must be an integer in [0, C). tf.oneHot silently maps an
 * index outside [0, C) to a zero row (a zero loss gradient: the example vanishes from the
 * matrix) and tf.cast truncates 2.7 to 2, so a wrong label would give a plausible wrong number.
 */
import { tf } from '../tf.js';
import { LabelError } from '../errors.js';

/** Whether targets `ys` of a batch of `batchSize` examples are read as class indices (rather than one-hot or probabilities) for a C-way softmax. */
export function holdsClassIndices(ys: tf.Tensor, batchSize: number, classes: number): boolean {
  return ys.rank === 1 || (ys.rank === 2 && ys.shape[0] === batchSize && ys.shape[1] === 1 && classes > 1);
}

/**
 * Throws LabelError naming the first label of `ys` that is not an integer in [0, classes):
 * its example index in the pass (`firstExample` + its index in the batch), its value and C.
 * Cost: one read of the B labels to the host (the size of one row of outputs), no tensor kept.
 *
 * @example
 * checkClassLabels(tf.tensor1d([0, 3, 9]), 4, 'FIM (empirical, cross_entropy)', 0);
 * // LabelError: FIM (empirical, cross_entropy): label 9 of example 2 is not a class index in [0, 4) ...
 */
export function checkClassLabels(ys: tf.Tensor, classes: number, where: string, firstExample: number): void {
  const labels = ys.dataSync();
  for (let i = 0; i < labels.length; i++) {
    const y = Number(labels[i]);
    if (Number.isInteger(y) && y >= 0 && y < classes) continue;
    throw new LabelError(
      `${where}: label ${ys.dtype === 'float32' ? shortestFloat32(y) : y} of example ${firstExample + i} is not a class index in [0, ${classes}) ` +
        `(the model has ${classes} outputs); labels must be integers 0..${classes - 1}, or give one-hot targets [B, ${classes}]`,
    );
  }
}

/** The shortest decimal that reads back as the float32 `x` (2.7, not 2.700000047683716). */
function shortestFloat32(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  for (let p = 1; p < 9; p++) {
    const s = Number(x.toPrecision(p));
    if (Math.fround(s) === x) return String(s);
  }
  return String(x);
}
