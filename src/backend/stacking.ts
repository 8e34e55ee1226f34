/**
 * Output-major stacking: the engine hands the gradients of `count` consecutive square-root
 * outputs stacked along the batch axis (row (o − firstOutput)·B + i is output o, example i),
 * count = 1 being the plain case. These helpers move between that layout and per-output
 * tensors, so that contractions and consumers handle any count in one code path.
 */
import { tf } from '../tf.js';
import type { OutputGradients } from './pass.js';

/**
 * t repeated k times along the batch axis, [k·B, ...]: the inputs matching output-major stacked
 * gradients, so that a per-example contraction handles k outputs in one call (a concatenation:
 * a block copy, where tfjs-wasm's Tile and strided Slice kernels are slow). k = 1 returns t.
 */
export function tileRows(t: tf.Tensor, k: number): tf.Tensor {
  return k === 1 ? t : tf.concat(Array.from({ length: k }, () => t), 0);
}

/** Rows o·B … o·B + B − 1 of output-major stacked gradients: the o-th output's, [B, ...]. */
export function outputSlice(g: tf.Tensor, o: number, batchSize: number): tf.Tensor {
  // As rows of a matrix: a contiguous block, which tfjs copies flat.
  return tf.tidy(() => tf.slice(g.reshape([g.shape[0]!, -1]), [o * batchSize, 0], [batchSize, -1]).reshape([batchSize, ...g.shape.slice(1)]));
}

/**
 * Calls `f` once per output of stacked gradients, each with the gradients of that one output
 * (count 1) and in its own tidy scope: for consumers that keep per-output results apart
 * (Jacobian maps, kernel blocks, low-rank rows). With count 1, `f` sees `g` itself.
 */
export function forEachOutput(g: OutputGradients, f: (one: OutputGradients) => void): void {
  if (g.count === 1) {
    f(g);
    return;
  }
  for (let o = 0; o < g.count; o++) {
    tf.tidy(() => {
      const grads = new Map([...g.grads].map(([id, t]) => [id, outputSlice(t, o, g.batchSize)]));
      f({ inputs: g.inputs, grads, batchSize: g.batchSize, firstOutput: g.firstOutput + o, count: 1, numOutputs: g.numOutputs });
    });
  }
}
