/**
 * Per-example values kept apart by output and example, [O, n, ...]: the shape of a Jacobian
 * J[o, i, :] = ∇θf̃_o(xᵢ) and of its products J v. Not a sum over the data: each batch's rows
 * are kept (on the device, float32, as the maps that hold them store them) and assembled in
 * loader order, so the result grows with n.
 */
import { tf } from '../tf.js';
import type { OutputGradients } from '../backend/pass.js';
import type { Statistic } from './statistic.js';

/**
 * The statistic whose chunk of `count` stacked outputs gives rows [count·B, ...] (output-major,
 * from `rowsOf`), reshaped to the outputs' blocks [count, B, ...], joined over outputs (axis 0)
 * within a batch and over batches (axis 1): [O, n, ...], owned by the caller. `result` ignores n
 * (the rows are not averaged).
 *
 * @example
 * const { value: jv } = await accumulate(spec, outputRows((g) => directionalDerivatives(lc, g, v))); // [O, n]
 */
export function outputRows(rowsOf: (g: OutputGradients) => tf.Tensor): Statistic<tf.Tensor> {
  const perOutput: tf.Tensor[] = [];
  const perBatch: tf.Tensor[] = [];
  return {
    onOutputs: (g) => {
      const rows = rowsOf(g);
      perOutput.push(tf.keep(rows.reshape([g.count, g.batchSize, ...rows.shape.slice(1)])));
    },
    onBatchEnd: () => {
      perBatch.push(perOutput.length === 1 ? perOutput.pop()! : tf.concat(perOutput, 0));
      tf.dispose(perOutput.splice(0));
    },
    result: () => (perBatch.length === 1 ? perBatch.pop()! : tf.concat(perBatch, 1)),
    dispose: () => {
      tf.dispose(perOutput.splice(0));
      tf.dispose(perBatch.splice(0));
    },
  };
}
