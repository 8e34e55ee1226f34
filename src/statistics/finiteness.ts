/**
 * One finiteness policy for computed matrices: every representation computed from a model
 * refuses a statistic that overflowed float32 (or became NaN) with a NonFiniteError, instead of
 * returning a matrix whose trace, norm or solves are silently Infinity or NaN. The inputs and
 * outputs of each batch are checked by the pass (finite inputs, finite outputs); what remains is
 * overflow inside the statistics: squared per-example gradients or Kronecker factors beyond
 * 3.4·10³⁸ (weights or activations of magnitude ~10¹⁹ and more). Stored representations check
 * what they accumulated before wrapping it (no tensor is held yet, so nothing leaks); the
 * matrix-free one checks the result of every operation. The message names the representation,
 * the statistic and the way out, and says "overflow" for every representation alike.
 */
import { NonFiniteError } from '../errors.js';
import type { KfacType } from '../layers/layer-kind.js';
import type { PassSpec } from '../backend/pass.js';
import { computeKroneckerFactors, factorRowsOf, factorWidth, holdsFactor, type KroneckerFactors } from './kronecker-factors.js';
import { type FactorSide, rowsDiagonal } from './factor-rows.js';

/** The error of a statistic that holds `value` (NaN or ±Infinity) at `index`. */
export function overflowError(representation: string, what: string, value: number, index?: number): NonFiniteError {
  return new NonFiniteError(
    `${representation}: ${what} holds ${value}${index === undefined ? '' : ` at index ${index}`} — float32 overflow of the Fisher statistics ` +
      `(per-example gradients or layer inputs too large, e.g. weights or inputs of magnitude 1e19); the matrix would be meaningless. ` +
      `Rescale the weights or the inputs`,
  );
}

/** Throws `overflowError` at the first NaN or ±Infinity of `values`. */
export function assertFiniteStatistic(values: ArrayLike<number>, representation: string, what: string): void {
  for (let k = 0; k < values.length; k++) {
    if (!Number.isFinite(values[k]!)) throw overflowError(representation, what, values[k]!, k);
  }
}

/**
 * The Kronecker factors of a pass (kronecker-factors.ts), refused when one overflowed: A
 * (Σ x xᵀ over inputs) overflows first for large activations, G for large output gradients.
 */
export async function computeFiniteFactors(spec: PassSpec, type: KfacType, representation: string): Promise<KroneckerFactors[]> {
  const factors = await computeKroneckerFactors(spec, type, representation);
  spec.layerCollection.layers.forEach((e, i) => {
    const f = factors[i]!;
    for (const side of ['a', 'g'] as const) {
      assertFiniteStatistic(checkedValues(f, side), representation, `the Kronecker factor ${side.toUpperCase()} of layer '${e.id}'`);
    }
    if (f.bias) assertFiniteStatistic(f.bias, representation, `the bias block of layer '${e.id}'`);
  });
  return factors;
}

/**
 * The values to scan for the factor of `side`: the n×n array, or for a factor held as its rows
 * (float64 R, F = RᵀR) its diagonal rounded to float32 — |F_ij| ≤ max_j F_jj, so F fits float32
 * exactly when its diagonal does (and the factor is never formed for the check).
 */
function checkedValues(f: KroneckerFactors, side: FactorSide): ArrayLike<number> {
  if (holdsFactor(f, side)) return side === 'a' ? f.a : f.g;
  return rowsDiagonal(factorRowsOf(f, side)!, factorWidth(f, side)).map(Math.fround);
}
