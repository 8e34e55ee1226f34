/**
 * One pass over the data that accumulates every layer's Kronecker factors (CONVENTIONS.md):
 *   A = (1/n) Σᵢ (input term), G = (1/n) Σᵢ Σ_o (output term of square-root output o),
 * with the terms of `KroneckerSupport` ('expand' or 'reduce' over shared positions). Sums are
 * formed per batch on the device and added across batches in float64.
 */
import { UnsupportedLayerError } from '../../../errors.js';
import type { KfacType, KroneckerSupport } from '../../../layers/layer-kind.js';
import type { LayerCollection, LayerEntry } from '../../../layers/layer-collection.js';
import { passOverData, type PassSpec } from '../../../backend/engine.js';
import { HostSum } from '../accumulators.js';

/** The float64 factors of one layer: A (k×k) over the augmented input, G (c×c) over the outputs. */
export interface KroneckerFactors {
  readonly k: number;
  readonly c: number;
  readonly a: Float64Array;
  readonly g: Float64Array;
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
  const aSums = sizes.map(([k]) => new HostSum(k * k));
  const gSums = sizes.map(([, c]) => new HostSum(c * c));
  try {
    const { examples } = await passOverData(spec, {
      onOutput: (out) => {
        lc.layers.forEach((e, i) => {
          const s = supports[i]!;
          // A does not depend on the output: take it once per batch.
          if (out.output === 0) aSums[i]!.add(s.inputFactor(e.layer, out.inputs.get(e.id)!, type));
          gSums[i]!.add(s.outputFactor(e.layer, out.grads.get(e.id)!, type));
        });
      },
      onBatchEnd: () => [...aSums, ...gSums].forEach((s) => s.flush()),
    });
    return sizes.map(([k, c], i) => ({ k, c, a: aSums[i]!.mean(examples), g: gSums[i]!.mean(examples) }));
  } finally {
    [...aSums, ...gSums].forEach((s) => s.dispose());
  }
}
