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
import { symmetricRankUpdate } from '../backend/kernels/simd/index.js';
import { gram } from './contractions.js';
import { type FactorSide, WideRows, gramOfRows, gramOfRowsOnDevice, mergeFactorRows } from './factor-rows.js';
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
  /**
   * For an output factor built from few rows (m ≤ c·OUTPUT_ROWS_MAX_RATIO, e.g. 10 stacked
   * logits' cotangents of 256 examples on a 4,096-wide layer): R_G (m×c row-major) with
   * G = R_GᵀR_G (the output terms scaled by 1/√n). Held as rows only by factors the library
   * computes; `g` is then formed on its first read (on the device) and kept.
   */
  readonly gRows?: Float64Array;
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
  // A wide factor whose rows are kept needs no n×n sum (n² float32 on the device, n² float64
  // on the host): its sum is created only if the rows outgrow their budget.
  const aSums: Array<HostSum | null> = sizes.map(() => null);
  const aSum = (i: number) => (aSums[i] ??= factorSum(inputSize(i)));
  const gSums: Array<HostSum | null> = sizes.map(() => null);
  const gSum = (i: number) => (gSums[i] ??= factorSum(outputSize(i)));
  const bSums = lc.layers.map((e, i) => {
    const cb = supports[i]!.separateBias?.size(e.layer) ?? 0;
    return cb > 0 ? factorSum(cb) : null;
  });
  // Rows of the wide factors, kept on the host while they are few (factor-rows.ts): the
  // inputs' for A, the stacked output cotangents' for G.
  const aRows = lc.layers.map((_, i) => (!swapped[i] && supports[i]!.inputRows ? new WideRows(inputSize(i), 'a') : null));
  const gRows = lc.layers.map((_, i) => (!swapped[i] && supports[i]!.outputRows ? new WideRows(outputSize(i), 'g') : null));
  const all = () => [...aSums, ...gSums, ...bSums].filter((s): s is HostSum => s !== null);
  const visit = (inputs: ReadonlyMap<string, tf.Tensor>, gradsById: ReadonlyMap<string, tf.Tensor>, firstOutput: boolean) => {
    lc.layers.forEach((e, i) => {
      const s = supports[i]!;
      const x = inputs.get(e.id)!;
      // A does not depend on the output: take it once per batch.
      if (firstOutput) addTerm(aRows[i]!, () => aSum(i), () => s.inputRows!(e.layer, x, type), () => s.inputFactor(e.layer, x, type));
      const grads = gradsById.get(e.id)!;
      addTerm(gRows[i]!, () => gSum(i), () => s.outputRows!(e.layer, grads, type), () => s.outputFactor(e.layer, grads, type));
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
        const bias = bSums[i]?.mean(examples);
        const input = aRows[i]?.take(1 / Math.sqrt(examples));
        const output = gRows[i]?.take(1 / Math.sqrt(examples));
        if (input || output) {
          return factorsFromRows({
            k, c, ...(bias ? { bias } : {}),
            ...(input ? { aRows: input } : { a: aSum(i).mean(examples) }),
            ...(output ? { gRows: output } : { g: gSum(i).mean(examples) }),
          });
        }
        const a = aSum(i).mean(examples);
        const g = gSum(i).mean(examples);
        return { k, c, a: swapped[i] ? g : a, g: swapped[i] ? a : g, ...(bias ? { bias } : {}) };
      }),
    dispose: () => {
      all().forEach((s) => s.dispose());
      [...aRows, ...gRows].forEach((r) => r?.dispose());
    },
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
 * Adds one term of a factor: to its rows while they are kept (`rows` open), else to its n×n sum.
 * When the rows outgrow their budget, the rows kept so far become the sum they stand for, chunk
 * by chunk (the same kernel and 16-chunk transfers as the sum route), and the sum continues.
 */
function addTerm(rows: WideRows | null, sum: () => HostSum, makeRows: () => tf.Tensor2D, makeTerm: () => tf.Tensor): void {
  if (rows?.open) {
    rows.add(makeRows);
    if (!rows.open) {
      rows.drain((chunk) => {
        addReleased(sum(), () => symmetricRankUpdate(chunk()));
        sum().flush();
      });
    }
  }
  if (!rows?.open) addReleased(sum(), makeTerm);
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

/** The sides of each factors object that are held as rows only (F not formed yet). */
const rowsOnly = new WeakMap<KroneckerFactors, Set<FactorSide>>();

/** What `factorsFromRows` takes: each side as its n×n array, or its rows, or both (the array then serves). */
export type FactorsOrRows = Pick<KroneckerFactors, 'k' | 'c' | 'bias'> &
  (
    | {
        /** The input factor A, k×k row-major (float64). */
        a: Float64Array;
        /** Its rows R (m×k row-major, A = RᵀR), kept beside A when given. */
        aRows?: Float64Array;
      }
    | {
        /** Not given: A is formed from `aRows` on its first read. */
        a?: undefined;
        /** The rows R of A (m×k row-major, A = RᵀR). */
        aRows: Float64Array;
      }
  ) &
  (
    | {
        /** The output factor G, c×c row-major (float64). */
        g: Float64Array;
        /** Its rows R_G (m_G×c row-major, G = R_GᵀR_G), kept beside G when given. */
        gRows?: Float64Array;
      }
    | {
        /** Not given: G is formed from `gRows` on its first read. */
        g?: undefined;
        /** The rows R_G of G (m_G×c row-major, G = R_GᵀR_G). */
        gRows: Float64Array;
      }
  );

/**
 * Factors holding a wide factor as its rows only: A = RᵀR (k×k) for `aRows` (m×k row-major),
 * G = R_GᵀR_G (c×c) for `gRows` (m_G×c), each formed on the first read of `a` or `g` and kept
 * from then on (A by a float64 host product, G on the device: float32 symmetric rank updates
 * of ≤ 2,048 rows added in float64, `gramOfRowsOnDevice`). A side given as its array is held
 * as given. At d ≈ 10⁸ (784 → 4096×7 → 10, 256 examples, `classif_logits`) the rows are
 * 7 × 8 MiB for A and 7 × 80 MiB for G instead of 7 × 2 × 128 MiB of float64 factors;
 * PMatKFAC computes everything it offers from the rows (trace ‖R‖², diagonal, products Rᵀ(RV),
 * the Gram-route eigendecomposition) without forming A or G.
 *
 * @example
 * const f = factorsFromRows({ k: 4097, c: 4096, aRows: r, gRows: s }); // r: 256×4097, s: 2560×4096
 * f.g; // forms the 4096×4096 G = sᵀs on the device and keeps it
 */
export function factorsFromRows(f: FactorsOrRows): KroneckerFactors {
  const held: Record<FactorSide, Float64Array | null> = { a: f.a ?? null, g: f.g ?? null };
  const read = (side: FactorSide): Float64Array => {
    let x = held[side];
    if (!x) {
      x = held[side] = side === 'a' ? gramOfRows(f.aRows!, f.k) : gramOfRowsOnDevice(f.gRows!, f.c);
      rowsOnly.get(out)?.delete(side);
    }
    return x;
  };
  const out: KroneckerFactors = {
    k: f.k,
    c: f.c,
    get a(): Float64Array {
      return read('a');
    },
    get g(): Float64Array {
      return read('g');
    },
    ...(f.aRows ? { aRows: f.aRows } : {}),
    ...(f.gRows ? { gRows: f.gRows } : {}),
    ...(f.bias ? { bias: f.bias } : {}),
  };
  const sides = new Set<FactorSide>();
  if (!f.a) sides.add('a');
  if (!f.g) sides.add('g');
  rowsOnly.set(out, sides);
  return out;
}

/** Whether `f` holds the factor of `side` as an n×n array (false while it exists only as rows). */
export function holdsFactor(f: KroneckerFactors, side: FactorSide): boolean {
  return !rowsOnly.get(f)?.has(side);
}

/** Whether `f` holds its input factor A as a k×k array (false while A exists only as `aRows`). */
export function holdsInputFactor(f: KroneckerFactors): boolean {
  return holdsFactor(f, 'a');
}

/** The rows of the factor of `side` (R with F = RᵀR), if `f` has them. */
export function factorRowsOf(f: Pick<KroneckerFactors, 'aRows' | 'gRows'>, side: FactorSide): Float64Array | undefined {
  return side === 'a' ? f.aRows : f.gRows;
}

/** The width of the factor of `side`: k for A, c for G. */
export function factorWidth(f: Pick<KroneckerFactors, 'k' | 'c'>, side: FactorSide): number {
  return side === 'a' ? f.k : f.c;
}

/** The factor of `side` as an n×n array: the one `f` holds, or formed from its rows for the caller alone (not kept). */
export function factorOf(f: KroneckerFactors, side: FactorSide): Float64Array {
  if (holdsFactor(f, side)) return side === 'a' ? f.a : f.g;
  return side === 'a' ? gramOfRows(f.aRows!, f.k) : gramOfRowsOnDevice(f.gRows!, f.c);
}

/** The k×k input factor of `f`: the array it holds, or RᵀR formed from its rows for the caller alone (not kept). */
export function inputFactorOf(f: KroneckerFactors): Float64Array {
  return factorOf(f, 'a');
}

/**
 * Σ_j w_j F_j for the factor of `side` of one layer from partial results (w_j ≥ 0, the example
 * weights of a merge): the rows [√w_1 R_1; √w_2 R_2; …] when every part holds F as rows and
 * they stay within the side's budget (`withinRowsBudget`), else the n×n weighted mean.
 *
 * @example
 * const g = mergeFactor([f1, f2], [5000 / 8000, 3000 / 8000], 'g'); // { rows } or { dense }
 */
export function mergeFactor(parts: readonly KroneckerFactors[], w: readonly number[], side: FactorSide): { dense: Float64Array } | { rows: Float64Array } {
  const rows = parts.map((f) => (holdsFactor(f, side) ? undefined : factorRowsOf(f, side)));
  return mergeFactorRows(side, factorWidth(parts[0]!, side), rows, w, (j) => factorOf(parts[j]!, side));
}
