/**
 * The Kronecker factors statistic: every layer's factors accumulated over one pass (CONVENTIONS.md):
 *   A = (1/n) Σᵢ (input term), G = (1/n) Σᵢ Σ_o (output term of square-root output o),
 * with the terms of `KroneckerSupport` ('expand' or 'reduce' over shared positions), placed as
 * the row or column factor of the layer's [K, C] layout by its `rowFactor`, and the exact block
 * B = (1/n) Σᵢ Σ_o bᵢₒbᵢₒᵀ of a separate bias. Sums are formed per batch on the device and added
 * across batches in float64.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, UnsupportedLayerError } from '../errors.js';
import type { KfacType, KroneckerSupport } from '../layers/layer-kind.js';
import type { LayerCollection, LayerEntry } from '../layers/layer-collection.js';
import type { PassSpec } from '../backend/pass.js';
import { symmetricRankUpdate } from '../backend/kernels/simd/index.js';
import { gemm } from '../linalg/gemm.js';
import { gram } from './contractions.js';
import { HostSum } from './host-sum.js';
import { type Statistic, accumulate } from './statistic.js';

/**
 * The float64 factors of one layer, block ≈ A ⊗ G in the layer's [k, c] parameter layout:
 * A (k×k) is the row factor, G (c×c) the column factor. For Dense, the convolutions and
 * Embedding, A is over the (augmented) inputs and G over the outputs; for Conv2DTranspose
 * (`rowFactor: 'gradients'`) A is over the output-gradient patches (kh, kw, cout) and G over the
 * input channels. `bias`, present only for a layer whose bias is not a row of [k, c]
 * (Conv2DTranspose), is that bias's exact block (C_b×C_b, after the k·c kernel parameters).
 */
export interface KroneckerFactors {
  /** Size k of the input factor A (the augmented input axis). */
  readonly k: number;
  /** Size c of the output factor G (the output axis). */
  readonly c: number;
  /** A, k×k row-major (CONVENTIONS.md, "Kronecker factors"). */
  readonly a: Float64Array;
  /** G, c×c row-major. */
  readonly g: Float64Array;
  /** A separate bias block B (Conv2DTranspose with a bias), c×c: the block B ⊗ [1]. */
  readonly bias?: Float64Array;
  /**
   * For a wide row factor built from few rows (m ≤ k/4, e.g. a dense layer with thousands of
   * inputs on a thousand examples): R (m×k row-major) with A = RᵀR (the input rows scaled by
   * 1/√n), so that A is eigendecomposed through the m×m Gram matrix (`factorEigen`). Absent
   * after a merge: the dense eigensolver then serves. Factors computed by the library hold
   * such an A as its rows only (`factorsFromRows`): `a` is then formed from R on its first read.
   */
  readonly aRows?: Float64Array;
}

/** The layer's Kronecker support, or an error naming the layer and the ways out. */
export function kroneckerOf(e: LayerEntry, representation: string): KroneckerSupport {
  const support = e.kind.kronecker;
  if (!support) {
    throw new UnsupportedLayerError(
      `${representation} needs Kronecker factors, which layer '${e.id}' (${e.layer.getClassName()}) does not have; ` +
        `use PMatEKFACBlockDiag (EKFAC where possible, block-diagonal elsewhere), PMatMixed, or a layer collection without it`,
    );
  }
  return support;
}

/** Checks every layer of the collection first, so that no pass starts for nothing. */
export function checkKroneckerLayers(lc: LayerCollection, representation: string): KroneckerSupport[] {
  return lc.layers.map((e) => kroneckerOf(e, representation));
}

/**
 * The factors of every layer of `lc` as a statistic of one pass, in the layers' order
 * (`representation` names the caller in the refusal of a layer without Kronecker factors, which
 * happens here, before any pass).
 *
 * @example
 * const { value: factors } = await accumulate(spec, kroneckerFactors(spec.layerCollection, 'expand', 'PMatKFAC'));
 */
export function kroneckerFactors(lc: LayerCollection, type: KfacType, representation: string): Statistic<KroneckerFactors[]> {
  const supports = checkKroneckerLayers(lc, representation);
  const sizes = lc.layers.map((e, i) => supports[i]!.factorSizes(e.layer));
  // The input factor is the row factor, except for 'gradients' rows (Conv2DTranspose).
  const swapped = supports.map((s) => s.rowFactor === 'gradients');
  const inputSize = (i: number) => (swapped[i] ? sizes[i]![1] : sizes[i]![0]);
  const outputSize = (i: number) => (swapped[i] ? sizes[i]![0] : sizes[i]![1]);
  // A wide input factor whose rows are kept needs no K×K sum (K² float32 on the device, K²
  // float64 on the host): its sum is created only if the rows outgrow their budget.
  const aSums: Array<HostSum | null> = sizes.map(() => null);
  const aSum = (i: number) => (aSums[i] ??= factorSum(inputSize(i)));
  const gSums = sizes.map((_, i) => factorSum(outputSize(i)));
  const bSums = lc.layers.map((e, i) => {
    const cb = supports[i]!.separateBias?.size(e.layer) ?? 0;
    return cb > 0 ? factorSum(cb) : null;
  });
  // Rows of the wide input factors, kept on the host while they number at most a quarter of the width.
  const rows = lc.layers.map((_, i) => (!swapped[i] && supports[i]!.inputRows ? new WideRows(inputSize(i)) : null));
  const all = () => [...aSums, ...gSums, ...bSums].filter((s): s is HostSum => s !== null);
  const visit = (inputs: ReadonlyMap<string, tf.Tensor>, gradsById: ReadonlyMap<string, tf.Tensor>, firstOutput: boolean) => {
    lc.layers.forEach((e, i) => {
      const s = supports[i]!;
      // A does not depend on the output: take it once per batch.
      if (firstOutput) {
        const r = rows[i];
        if (r?.open) {
          r.add(() => s.inputRows!(e.layer, inputs.get(e.id)!, type));
          // Over budget: the rows so far become the sum they stand for, batch by batch.
          if (!r.open) r.drain((batch) => {
            addReleased(aSum(i), () => symmetricRankUpdate(batch()));
            aSum(i).flush();
          });
        }
        if (!r?.open) addReleased(aSum(i), () => s.inputFactor(e.layer, inputs.get(e.id)!, type));
      }
      const grads = gradsById.get(e.id)!;
      addReleased(gSums[i]!, () => s.outputFactor(e.layer, grads, type));
      // A separate bias block is exact: Σᵢ bᵢbᵢᵀ.
      const bias = bSums[i];
      if (bias) addReleased(bias, () => gram(s.separateBias!.gradients(e.layer, grads)));
    });
  };
  return {
    // The output-side sums take the stacked outputs as more examples, one product.
    onOutputs: (out) => visit(out.inputs, out.grads, out.firstOutput === 0),
    onBatchEnd: () => all().forEach((s) => s.flush()),
    result: (examples) =>
      sizes.map(([k, c], i): KroneckerFactors => {
        const output = gSums[i]!.mean(examples);
        const bias = bSums[i]?.mean(examples);
        const aRows = rows[i]?.scaled(1 / Math.sqrt(examples));
        if (aRows && !aSums[i]) return factorsFromRows({ k, c, aRows, g: output, ...(bias ? { bias } : {}) });
        const input = aSum(i).mean(examples);
        return { k, c, a: swapped[i] ? output : input, g: swapped[i] ? input : output, ...(bias ? { bias } : {}), ...(aRows ? { aRows } : {}) };
      }),
    dispose: () => all().forEach((s) => s.dispose()),
  };
}

/**
 * The sum of one n×n factor: on the device within batches, or, from IMMEDIATE_FACTOR_WIDTH on,
 * straight into float64 as each term comes (HostSum's `immediate`): at d ≈ 10⁸ the seven
 * pending 4,096² sums would add 0.45 GiB to the wasm memory's high-water mark.
 */
function factorSum(n: number): HostSum {
  return new HostSum(n * n, { immediate: n >= IMMEDIATE_FACTOR_WIDTH });
}

/** Factors this wide and wider are summed in float64 term by term (see `factorSum`). */
export const IMMEDIATE_FACTOR_WIDTH = 4096;

/**
 * Adds one batch's term to `sum` and releases it at once: left to the pass's tidy scope, every
 * layer's terms would be alive together beside the pending sums (0.9 GB more on the device at
 * d ≈ 10⁸, 784 → 4096×7 → 10).
 */
function addReleased(sum: HostSum, make: () => tf.Tensor): void {
  const term = tf.tidy(make);
  try {
    sum.add(term);
  } finally {
    term.dispose();
  }
}

/** The factors of one pass over the data of `spec` (see `kroneckerFactors`). */
export async function computeKroneckerFactors(spec: PassSpec, type: KfacType, representation: string): Promise<KroneckerFactors[]> {
  return (await accumulate(spec, kroneckerFactors(spec.layerCollection, type, representation))).value;
}

/**
 * The rows of one input factor, copied to the host batch by batch while their count stays at
 * most a quarter of the factor's width (beyond, the Gram route no longer pays and they are dropped).
 */
class WideRows {
  private readonly chunks: Float32Array[] = [];
  private count = 0;
  open: boolean;

  constructor(private readonly width: number) {
    this.open = width >= WIDE_FACTOR_MIN_WIDTH;
  }

  /** Adds the rows `make` returns ([N, width], released here); past the budget, closes (keeping the earlier rows for `drain`). */
  add(make: () => tf.Tensor2D): void {
    const r = make();
    try {
      const n = r.shape[0];
      if (GRAM_ROUTE_MAX_RATIO * (this.count + n) > this.width) {
        this.open = false;
        return;
      }
      this.chunks.push(r.dataSync() as Float32Array);
      this.count += n;
    } finally {
      r.dispose();
    }
  }

  /**
   * Hands the rows kept so far back as device tensors, one earlier batch at a time (each made
   * inside the callee's tidy scope), and forgets them. For a factor that outgrew its budget:
   * the sum of their Gram matrices, batch by batch, is the K×K sum the pass would have formed.
   */
  drain(each: (batch: () => tf.Tensor2D) => void): void {
    for (const c of this.chunks) each(() => tf.tensor2d(c, [c.length / this.width, this.width]));
    this.chunks.length = 0;
    this.count = 0;
  }

  /** All rows times `s` in float64 (m×width), or undefined when they were dropped or none came. */
  scaled(s: number): Float64Array | undefined {
    if (!this.open || this.count === 0) return undefined;
    const out = new Float64Array(this.count * this.width);
    let at = 0;
    for (const c of this.chunks) for (let i = 0; i < c.length; i++) out[at++] = c[i]! * s;
    return out;
  }
}

/**
 * The Gram route is taken for m ≤ K/GRAM_ROUTE_MAX_RATIO rows: measured (bench/wide-factors.ts, CPU time)
 * 2.4–3× faster than the direct solver at m/K ≈ 0.19 (512 × 2,705 and 1,024 × 5,409), 0.7× at m/K = 0.5.
 */
export const GRAM_ROUTE_MAX_RATIO = 4;

/** Narrower input factors are eigendecomposed directly (the dense solver takes milliseconds there). */
export const WIDE_FACTOR_MIN_WIDTH = 256;

/** Factors whose A has not been formed from its rows yet (see `factorsFromRows`). */
const rowsOnly = new WeakSet<KroneckerFactors>();

/**
 * Factors holding a wide input factor as its rows only: A = RᵀR (k×k, float64) for `aRows` R
 * (m×k row-major) is formed on the first read of `a` and kept from then on. At d ≈ 10⁸
 * (784 → 4096×7 → 10, 256 examples) this holds 7 × 8 MiB of rows instead of 7 × 128 MiB of
 * float64 factors; PMatKFAC computes everything it offers from R (trace ‖R‖², diagonal,
 * products Rᵀ(RV), the Gram-route eigendecomposition) without forming A.
 *
 * @example
 * const f = factorsFromRows({ k: 4097, c: 4096, aRows: r, g }); // r: 256×4097, A = rᵀr
 * f.a; // forms the 4097×4097 A (256·4097² flops) and keeps it
 */
export function factorsFromRows(f: Omit<KroneckerFactors, 'a' | 'aRows'> & Required<Pick<KroneckerFactors, 'aRows'>>): KroneckerFactors {
  let a: Float64Array | null = null;
  const out: KroneckerFactors = {
    k: f.k,
    c: f.c,
    get a(): Float64Array {
      if (!a) {
        a = gramOfRows(f.aRows, f.k);
        rowsOnly.delete(out);
      }
      return a;
    },
    g: f.g,
    aRows: f.aRows,
    ...(f.bias ? { bias: f.bias } : {}),
  };
  rowsOnly.add(out);
  return out;
}

/** Whether `f` holds its input factor A as a k×k array (false while A exists only as `aRows`). */
export function holdsInputFactor(f: KroneckerFactors): boolean {
  return !rowsOnly.has(f);
}

/** The k×k input factor of `f`: the array it holds, or RᵀR formed from its rows for the caller alone (not kept). */
export function inputFactorOf(f: KroneckerFactors): Float64Array {
  return holdsInputFactor(f) ? f.a : gramOfRows(f.aRows!, f.k);
}

/** RᵀR (k×k row-major, float64) for R = `rows` (m×k row-major). */
export function gramOfRows(rows: Float64Array, k: number): Float64Array {
  const m = rows.length / k;
  const t = new Float64Array(k * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) t[j * m + i] = rows[i * k + j]!;
  return gemm(t, k, m, rows, k);
}

/** diag(RᵀR) (k values, float64) for R (m×k row-major). */
export function rowsDiagonal(rows: Float64Array, k: number): Float64Array {
  const out = new Float64Array(k);
  for (let at = 0; at < rows.length; at += k) for (let j = 0; j < k; j++) out[j]! += rows[at + j]! ** 2;
  return out;
}

/**
 * Σ_j w_j A_j for one layer's input factors from partial results (w_j ≥ 0, the example
 * weights of a merge): when every part holds A as its rows and the rows together stay within
 * the Gram route's budget (m ≤ k/GRAM_ROUTE_MAX_RATIO), the rows [√w_1 R_1; √w_2 R_2; …]
 * (exactly Σ_j w_j R_jᵀR_j), else the k×k weighted mean (parts held as rows formed one at a time).
 *
 * @example
 * const merged = mergeInputFactors([f1, f2], [5000 / 8000, 3000 / 8000]); // { aRows } or { a }
 */
export function mergeInputFactors(parts: readonly KroneckerFactors[], w: readonly number[]): { a: Float64Array } | { aRows: Float64Array } {
  const k = parts[0]!.k;
  const rows = parts.map((f) => (holdsInputFactor(f) ? undefined : f.aRows));
  const m = rows.reduce((s, r) => s + (r ? r.length / k : Infinity), 0);
  if (GRAM_ROUTE_MAX_RATIO * m <= k && w.every((x) => x >= 0)) {
    const out = new Float64Array(m * k);
    let at = 0;
    rows.forEach((r, j) => {
      const s = Math.sqrt(w[j]!);
      for (let i = 0; i < r!.length; i++) out[at++] = s * r![i]!;
    });
    return { aRows: out };
  }
  const a = new Float64Array(k * k);
  parts.forEach((f, j) => {
    const x = inputFactorOf(f);
    if (x.length !== a.length) throw new InvalidArgumentError('merge: the partial results have different sizes');
    for (let i = 0; i < x.length; i++) a[i]! += w[j]! * x[i]!;
  });
  return { a };
}
