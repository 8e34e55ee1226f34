/**
 * Sums of a statistic over a pass: formed in float32 on the device within batches and added
 * across batches in float64 on the host (CONVENTIONS.md, "Numbers").
 */
import { tf } from '../tf.js';

/**
 * A running sum of same-shaped tensors: added on the device within a batch, flushed into a
 * float64 host array at the end of each batch.
 */
export class HostSum {
  /**
   * Batches summed on the device before a transfer to the host: float32 sums of up to 16
   * batches stay accurate (relative error ~1e-6 for batches of 128) and the transfers, which
   * dominate cheap passes such as one-sample Monte-Carlo KFAC, become rare.
   */
  static readonly BATCHES_PER_TRANSFER = 16;
  private readonly sum: Float64Array;
  private pending: tf.Tensor | null = null;
  private batches = 0;
  /** Whether anything reached `sum` yet (the first transfer can then be a plain copy). */
  private transferred = false;

  constructor(size: number) {
    this.sum = new Float64Array(size);
  }

  /** The float64 total of everything added (transfers what is pending first). */
  get total(): Float64Array {
    this.transfer();
    return this.sum;
  }

  /** Adds `t` (any shape with `size` elements); does not take ownership. */
  add(t: tf.Tensor): void {
    const next = this.pending ? tf.add(this.pending, t) : t.clone();
    this.pending?.dispose();
    this.pending = tf.keep(next);
  }

  /** Marks the end of a batch; every BATCHES_PER_TRANSFER batches the device sum moves to float64. */
  flush(): void {
    if (++this.batches >= HostSum.BATCHES_PER_TRANSFER) this.transfer();
  }

  /** The float64 total divided by n (the mean over n examples). */
  mean(n: number): Float64Array {
    if (!this.transferred && this.pending) {
      // One transfer in all: divide on the device and copy, instead of two host loops.
      const scaled = tf.tidy(() => tf.div(this.pending!, n));
      this.sum.set(scaled.dataSync());
      scaled.dispose();
      this.pending.dispose();
      this.pending = null;
      this.transferred = true;
      return this.sum;
    }
    return divideBy(this.total, n);
  }

  private transfer(): void {
    this.batches = 0;
    if (!this.pending) return;
    const v = this.pending.dataSync();
    if (this.transferred) for (let k = 0; k < v.length; k++) this.sum[k]! += v[k]!;
    else this.sum.set(v);
    this.transferred = true;
    this.pending.dispose();
    this.pending = null;
  }

  /** Releases any pending tensor (on error paths). */
  dispose(): void {
    this.pending?.dispose();
    this.pending = null;
  }
}

/** Divides a float64 array by n in place and returns it. */
export function divideBy(a: Float64Array, n: number): Float64Array {
  for (let k = 0; k < a.length; k++) a[k]! /= n;
  return a;
}
