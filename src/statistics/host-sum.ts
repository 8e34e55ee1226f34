/**
 * Sums of a statistic over a pass: formed in float32 on the device within batches and added
 * across batches in float64 on the host (CONVENTIONS.md, "Numbers").
 */
import { tf } from '../tf.js';
import { exclusiveWasmView, float32Values, uninitializedWasmTensor, wasmView } from '../backend/tensor-values.js';


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
  private readonly size: number;
  /** The float64 total, allocated at the first transfer (a mean kept on the device never needs it). */
  private sumArray: Float64Array | null = null;
  /** The float32 device sums not yet transferred, by offset in `sum`. */
  private readonly pending = new Map<number, tf.Tensor>();
  /** `flat` mode on wasm: the one float32 tensor [size] the segments are added into, in place. */
  private flatSum: tf.Tensor1D | null = null;
  /** `flat` mode: the segments (offset → size) added since the last transfer. */
  private readonly flatPending = new Map<number, number>();
  /** The size of the segment at each offset, for the whole pass (a segment keeps its size). */
  private readonly segmentSizes = new Map<number, number>();
  private batches = 0;
  /** Whether anything reached `sum` yet (the first transfer can then be a plain copy). */
  private transferred = false;
  /** Whether each term goes to the float64 sum as it is added (no device sum). */
  private readonly immediate: boolean;
  private readonly flat: boolean;

  /**
   * `immediate`: every term is copied into the float64 sum when it is added, and no float32 sum
   * stays on the device between batches. For sums so large that the device copies count
   * (Kronecker factors of 4,096², 64 MiB each in float32: seven of them pending are 0.45 GiB of
   * tfjs-wasm memory, which never shrinks); the numbers are then float64 sums of float32 terms,
   * no less accurate than float32 device sums of up to BATCHES_PER_TRANSFER batches.
   *
   * `flat`: on tfjs-wasm, the pending sum is one float32 tensor [size] and each segment is
   * copied or added into it in place (a float32 store of the float64 sum of two float32 values
   * is their float32 sum, so the numbers are the device's). For a mean kept on the device
   * (`deviceMean`), which is then that tensor divided in place: the device holds the sum and
   * one term, never a concatenation of the segments beside them. Other backends keep segments.
   */
  constructor(size: number, options: { immediate?: boolean; flat?: boolean } = {}) {
    this.size = size;
    this.immediate = options.immediate ?? false;
    this.flat = !this.immediate && (options.flat ?? false);
  }

  private get sum(): Float64Array {
    return (this.sumArray ??= new Float64Array(this.size));
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
    this.addTerm(t, offset, false);
  }

  /**
   * As `add`, and takes `t` over: it is disposed, or becomes the pending sum itself when nothing
   * is pending at `offset` (no copy: at d ≈ 10⁸ a copy of the first batch's terms is 400 MB).
   * `t` must be a tensor nothing else holds, e.g. the result of a `tf.tidy`.
   */
  addOwned(t: tf.Tensor, offset = 0): void {
    this.addTerm(t, offset, true);
  }

  private addTerm(t: tf.Tensor, offset: number, owned: boolean): void {
    let kept = false;
    try {
      const known = this.segmentSizes.get(offset);
      if (known !== undefined && known !== t.size) throw new RangeError(`HostSum.add: a segment of ${t.size} values at offset ${offset}, where ${known} were added before`);
      if (offset < 0 || offset + t.size > this.size) throw new RangeError(`HostSum.add: ${t.size} values at offset ${offset} overflow a sum of ${this.size}`);
      this.segmentSizes.set(offset, t.size);
      if (this.immediate) {
        addValues(this.sum, offset, float32Values(t));
        this.transferred = true;
        return;
      }
      if (this.flat && (this.flatSum ??= keepOrNull(uninitializedWasmTensor(this.size))) !== null) {
        this.addIntoFlat(this.flatSum, t, offset);
        return;
      }
      const before = this.pending.get(offset);
      const next = before ? tf.add(before, t) : owned ? t : t.clone();
      before?.dispose();
      kept = next === t;
      this.pending.set(offset, tf.keep(next));
    } finally {
      if (owned && !kept) t.dispose();
    }
  }

  /**
   * Copies (first time in a transfer's batches) or adds `t` into the flat sum at `offset`. The
   * flat sum is not zeroed: what is read of it is what was copied in, and `deviceMean` zeroes
   * the entries no segment covers.
   */
  private addIntoFlat(flatSum: tf.Tensor1D, t: tf.Tensor, offset: number): void {
    const into = wasmView(flatSum);
    if (into === null) throw new Error('HostSum: the flat sum is no longer on the wasm backend (the backend changed during a pass)');
    const from = float32Values(t);
    if (!this.flatPending.has(offset)) {
      into.set(from, offset);
      this.flatPending.set(offset, t.size);
    } else {
      const count = from.length;
      for (let k = 0; k < count; k++) into[offset + k] += from[k]!;
    }
  }

  /** Marks the end of a batch; every BATCHES_PER_TRANSFER batches the device sum moves to float64. */
  flush(): void {
    if (++this.batches >= HostSum.BATCHES_PER_TRANSFER) this.transfer();
  }

  /**
   * The mean over n examples as one float32 tensor [size] left on the device, when nothing has
   * reached the host yet (at most BATCHES_PER_TRANSFER batches, not `immediate`) and, outside
   * `flat` mode, the segments added cover the whole sum; otherwise null, and `mean(n)` gives
   * the float64 mean. The values are those of `mean(n)` bit for bit (there, the one-transfer
   * mean is the device's float32 quotient too), without the float64 array: at d ≈ 10⁸ that is
   * 800 MB of fresh host memory, whose first touch costs this kind of machine more than the
   * pass. The caller owns the tensor; the pending sums are taken over (divided in place on wasm
   * when nothing else shares them).
   */
  deviceMean(n: number): tf.Tensor1D | null {
    if (this.immediate || this.transferred) return null;
    let sum: tf.Tensor1D;
    if (this.flatSum !== null) {
      sum = this.flatSum;
      const view = wasmView(sum)!;
      let covered = 0;
      for (const [offset, size] of [...this.flatPending].sort((a, b) => a[0] - b[0])) {
        view.fill(0, covered, offset);
        covered = Math.max(covered, offset + size);
      }
      view.fill(0, covered);
      this.flatSum = null;
      this.flatPending.clear();
    } else {
      if (this.pending.size === 0) return null;
      const parts = [...this.pending].sort((a, b) => a[0] - b[0]);
      let covered = 0;
      for (const [offset, t] of parts) {
        if (offset !== covered) return null;
        covered += t.size;
      }
      if (covered !== this.size) return null;
      sum = tf.tidy(() => (parts.length === 1 ? tf.reshape(parts[0]![1], [-1]) : tf.concat(parts.map(([, t]) => tf.reshape(t, [-1])))) as tf.Tensor1D);
      this.dispose();
    }
    this.transferred = true;
    const inPlace = exclusiveWasmView(sum);
    if (inPlace === null) {
      const quotient = tf.tidy(() => tf.div(sum, n) as tf.Tensor1D);
      sum.dispose();
      return quotient;
    }
    // A float32 store rounds the float64 quotient once more: fround(v / fround(n)), the device's
    // float32 division bit for bit (as divideFloat32).
    const d = Math.fround(n);
    for (let k = 0; k < inPlace.length; k++) inPlace[k] = inPlace[k]! / d;
    return sum;
  }

  /** The float64 total divided by n (the mean over n examples). */
  mean(n: number): Float64Array {
    if (!this.transferred && (this.pending.size > 0 || this.flatPending.size > 0)) {
      // One transfer in all, each value divided as it is copied (read in place on wasm: a
      // quotient tensor and a dataSync copy would each add the segment's size in fresh memory,
      // whose first touch costs as much as the pass at d ≈ 10⁸).
      const flat = this.flatSum === null ? null : wasmView(this.flatSum);
      for (const [offset, size] of this.flatPending) divideFloat32(this.sum, offset, flat!.subarray(offset, offset + size), n);
      for (const [offset, t] of this.pending) {
        const v = wasmView(t);
        if (v != null) divideFloat32(this.sum, offset, v, n);
        else {
          const scaled = tf.tidy(() => tf.div(t, n));
          this.sum.set(scaled.dataSync(), offset);
          scaled.dispose();
        }
      }
      this.dispose();
      this.transferred = true;
      return this.sum;
    }
    return divideBy(this.total, n);
  }

  private transfer(): void {
    this.batches = 0;
    if (this.flatSum !== null && this.flatPending.size > 0) {
      // The float64 total is allocated first: a JS allocation never moves the wasm memory, but
      // keep the view's lifetime obviously free of other calls.
      const total = this.sum;
      const flat = wasmView(this.flatSum)!;
      for (const [offset, size] of this.flatPending) {
        const v = flat.subarray(offset, offset + size);
        if (this.transferred) addValues(total, offset, v);
        else total.set(v, offset);
      }
      // The flat tensor stays for the next batches: each segment is copied in (not added) first.
      this.flatPending.clear();
      this.transferred = true;
    }
    if (this.pending.size === 0) return;
    for (const [offset, t] of this.pending) {
      const v = float32Values(t);
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
    this.flatSum?.dispose();
    this.flatSum = null;
    this.flatPending.clear();
  }
}

/** `t` kept out of the enclosing tidy scopes, or null. */
function keepOrNull<T extends tf.Tensor>(t: T | null): T | null {
  return t === null ? null : tf.keep(t);
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
