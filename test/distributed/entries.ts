/** Float64 contents of a stored representation, for comparisons tighter than float32. */
import { PMatBlockDiag, PMatDense, PMatDiag, PMatEKFAC, PMatKFAC, PMatMixed, PMatQuasiDiag, type PMatBase } from '../../src/index.js';

/** Every float64 number a representation stores, in a fixed order. */
export function float64Entries(M: PMatBase): Float64Array {
  const parts: Float64Array[] = [];
  if (M instanceof PMatDiag || M instanceof PMatDense) parts.push(M.values());
  else if (M instanceof PMatBlockDiag) M.layerCollection.layers.forEach((e) => parts.push(M.block(e.id)));
  else if (M instanceof PMatKFAC) M.layerCollection.layers.forEach((e) => parts.push(M.layerFactors(e.id).a, M.layerFactors(e.id).g));
  else if (M instanceof PMatEKFAC) {
    // The matrix U diag(d) Uᵀ: eigenvector signs may differ between two eigendecompositions, so compare d and |U|.
    M.eigenBlocks().forEach((b) => parts.push(b.diagonal, b.uA.map(Math.abs), b.uG.map(Math.abs)));
  } else if (M instanceof PMatQuasiDiag) {
    M.layerCollection.layers.forEach((e) => {
      const b = M.layerBlock(e.id);
      parts.push(b.diag, ...(b.cross ? [b.cross] : []));
    });
  } else if (M instanceof PMatMixed) {
    // Group by group, each with its representation and layers (a different grouping is a different matrix).
    for (const p of M.parts()) {
      parts.push(Float64Array.from(`${p.matrix.constructor.name}:${p.layerIds.join(',')}`, (ch) => ch.charCodeAt(0)), float64Entries(p.matrix as PMatBase));
    }
  } else throw new Error(`float64Entries: ${M.constructor.name} not handled`);
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** ‖a − b‖ / ‖b‖. */
export function relativeDistance(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}
