/**
 * A statistic of the data: what one pass over the data sums, per batch, from each collected
 * layer's input x and the gradients g of the square-root outputs at its pre-activation, and the
 * float64 arrays it ends in once divided by the number of examples n. Representations are
 * algebra built from those arrays; they run no pass and define no visitor themselves.
 *
 * Several statistics of the same pass (a diagonal and cross terms, say) are combined with
 * `jointly`, so that the forward and backward passes run once and a Monte-Carlo variant samples
 * the same labels for all of them.
 */
import { type BatchVisitor, type PassSpec, passOverData } from '../backend/pass.js';

/**
 * The accumulator of one statistic: a visitor of the pass (`onOutputs` inside the pass's tidy
 * scope, `onBatchEnd` after each batch) that keeps its running sums, then `result(n)`.
 */
export interface Statistic<R> extends BatchVisitor {
  /** The statistic over the n examples of the pass (sums divided by n); called once, after the pass. */
  result(examples: number): R;
  /** Releases whatever the sums still hold on the device (called after `result`, and on error paths). */
  dispose(): void;
}

/** What `accumulate` returns: the statistic and the pass's n and O. */
export interface Accumulated<R> {
  readonly value: R;
  /** The number of examples n of the pass. */
  readonly examples: number;
  /** The number of square-root outputs O per example. */
  readonly outputs: number;
}

/**
 * Runs one pass over the data of `spec` (or joins its shared pass, `spec.shared`) feeding
 * `statistic`, and returns its result; the accumulator is disposed whatever happens.
 *
 * @example
 * const { value: diag } = await accumulate(spec, squaredGradients(spec.layerCollection));
 */
export async function accumulate<R>(spec: PassSpec, statistic: Statistic<R>): Promise<Accumulated<R>> {
  try {
    const { examples, outputs } = await passOverData(spec, statistic);
    return { value: statistic.result(examples), examples, outputs };
  } finally {
    statistic.dispose();
  }
}

/**
 * Several statistics fed by the same pass, in the order given; the result holds each one's
 * result under its key.
 *
 * @example
 * const both = jointly({ diag: squaredGradients(lc), cross: weightBiasCross(lc, supports) });
 * const { value } = await accumulate(spec, both); // value.diag, value.cross
 */
export function jointly<T extends Record<string, unknown>>(parts: { readonly [K in keyof T]: Statistic<T[K]> }): Statistic<T> {
  const all = Object.values(parts) as Array<Statistic<unknown>>;
  return {
    onOutputs: (g) => all.forEach((s) => s.onOutputs(g)),
    onBatchEnd: () => all.forEach((s) => s.onBatchEnd?.()),
    result: (n) => Object.fromEntries(Object.entries(parts).map(([k, s]) => [k, (s as Statistic<unknown>).result(n)])) as T,
    dispose: () => all.forEach((s) => s.dispose()),
  };
}
