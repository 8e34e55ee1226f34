/**
 * One pass over the data that accumulates every layer's Kronecker factors (CONVENTIONS.md):
 *   A = (1/n) Σᵢ (input term), G = (1/n) Σᵢ Σ_o (output term of square-root output o),
 * with the terms of `KroneckerSupport` ('expand' or 'reduce' over shared positions), placed as
 * the row or column factor of the layer's [K, C] layout by its `rowFactor`, and the exact block
 * B = (1/n) Σᵢ Σ_o bᵢₒbᵢₒᵀ of a separate bias. Sums are formed per batch on the device and added
 * across batches in float64.
 */
import type { tf } from '../../../tf.js';
import { UnsupportedLayerError } from '../../../errors.js';
import type { KfacType, KroneckerSupport } from '../../../layers/layer-kind.js';
import type { LayerCollection, LayerEntry } from '../../../layers/layer-collection.js';
import { passOverData, type PassSpec } from '../../../backend/pass.js';
import { HostSum, gram } from '../accumulators.js';

/**
 * The float64 factors of one layer, block ≈ A ⊗ G in the layer's [k, c] parameter layout:
 * A (k×k) is the row factor, G (c×c) the column factor. For Dense, the convolutions and
 * Embedding, A is over the (augmented) inputs and G over the outputs; for Conv2DTranspose
 * (`rowFactor: 'gradients'`) A is over the output-gradient patches (kh, kw, cout) and G over the
 * input channels. `bias`, present only for a layer whose bias is not a row of [k, c]
 * (Conv2DTranspose), is that bias's exact block (C_b×C_b, after the k·c kernel parameters).
 */
export interface KroneckerFactors {
  readonly k: number;
  readonly c: number;
  readonly a: Float64Array;
  readonly g: Float64Array;
  readonly bias?: Float64Array;
}

/**
 * One diagonal block of a Kronecker matrix in the flat parameter vector: a layer's A ⊗ G, or a
 * separate bias block B stored as B ⊗ [1] (k = C_b, c = 1, `exact`), so that every Kronecker
 * algebra routine also serves the exact bias block.
 */
export interface KroneckerPart {
  readonly offset: number;
  readonly k: number;
  readonly c: number;
  readonly a: Float64Array;
  readonly g: Float64Array;
  /** A separate bias block (exact: damping and functions apply to B itself). */
  readonly exact: boolean;
}

/** The size of a separate bias block, from its stored C_b×C_b values. */
export function biasSize(f: KroneckerFactors): number {
  return f.bias ? Math.round(Math.sqrt(f.bias.length)) : 0;
}

/** The diagonal blocks of per-layer factors in parameter order (`offsets`: each layer's first parameter). */
export function kroneckerParts(factors: readonly KroneckerFactors[], offsets: readonly number[]): KroneckerPart[] {
  return factors.flatMap((f, i) => {
    const kernel: KroneckerPart = { offset: offsets[i]!, k: f.k, c: f.c, a: f.a, g: f.g, exact: false };
    if (!f.bias) return [kernel];
    return [kernel, { offset: offsets[i]! + f.k * f.c, k: biasSize(f), c: 1, a: f.bias, g: Float64Array.of(1), exact: true }];
  });
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

export async function computeKroneckerFactors(spec: PassSpec, type: KfacType, representation: string): Promise<KroneckerFactors[]> {
  const lc = spec.layerCollection;
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
  try {
    const visit = (inputs: ReadonlyMap<string, tf.Tensor>, gradsById: ReadonlyMap<string, tf.Tensor>, firstOutput: boolean) => {
      lc.layers.forEach((e, i) => {
        const s = supports[i]!;
        // A does not depend on the output: take it once per batch.
        if (firstOutput) aSums[i]!.add(s.inputFactor(e.layer, inputs.get(e.id)!, type));
        const grads = gradsById.get(e.id)!;
        gSums[i]!.add(s.outputFactor(e.layer, grads, type));
        // A separate bias block is exact: Σᵢ bᵢbᵢᵀ (tensors here are released by the pass's tidy scope).
        bSums[i]?.add(gram(s.separateBias!.gradients(e.layer, grads)));
      });
    };
    const { examples } = await passOverData(spec, {
      // The output-side sums take the stacked outputs as more examples, one product.
      onOutputs: (out) => visit(out.inputs, out.grads, out.firstOutput === 0),
      onBatchEnd: () => all().forEach((s) => s.flush()),
    });
    return sizes.map(([k, c], i) => {
      const input = aSums[i]!.mean(examples);
      const output = gSums[i]!.mean(examples);
      const bias = bSums[i]?.mean(examples);
      return { k, c, a: swapped[i] ? output : input, g: swapped[i] ? input : output, ...(bias ? { bias } : {}) };
    });
  } finally {
    all().forEach((s) => s.dispose());
  }
}
