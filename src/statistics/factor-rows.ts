/**
 * A Kronecker factor held as its rows: F = RᵀR (n×n) for R (m×n, the pass's terms scaled by
 * 1/√examples) when the rows are few, for either side of a layer's factors — the input factor A
 * (side 'a', rows from the layer inputs, kept while m ≤ K/GRAM_ROUTE_MAX_RATIO) and the output
 * factor G (side 'g', rows from the stacked output cotangents, kept while m ≤ C·OUTPUT_ROWS_MAX_RATIO:
 * m×C float64 rows then hold no more memory than the C×C float64 factor, and the pass skips
 * the m·C² symmetric rank update). Everything a Kronecker representation needs can be computed
 * from R (trace ‖R‖², diagonal, products Rᵀ(RV), the Gram-route eigendecomposition through the
 * m×m matrix RRᵀ), so F is formed only when a consumer reads it.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { symmetricRankUpdate } from '../backend/kernels/simd/index.js';
import { gemm } from '../linalg/gemm.js';
import { HostSum } from './host-sum.js';
import { float32Values } from '../backend/tensor-values.js';

/** Which factor of a layer: 'a' the row factor A (k×k), 'g' the column factor G (c×c). */
export type FactorSide = 'a' | 'g';

/**
 * The input-side Gram route is taken for m ≤ K/GRAM_ROUTE_MAX_RATIO rows: measured
 * (bench/wide-factors.ts, CPU time) 2.4–3× faster than the direct solver at m/K ≈ 0.19
 * (512 × 2,705 and 1,024 × 5,409), 0.7× at m/K = 0.5.
 */
export const GRAM_ROUTE_MAX_RATIO = 4;

/**
 * Output-factor rows are kept while m ≤ C·OUTPUT_ROWS_MAX_RATIO: then the m×C float64 rows take
 * no more memory than the C×C float64 G, the pass skips G's m·C² update, and the Gram-route
 * eigendecomposition costs about what forming G and decomposing it directly does (K = 4,096,
 * m = 2,560: 19.9 s against 20.7 + 4.5 s CPU, docs/performance.md).
 */
export const OUTPUT_ROWS_MAX_RATIO = 1;

/** Narrower factors are summed as n×n matrices (the dense solver takes milliseconds there). */
export const WIDE_FACTOR_MIN_WIDTH = 256;

/** Whether m rows of a width-n factor on `side` are within the rows budget. */
export function withinRowsBudget(side: FactorSide, m: number, n: number): boolean {
  return side === 'a' ? GRAM_ROUTE_MAX_RATIO * m <= n : m <= OUTPUT_ROWS_MAX_RATIO * n;
}

/** The most rows the budget of `side` allows for a factor of width n. */
function maxRows(side: FactorSide, n: number): number {
  return side === 'a' ? Math.floor(n / GRAM_ROUTE_MAX_RATIO) : OUTPUT_ROWS_MAX_RATIO * n;
}

/**
 * The rows of one factor, copied to the host batch by batch while their count stays within the
 * budget of its side (`withinRowsBudget`); beyond it they are handed back (`drain`) and dropped.
 * Rows after which the budget could not hold another batch of their size wait on the device
 * until the next batch shows whether they stay within it (or the pass ends): rows that outgrow
 * it at the second batch (d ≈ 10⁷, 2,560 output rows for a 2,048-wide G) then go to the sum
 * without a host round trip, while rows with room to spare (d ≈ 10⁸, 1,280 of a 4,096 budget
 * per batch) go to the host at once and never raise the device memory. The kept rows
 * go straight from the wasm memory into one float64 buffer that grows by doubling (up to the
 * budget), which `take` scales in place and hands over: every float64 page is first touched
 * once (≈ 0.3 s per 84 MB on this VM; a float32 copy per batch and a float64 copy at the end
 * cost 1.5× that at d ≈ 10⁸), and untouched capacity is never resident.
 */
export class WideRows {
  private rows: Float64Array | null = null;
  /** The latest batch's rows when they may be the last to fit, still on the device (kept out of the pass's tidy scope). */
  private pending: tf.Tensor2D | null = null;
  /** The row count of each batch on the host, for `drain`. */
  private readonly batches: number[] = [];
  private count = 0;
  open: boolean;

  constructor(
    private readonly width: number,
    private readonly side: FactorSide,
  ) {
    this.open = width >= WIDE_FACTOR_MIN_WIDTH;
  }

  /** Adds the rows `make` returns ([N, width], released here); past the budget, closes (keeping the earlier rows for `drain`). */
  add(make: () => tf.Tensor2D): void {
    const r = make();
    const n = r.shape[0];
    if (!withinRowsBudget(this.side, this.count + (this.pending?.shape[0] ?? 0) + n, this.width)) {
      r.dispose();
      this.open = false;
      return;
    }
    this.settle();
    this.pending = tf.keep(r);
    // Rows with room left for a next batch of their size go to the host now; the others wait on
    // the device, where a next batch would fold them into the sum without a round trip.
    if (withinRowsBudget(this.side, this.count + 2 * n, this.width)) this.settle();
  }

  /** Moves the pending device rows to the host buffer. */
  private settle(): void {
    const r = this.pending;
    if (!r) return;
    this.pending = null;
    try {
      const n = r.shape[0];
      const at = this.count * this.width;
      this.reserve(at + n * this.width);
      // Read in place from the wasm memory before any other tfjs call (no float32 host copy).
      this.rows!.set(float32Values(r), at);
      this.count += n;
      this.batches.push(n);
    } finally {
      r.dispose();
    }
  }

  /** Room for `values` values: the buffer doubles (at most to the budget), keeping what it holds. */
  private reserve(values: number): void {
    const have = this.rows?.length ?? 0;
    if (values <= have) return;
    const cap = Math.max(values, Math.min(2 * Math.max(have, values), maxRows(this.side, this.width) * this.width));
    const next = new Float64Array(cap);
    if (this.rows) next.set(this.rows.subarray(0, this.count * this.width));
    this.rows = next;
  }

  /**
   * Hands the rows kept so far back as device tensors, one earlier batch at a time (each made
   * inside the callee's tidy scope), and forgets them. For a factor that outgrew its budget:
   * the sum of their Gram matrices, batch by batch, is the n×n sum the pass would have formed.
   */
  drain(each: (batch: () => tf.Tensor2D) => void): void {
    let at = 0;
    for (const n of this.batches) {
      const values = this.rows!.subarray(at * this.width, (at + n) * this.width);
      each(() => tf.tensor2d(new Float32Array(values), [n, this.width]));
      at += n;
    }
    const last = this.pending;
    if (last) each(() => last);
    this.forget();
  }

  /**
   * All rows times `s` (m×width float64, scaled in place and handed over: the rows are
   * forgotten here), or undefined when they were dropped or none came.
   */
  take(s: number): Float64Array | undefined {
    this.settle();
    if (!this.open || this.count === 0) return undefined;
    const out = this.rows!.subarray(0, this.count * this.width);
    for (let i = 0; i < out.length; i++) out[i]! *= s;
    this.forget();
    return out;
  }

  /** Releases the pending device rows (a pass that failed). */
  dispose(): void {
    this.forget();
  }

  private forget(): void {
    this.pending?.dispose();
    this.pending = null;
    this.rows = null;
    this.batches.length = 0;
    this.count = 0;
  }
}

/** RᵀR (n×n row-major, float64 host product) for R = `rows` (m×n row-major). */
export function gramOfRows(rows: Float64Array, n: number): Float64Array {
  const m = rows.length / n;
  const t = new Float64Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = rows[i * n + j]!;
  return gemm(t, n, m, rows, n);
}

/**
 * Rows per float32 device sum when RᵀR is formed on the device: 16 batches of 128, the sums
 * `HostSum` keeps on the device before going to float64.
 */
export const ROWS_PER_DEVICE_SUM = 16 * 128;

/**
 * RᵀR (n×n, float64) for R = `rows` (m×n row-major) formed on the device: float32 symmetric
 * rank updates (the SIMD syrk) of up to ROWS_PER_DEVICE_SUM rows each, added in float64 —
 * the numbers of the pass's own sums. For a wide output factor (m·n² = 43 GFlop at
 * m = 2,560, n = 4,096) the float64 host product would take many seconds on one thread.
 *
 * @example
 * const g = gramOfRowsOnDevice(f.gRows!, f.c); // c×c, relative error ~1e-6
 */
export function gramOfRowsOnDevice(rows: Float64Array, n: number): Float64Array {
  const m = rows.length / n;
  const sum = new HostSum(n * n, { immediate: true });
  try {
    for (let at = 0; at < m; at += ROWS_PER_DEVICE_SUM) {
      const count = Math.min(ROWS_PER_DEVICE_SUM, m - at);
      const term = tf.tidy(() => symmetricRankUpdate(tf.tensor2d(new Float32Array(rows.subarray(at * n, (at + count) * n)), [count, n])));
      try {
        sum.add(term);
      } finally {
        term.dispose();
      }
    }
    return sum.total;
  } finally {
    sum.dispose();
  }
}

/** diag(RᵀR) (n values, float64) for R (m×n row-major). */
export function rowsDiagonal(rows: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let at = 0; at < rows.length; at += n) for (let j = 0; j < n; j++) out[j]! += rows[at + j]! ** 2;
  return out;
}

/**
 * Σ_j w_j F_j for one factor of one layer from partial results (w_j ≥ 0, the example weights
 * of a merge), given each part's rows (undefined for a part holding F) and a way to read its
 * n×n F: when every part holds rows and together they stay within the side's budget, the rows
 * [√w_1 R_1; √w_2 R_2; …] (exactly Σ_j w_j R_jᵀR_j), else the n×n weighted mean (parts held as
 * rows formed one at a time, for this sum only).
 *
 * @example
 * mergeFactorRows('g', 4096, [r1, r2], [0.5, 0.5], (j) => parts[j].g); // { rows } or { dense }
 */
export function mergeFactorRows(
  side: FactorSide,
  n: number,
  rows: ReadonlyArray<Float64Array | undefined>,
  w: readonly number[],
  dense: (j: number) => Float64Array,
): { dense: Float64Array } | { rows: Float64Array } {
  const m = rows.reduce((s, r) => s + (r ? r.length / n : Infinity), 0);
  if (Number.isFinite(m) && withinRowsBudget(side, m, n) && w.every((x) => x >= 0)) {
    const out = new Float64Array(m * n);
    let at = 0;
    rows.forEach((r, j) => {
      const s = Math.sqrt(w[j]!);
      for (let i = 0; i < r!.length; i++) out[at++] = s * r![i]!;
    });
    return { rows: out };
  }
  const sum = new Float64Array(n * n);
  rows.forEach((_, j) => {
    const x = dense(j);
    if (x.length !== sum.length) throw new InvalidArgumentError('merge: the partial results have different sizes');
    for (let i = 0; i < x.length; i++) sum[i]! += w[j]! * x[i]!;
  });
  return { dense: sum };
}
