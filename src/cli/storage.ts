/**
 * Bytes a computed matrix actually holds, read from its storage (float64 host arrays, float32
 * tensors) rather than from a formula, so that the tables show what a representation costs.
 * Lazily built caches (eigendecompositions, Cholesky factors) are not counted. Browser-safe.
 */
import {
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PMatMixed,
  PMatQuasiDiag,
  type PMatBase,
} from '../index.js';

/** Bytes stored by `M`, or null for a representation this function does not know. */
export function storageBytes(M: PMatBase): number | null {
  const ids = M.layerCollection.layers.map((e) => e.id);
  if (M instanceof PMatDense || M instanceof PMatDiag) return M.values().byteLength;
  if (M instanceof PMatBlockDiag) return ids.reduce((a, id) => a + M.block(id).byteLength, 0);
  if (M instanceof PMatLowRank) return M.factor.size * 4;
  if (M instanceof PMatKFAC) {
    return ids.reduce((a, id) => {
      const f = M.layerFactors(id);
      return a + f.a.byteLength + f.g.byteLength + (f.bias?.byteLength ?? 0);
    }, 0);
  }
  if (M instanceof PMatEKFAC) return M.eigenBlocks().reduce((a, b) => a + b.uA.byteLength + b.uG.byteLength + b.diagonal.byteLength, 0);
  if (M instanceof PMatQuasiDiag) {
    return ids.reduce((a, id) => {
      const b = M.layerBlock(id);
      return a + b.diag.byteLength + (b.cross?.byteLength ?? 0);
    }, 0);
  }
  if (M instanceof PMatMixed) {
    let total = 0;
    for (const part of M.parts()) {
      const bytes = storageBytes(part.matrix);
      if (bytes === null) return null;
      total += bytes;
    }
    return total;
  }
  if (M instanceof PMatImplicit) return 0;
  return null;
}
