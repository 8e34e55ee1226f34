/**
 * Exact eigenpairs of the representations whose structure gives them cheaply, instead of
 * Lanczos:
 *   PMatDiag:           λ = the diagonal, v = unit vectors;
 *   PMatKFAC, PMatEKFAC: per Kronecker block (U_A ⊗ U_G) diag(D) (U_A ⊗ U_G)ᵀ, so λ = D[a, b]
 *                       (λ_A[a]·λ_G[b] for KFAC, Martens & Grosse 2015 §6.3) with eigenvector
 *                       u_A[:, a] ⊗ u_G[:, b] in the block's row-major [k, c] layout;
 *   PMatDense, PMatBlockDiag, FMatDense: float64 symmetric eigendecomposition of each block.
 * Each source lists its eigenvalues; only the k selected eigenvectors are ever expanded.
 */
import { eighSym } from '../linalg/index.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { FMatDense } from '../object/fspace/dense.js';
import type { LinearOperator } from './operator.js';
import type { Which } from './lanczos.js';

/** How eigsh obtained its answer. */
export type EigshRoute = 'lanczos' | 'diag' | 'kronecker' | 'dense' | 'block-diag';

/** A block of the matrix whose eigenpairs are known: values, and the vector of the i-th. */
interface EigenSource {
  values: Float64Array;
  /** Writes eigenvector i into `out` (a zero vector of length d). */
  write(i: number, out: Float64Array): void;
}

/** A Kronecker eigenblock at `offset`: λ[a·c + b] = diagonal[a·c + b], v = uA[:, a] ⊗ uG[:, b]. */
function kroneckerSource(offset: number, k: number, c: number, uA: Float64Array, uG: Float64Array, diagonal: Float64Array): EigenSource {
  return {
    values: diagonal,
    write(i, out) {
      const a = Math.floor(i / c);
      const b = i % c;
      for (let r = 0; r < k; r++) {
        const x = uA[r * k + a]!;
        if (x !== 0) for (let t = 0; t < c; t++) out[offset + r * c + t] = x * uG[t * c + b]!;
      }
    },
  };
}

/** A dense symmetric block of size n at `offset` (row-major values). */
function denseSource(offset: number, n: number, block: Float64Array): EigenSource {
  const { values, vectors } = eighSym(block, n);
  return {
    values,
    write(i, out) {
      for (let r = 0; r < n; r++) out[offset + r] = vectors[r * n + i]!;
    },
  };
}

function sourcesOf(op: LinearOperator): { route: EigshRoute; sources: EigenSource[] } | null {
  if (op instanceof PMatDiag) {
    const t = op.getDiag();
    const values = new Float64Array(t.dataSync());
    t.dispose();
    return { route: 'diag', sources: [{ values, write: (i, out) => void (out[i] = 1) }] };
  }
  if (op instanceof PMatEKFAC) {
    return { route: 'kronecker', sources: op.eigenBlocks().map((b) => kroneckerSource(b.offset, b.k, b.c, b.uA, b.uG, b.diagonal)) };
  }
  if (op instanceof PMatKFAC) {
    const layers = op.layerCollection.layers;
    const sources = op.eigendecomposition().flatMap((e, i) => {
      const [k, c] = [e.eigenvaluesA.length, e.eigenvaluesG.length];
      const d = new Float64Array(k * c);
      for (let a = 0; a < k; a++) for (let b = 0; b < c; b++) d[a * c + b] = e.eigenvaluesA[a]! * e.eigenvaluesG[b]!;
      const offset = layers[i]!.offset;
      const out = [kroneckerSource(offset, k, c, e.eigenvectorsA, e.eigenvectorsG, d)];
      if (e.bias) out.push(kroneckerSource(offset + k * c, e.bias.eigenvalues.length, 1, e.bias.eigenvectors, Float64Array.of(1), e.bias.eigenvalues));
      return out;
    });
    return { route: 'kronecker', sources };
  }
  if (op instanceof PMatDense) return { route: 'dense', sources: [denseSource(0, op.layerCollection.numel(), op.values())] };
  if (op instanceof FMatDense) return { route: 'dense', sources: [denseSource(0, op.numOutputs * op.numExamples, op.values())] };
  if (op instanceof PMatBlockDiag) {
    return { route: 'block-diag', sources: op.layerCollection.layers.map((e) => denseSource(e.offset, e.numel, op.block(e.id))) };
  }
  return null;
}

/**
 * The k extreme eigenpairs of `op` through its structure, or null when it has none the
 * library knows (then eigsh runs Lanczos). Values sorted from the extreme inward.
 */
export function structuredEigenpairs(op: LinearOperator, k: number, which: Which, d: number): { route: EigshRoute; values: Float64Array; vectors: Float64Array[] } | null {
  const found = sourcesOf(op);
  if (!found) return null;
  const all: Array<{ value: number; source: number; index: number }> = [];
  found.sources.forEach((s, source) => s.values.forEach((value, index) => all.push({ value, source, index })));
  all.sort((x, y) => (which === 'largest' ? y.value - x.value : x.value - y.value));
  const chosen = all.slice(0, k);
  return {
    route: found.route,
    values: Float64Array.from(chosen, (c) => c.value),
    vectors: chosen.map((c) => {
      const v = new Float64Array(d);
      found.sources[c.source]!.write(c.index, v);
      return v;
    }),
  };
}
