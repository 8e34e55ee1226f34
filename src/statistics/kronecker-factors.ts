/**
 * The Kronecker factors statistic: every layer's factors accumulated over one pass (CONVENTIONS.md):
 *   A = (1/n) Σᵢ (input term), G = (1/n) Σᵢ Σ_o (output term of square-root output o),
 * with the terms of `KroneckerSupport` ('expand' or 'reduce' over shared positions), placed as
 * the row or column factor of the layer's [K, C] layout by its `rowFactor`, and the exact block
 * B = (1/n) Σᵢ Σ_o bᵢₒbᵢₒᵀ of a separate bias. Sums are formed per batch on the device and added
 * across batches in float64.
 */
import { tf } from '../tf.js';
import { UnsupportedLayerError } from '../errors.js';
import type { KfacType, KroneckerSupport } from '../layers/layer-kind.js';
import type { LayerCollection, LayerEntry } from '../layers/layer-collection.js';
import type { PassSpec } from '../backend/pass.js';
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
   * after a merge or a load: the dense eigensolver then serves.
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
  const aSums = sizes.map((_, i) => new HostSum(inputSize(i) ** 2));
  const gSums = sizes.map((_, i) => new HostSum(outputSize(i) ** 2));
  const bSums = lc.layers.map((e, i) => {
    const cb = supports[i]!.separateBias?.size(e.layer) ?? 0;
    return cb > 0 ? new HostSum(cb * cb) : null;
  });
  const all = () => [...aSums, ...gSums, ...bSums].filter((s): s is HostSum => s !== null);
  // Rows of the wide input factors, kept on the host while they number at most a quarter of the width.
  const rows = lc.layers.map((_, i) => (!swapped[i] && supports[i]!.inputRows ? new WideRows(inputSize(i)) : null));
  const visit = (inputs: ReadonlyMap<string, tf.Tensor>, gradsById: ReadonlyMap<string, tf.Tensor>, firstOutput: boolean) => {
    lc.layers.forEach((e, i) => {
      const s = supports[i]!;
      // A does not depend on the output: take it once per batch.
      if (firstOutput) {
        addReleased(aSums[i]!, () => s.inputFactor(e.layer, inputs.get(e.id)!, type));
        if (rows[i]?.open) rows[i]!.add(() => s.inputRows!(e.layer, inputs.get(e.id)!, type));
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
      sizes.map(([k, c], i) => {
        const input = aSums[i]!.mean(examples);
        const output = gSums[i]!.mean(examples);
        const bias = bSums[i]?.mean(examples);
        const aRows = rows[i]?.scaled(1 / Math.sqrt(examples));
        return { k, c, a: swapped[i] ? output : input, g: swapped[i] ? input : output, ...(bias ? { bias } : {}), ...(aRows ? { aRows } : {}) };
      }),
    dispose: () => all().forEach((s) => s.dispose()),
  };
}

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

  /** Adds the rows `make` returns ([N, width], released here) unless they overflow the budget. */
  add(make: () => tf.Tensor2D): void {
    const r = make();
    try {
      const n = r.shape[0];
      if (GRAM_ROUTE_MAX_RATIO * (this.count + n) > this.width) {
        this.open = false;
        this.chunks.length = 0;
        return;
      }
      this.chunks.push(r.dataSync() as Float32Array);
      this.count += n;
    } finally {
      r.dispose();
    }
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
