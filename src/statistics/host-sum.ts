/**
 * Sums of a statistic over a pass: formed in float32 on the device within batches and added
 * across batches in float64 on the host (CONVENTIONS.md, "Numbers").
 */
import { tf } from '../tf.js';
import type { WasmBackend } from '../backend/kernels/wasm_backend.js';

/**
 * A running sum of same-shaped tensors: added on the device within a batch, flushed into a
 * float64 host array at the end of each batch.
 *
 * A sum over d ≈ 10⁸ parameters may be added in segments (`add(t, offset)`, one per layer): the
 * device then never holds a whole-vector concatenation beside the pending sum, and each
 * transfer copies one segment at a time into the preallocated float64 total. Every element
 * sees the same float32 additions, division and float64 conversion as a whole-vector sum, so
 * the numbers are the same bit for bit.
 */
export class HostSum {
  /**
   * Batches summed on the device before a transfer to the host: float32 sums of up to 16
   * batches stay accurate (relative error ~1e-6 for batches of 128) and the transfers, which
   * dominate cheap passes such as one-sample Monte-Carlo KFAC, become rare.
   */
  static readonly BATCHES_PER_TRANSFER = 16;
  private readonly sum: Float64Array;
  /** The float32 device sums not yet transferred, by offset in `sum`. */
  private readonly pending = new Map<number, tf.Tensor>();
  private batches = 0;
  /** Whether anything reached `sum` yet (the first transfer can then be a plain copy). */
  private transferred = false;
  /** Whether each term goes to the float64 sum as it is added (no device sum). */
  private readonly immediate: boolean;

  /**
   * `immediate`: every term is copied into the float64 sum when it is added, and no float32 sum
   * stays on the device between batches. For sums so large that the device copies count
   * (Kronecker factors of 4,096², 64 MiB each in float32: seven of them pending are 0.45 GiB of
   * tfjs-wasm memory, which never shrinks); the numbers are then float64 sums of float32 terms,
   * no less accurate than float32 device sums of up to BATCHES_PER_TRANSFER batches.
   */
  constructor(size: number, options: { immediate?: boolean } = {}) {
    this.sum = new Float64Array(size);
    this.immediate = options.immediate ?? false;
  }

  /** The float64 total of everything added (transfers what is pending first). */
  get total(): Float64Array {
    this.transfer();
    return this.sum;
  }

  /**
   * Adds `t` (any shape) to the entries offset … offset + t.size − 1 of the sum (offset 0 and
   * t.size = size: the whole sum); does not take ownership. Segments are added at the same
   * offsets, with the same sizes, throughout a pass.
   */
  add(t: tf.Tensor, offset = 0): void {
    if (this.immediate) {
      if (offset < 0 || offset + t.size > this.sum.length) throw new RangeError(`HostSum.add: ${t.size} values at offset ${offset} overflow a sum of ${this.sum.length}`);
      addValues(this.sum, offset, wasmView(t) ?? t.dataSync());
      this.transferred = true;
      return;
    }
    const before = this.pending.get(offset);
    if (before && before.size !== t.size) throw new RangeError(`HostSum.add: a segment of ${t.size} values at offset ${offset}, where ${before.size} were added before`);
    if (offset < 0 || offset + t.size > this.sum.length) throw new RangeError(`HostSum.add: ${t.size} values at offset ${offset} overflow a sum of ${this.sum.length}`);
    const next = before ? tf.add(before, t) : t.clone();
    before?.dispose();
    this.pending.set(offset, tf.keep(next));
  }

  /** Marks the end of a batch; every BATCHES_PER_TRANSFER batches the device sum moves to float64. */
  flush(): void {
    if (++this.batches >= HostSum.BATCHES_PER_TRANSFER) this.transfer();
  }

  /** The float64 total divided by n (the mean over n examples). */
  mean(n: number): Float64Array {
    if (!this.transferred && this.pending.size > 0) {
      // One transfer in all, each value divided as it is copied (read in place on wasm: a
      // quotient tensor and a dataSync copy would each add the segment's size in fresh memory,
      // whose first touch costs as much as the pass at d ≈ 10⁸).
      for (const [offset, t] of this.pending) {
        const v = wasmView(t);
        if (v != null) divideFloat32(this.sum, offset, v, n);
        else {
          const scaled = tf.tidy(() => tf.div(t, n));
          this.sum.set(scaled.dataSync(), offset);
          scaled.dispose();
        }
        t.dispose();
        this.pending.delete(offset);
      }
      this.transferred = true;
      return this.sum;
    }
    return divideBy(this.total, n);
  }

  private transfer(): void {
    this.batches = 0;
    if (this.pending.size === 0) return;
    for (const [offset, t] of this.pending) {
      const v = wasmView(t) ?? t.dataSync();
      if (this.transferred) addValues(this.sum, offset, v);
      else this.sum.set(v, offset);
      t.dispose();
      this.pending.delete(offset);
    }
    this.transferred = true;
  }

  /** Releases any pending tensor (on error paths). */
  dispose(): void {
    for (const t of this.pending.values()) t.dispose();
    this.pending.clear();
  }
}

/** Divides a float64 array by n in place and returns it. */
export function divideBy(a: Float64Array, n: number): Float64Array {
  for (let k = 0; k < a.length; k++) a[k]! /= n;
  return a;
}

/** sum[offset + k] += v[k] for every k of v. */
function addValues(sum: Float64Array, offset: number, v: ArrayLike<number>): void {
  const n = v.length;
  for (let k = 0; k < n; k++) sum[offset + k]! += v[k]!;
}

/**
 * sum[offset + k] = fround(v[k] / n): the float32 quotient the device's division gives (a
 * quotient of float32 values rounded once in float64 then to float32 is the correctly rounded
 * float32 quotient), written straight into the float64 total.
 */
function divideFloat32(sum: Float64Array, offset: number, v: Float32Array, n: number): void {
  const d = Math.fround(n);
  const count = v.length;
  for (let k = 0; k < count; k++) sum[offset + k] = Math.fround(v[k]! / d);
}

/**
 * The float32 values of `t` read in place from tfjs-wasm's memory (no copy), or null on another
 * backend. dataSync() copies into a fresh buffer whose page faults dominate at this size
 * (184 ms for 64 MiB against ≈ 40 ms for the float64 additions); the view is read before any
 * other tfjs call, so the memory cannot move under it.
 */
export function wasmView(t: tf.Tensor): Float32Array | null {
  if (t.dtype !== 'float32' || tf.getBackend() !== 'wasm') return null;
  // The backend's own accessor (the kernel fixes use it too): a view on its heap, no copy.
  const backend = tf.backend() as unknown as WasmBackend;
  return backend.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: 'float32' }) as Float32Array;
}
