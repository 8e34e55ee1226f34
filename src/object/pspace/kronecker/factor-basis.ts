/**
 * The orthonormal eigenbasis U (k×k) of a Kronecker factor, held explicitly or, for a wide
 * factor decomposed through its rows, as its range U_r (k×r): the other k − r columns (an
 * orthonormal basis of the null space, eigenvalue 0) are implicit, represented by the
 * projector P_⊥ = I − U_r U_rᵀ, and materialised only when a consumer asks for U itself.
 * Column order as `eighSym`'s: the k − r null columns first, then U_r.
 */
import { completeEigen, type ThinSymmetricEigen } from '../../../linalg/gram-eigen.js';

export class FactorBasis {
  /** The order k of the factor. */
  readonly k: number;
  /** r: the columns of U that are held (k for an explicit basis). */
  readonly rank: number;
  /** U_r (k×r row-major, the last r columns of U); U itself when explicit. */
  readonly range: Float64Array;
  private explicit: Float64Array | null;

  private constructor(k: number, rank: number, range: Float64Array, explicit: Float64Array | null) {
    this.k = k;
    this.rank = rank;
    this.range = range;
    this.explicit = explicit;
  }

  /** An explicit basis U (k×k row-major, orthonormal columns). Takes ownership. */
  static explicit(u: Float64Array, k: number): FactorBasis {
    return new FactorBasis(k, k, u, u);
  }

  /** The range of a thin decomposition, the null space implicit. */
  static thin(thin: ThinSymmetricEigen): FactorBasis {
    return thin.rank === thin.k ? FactorBasis.explicit(thin.vectors, thin.k) : new FactorBasis(thin.k, thin.rank, thin.vectors, null);
  }

  /** k − r: the null columns not held. */
  get nullity(): number {
    return this.k - this.rank;
  }

  /** True while the null columns are implicit (not yet materialised). */
  get isImplicit(): boolean {
    return this.explicit === null;
  }

  /**
   * U (k×k row-major): for an implicit basis, [Q_⊥, U_r] with Q_⊥ from the Householder QR of
   * U_r (2k r (k − r) flops), computed on the first call and kept.
   */
  full(): Float64Array {
    this.explicit ??= completeEigen({ k: this.k, rank: this.rank, values: new Float64Array(this.rank), vectors: this.range }).vectors;
    return this.explicit;
  }
}
