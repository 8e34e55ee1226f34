/**
 * Timing and peak-memory measurement of the bench.
 *
 * Time: the median of `reps` runs, except that a measurement whose first run takes longer than
 * `longMs` is not repeated (its median is that single run; `reps: 1` in the JSON), which keeps
 * the whole bench under 15 minutes on a 2-core machine while cheap rows stay robust to noise.
 *
 * Peak memory: a separate, untimed run inside `tf.profile` (which records the tfjs byte count
 * after every kernel; its bookkeeping would distort the timing). Reported as `peakBytes` minus
 * the bytes allocated before the run, i.e. the memory the operation itself needs. The profiled
 * run also serves as the warm-up of the timed runs.
 */
import * as tf from '@tensorflow/tfjs';

export interface TimingOptions {
  reps: number;
  /** A first run longer than this is not repeated. */
  longMs: number;
}

export interface Timing {
  /** Median in ms. */
  ms: number;
  /** Every run, ms, in order. */
  samples: number[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Runs `f` once, then up to `reps − 1` more times when the first run was short; `after` runs untimed after each. */
export async function time(f: () => Promise<unknown> | unknown, o: TimingOptions, after?: () => void): Promise<Timing> {
  const samples: number[] = [];
  for (let r = 0; r < o.reps; r++) {
    const t0 = performance.now();
    await f();
    samples.push(performance.now() - t0);
    after?.();
    if (samples[0]! > o.longMs) break;
  }
  return { ms: median(samples), samples };
}

/** Peak tfjs tensor bytes of `f` above the bytes allocated when it starts. */
export async function peakBytes(f: () => Promise<unknown> | unknown): Promise<number> {
  const before = tf.memory().numBytes;
  const info = await tf.profile(async () => {
    await f();
    return [] as tf.Tensor[];
  });
  const peak = info.kernels.length ? info.peakBytes : before;
  return Math.max(0, peak - before, info.newBytes);
}
