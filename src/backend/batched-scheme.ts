/**
 * The default backward scheme: one recorded forward pass per batch, then the cotangents of the
 * O square-root outputs back-propagated together, stacked along the batch axis, by hand-written
 * rules for the common layers and tfjs autodiff for the rest (batched-backward.ts), in chunks of
 * outputs when memory requires.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerCall } from './executor.js';
import type { BackwardScheme } from './backward-scheme.js';
import { batchedBackward, tensorsNeedingCotangents } from './batched-backward.js';

/** Options of {@link batchedBackwardScheme}. */
export interface BatchedSchemeOptions {
  /**
   * Floats one stacked activation may hold: the outputs are back-propagated in chunks of k so
   * that k·B·(largest activation per example) stays below this (default 2²⁶, 256 MB of
   * float32; 1 gives one output per chunk).
   */
  readonly stackedFloatsBudget?: number;
}

/** Default {@link BatchedSchemeOptions.stackedFloatsBudget}: 256 MB of float32. */
export const DEFAULT_STACKED_FLOATS_BUDGET = 2 ** 26;

/**
 * The batched backward scheme: 1 forward pass and ⌈O/k⌉ backward passes of k·B rows per batch,
 * k as large as `stackedFloatsBudget` allows (at least 1). The pass uses
 * `batchedBackwardScheme()` when `PassSpec.backward` is not given.
 *
 * @example
 * ```ts
 * import { batchedBackwardScheme } from 'nngeometry/engine';
 * const oneOutputPerChunk = batchedBackwardScheme({ stackedFloatsBudget: 1 });
 * ```
 */
export function batchedBackwardScheme(options: BatchedSchemeOptions = {}): BackwardScheme {
  const budget = options.stackedFloatsBudget ?? DEFAULT_STACKED_FLOATS_BUDGET;
  if (!(typeof budget === 'number' && budget >= 1)) {
    throw new InvalidArgumentError(`batchedBackwardScheme: 'stackedFloatsBudget' must be a number ≥ 1, received ${String(budget)}`);
  }
  return {
    name: 'batched',
    backward(batch) {
      const b = batch.batchSize;
      return tf.tidy(() => {
        const calls: LayerCall[] = [];
        const inputs = new Map<string, tf.Tensor>();
        const output = batch.forward({ onLayer: (e, x) => inputs.set(e.id, x), onCall: (c) => calls.push(c) });
        const cotangents = batch.cotangents(output);
        const numOutputs = cotangents.shape[0];
        const needs = tensorsNeedingCotangents(calls);
        let widest = 1;
        for (const call of calls) for (const t of [...call.outputs, ...call.inputs]) widest = Math.max(widest, t.size / b);
        const chunk = Math.max(1, Math.min(numOutputs, Math.floor(budget / (b * widest))));
        for (let first = 0; first < numOutputs; first += chunk) {
          const count = Math.min(chunk, numOutputs - first);
          tf.tidy(() => {
            const seed = tf.slice(cotangents, [first, 0, 0], [count, -1, -1]).reshape([count * b, ...output.shape.slice(1)]);
            const grads = batchedBackward(calls, needs, output, seed, count);
            batch.deliver({ inputs, grads, firstOutput: first, count, numOutputs });
          });
        }
        return numOutputs;
      });
    },
  };
}
