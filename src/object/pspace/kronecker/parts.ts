/**
 * The diagonal blocks of a Kronecker-factored matrix in the flat parameter vector, built from
 * per-layer Kronecker factors (statistics/kronecker-factors.ts).
 */
import type { KroneckerFactors } from '../../../statistics/kronecker-factors.js';

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
  /** R with A = RᵀR when the factor is wide (see KroneckerFactors.aRows). */
  readonly aRows?: Float64Array;
  /** R_G with G = R_GᵀR_G when the output factor is held as rows (see KroneckerFactors.gRows). */
  readonly gRows?: Float64Array;
  /** The layer's factors the part was taken from (a layer's A ⊗ G part only). */
  readonly factors?: KroneckerFactors;
}

/** The size of a separate bias block, from its stored C_b×C_b values. */
export function biasSize(f: KroneckerFactors): number {
  return f.bias ? Math.round(Math.sqrt(f.bias.length)) : 0;
}

/** The diagonal blocks of per-layer factors in parameter order (`offsets`: each layer's first parameter). */
export function kroneckerParts(factors: readonly KroneckerFactors[], offsets: readonly number[]): KroneckerPart[] {
  return factors.flatMap((f, i) => {
    // `a` and `g` are read through: a factor held as its rows is formed only if a consumer reads it.
    const kernel: KroneckerPart = {
      offset: offsets[i]!, k: f.k, c: f.c, exact: false, factors: f,
      get a() {
        return f.a;
      },
      get g() {
        return f.g;
      },
      ...(f.aRows ? { aRows: f.aRows } : {}),
      ...(f.gRows ? { gRows: f.gRows } : {}),
    };
    if (!f.bias) return [kernel];
    return [kernel, { offset: offsets[i]! + f.k * f.c, k: biasSize(f), c: 1, a: f.bias, g: Float64Array.of(1), exact: true }];
  });
}

