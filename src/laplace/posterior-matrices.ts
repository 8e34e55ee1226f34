/**
 * The posterior precision Λ = a·F + δI and covariance Λ⁻¹ = (1/a)(F + (δ/a) I)⁻¹ as matrices of
 * the representation F is stored in (a = n/T, times σ₀²/σ² for regression). Kronecker matrices
 * become PMatEKFAC: a·(A ⊗ G) + δI is not a Kronecker product, but it is diagonal in the
 * Kronecker eigenbasis (exact, as laplace-torch's KronDecomposed).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { PMat, PMatBase } from '../object/pspace/pmat.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { describe } from '../object/arguments.js';

/** The representations Λ and Λ⁻¹ can be formed in. */
export const POSTERIOR_MATRIX_REPRESENTATIONS = 'PMatDense, PMatDiag, PMatBlockDiag, PMatKFAC or PMatEKFAC';

/** a·F + δI in F's representation (PMatEKFAC for PMatKFAC). */
export function precisionMatrix(f: PMatBase, a: number, prior: number, where: string): PMat {
  const lc = f.layerCollection;
  if (f instanceof PMatDense) {
    const t = tf.tidy(() => tf.add(tf.mul(f.toTensor(), a), tf.mul(tf.eye(lc.numel()), prior)) as tf.Tensor2D);
    try {
      return PMatDense.fromTensor(lc, t);
    } finally {
      t.dispose();
    }
  }
  if (f instanceof PMatDiag) return new PMatDiag(lc, f.values().map((x) => a * x + prior));
  if (f instanceof PMatBlockDiag) {
    return PMatBlockDiag.fromBlocks(
      lc,
      lc.layers.map((e) => {
        const b = f.block(e.id).map((x) => a * x);
        for (let i = 0; i < e.numel; i++) b[i * e.numel + i]! += prior;
        return b;
      }),
    );
  }
  if (f instanceof PMatKFAC || f instanceof PMatEKFAC) return scaled(f.pow(1, { regul: prior / a }), a);
  throw new InvalidArgumentError(`${where}: Λ = n·F/T + δI has no ${describe(f)} form; fit with ${POSTERIOR_MATRIX_REPRESENTATIONS} to get it as a matrix (the other Laplace methods work with this representation)`);
}

/** Λ⁻¹ = (1/a)(F + (δ/a) I)⁻¹ in F's representation (PMatEKFAC for PMatKFAC). */
export function covarianceMatrix(f: PMatBase, a: number, prior: number, where: string): PMat {
  const regul = prior / a;
  if (f instanceof PMatDense || f instanceof PMatDiag || f instanceof PMatBlockDiag || f instanceof PMatEKFAC) return scaled(f.inv({ regul }), 1 / a);
  if (f instanceof PMatKFAC) return scaled(f.inv({ regul }) as PMatEKFAC, 1 / a);
  throw new InvalidArgumentError(`${where}: Λ⁻¹ cannot be formed from ${describe(f)}; fit with ${POSTERIOR_MATRIX_REPRESENTATIONS} (predictive and sample work with this representation)`);
}

function scaled<M extends PMat & { scale(x: number): M }>(m: M, x: number): M {
  try {
    return m.scale(x);
  } finally {
    m.dispose();
  }
}
