/**
 * Several computations of the same data served by one pass over it: each is handed a spec that
 * joins a shared pass (backend/shared-pass.ts), so every statistic it accumulates in its first
 * pass sees every batch of a single pass over the union of their layers. The forward and
 * backward passes run once instead of once per computation, a one-shot loader (a generator, a
 * tf.data.Dataset iterated once) serves them all, and a Monte-Carlo variant samples the same
 * labels for all. This is `jointly` for computations that build their own statistics (the
 * representations of PMatMixed's groups, each through its `compute`).
 */
import type { PassSpec } from '../backend/pass.js';
import { SharedPass } from '../backend/shared-pass.js';

/**
 * Runs every computation on `spec` joined to one shared pass over the data and settles them all
 * (a failure does not stop the others from settling). A computation's first pass joins the
 * shared one; a later pass (EKFAC's `updateDiag` on its stored spec) runs on its own. The
 * shared pass starts once every computation has joined it or settled.
 *
 * @example
 * const [a, b] = await computeInOnePass(spec, [(s) => PMatDiag.compute(s), (s) => PMatKFAC.compute(s)]);
 */
export async function computeInOnePass<S extends PassSpec, T>(spec: S, computations: ReadonlyArray<(shared: S) => Promise<T>>): Promise<Array<PromiseSettledResult<T>>> {
  const pass = new SharedPass(spec, computations.length);
  return Promise.allSettled(
    computations.map(async (compute) => {
      const participant = pass.participant();
      try {
        return await compute({ ...spec, shared: participant });
      } finally {
        participant.done();
      }
    }),
  );
}
