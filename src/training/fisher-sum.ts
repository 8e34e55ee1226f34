/**
 * Sums of curvature matrices across tasks, for online EWC (Schwarz et al. 2018, "Progress &
 * Compress", eq. 8): F ← γ·F_old + F_new. Where the sum keeps the representation (diagonal,
 * dense, block-diagonal, quasi-diagonal, low-rank, s·I) `onlineFisher` returns one matrix of the
 * same class. Where it does not — a sum of Kronecker products A₁⊗G₁ + A₂⊗G₂ is not a Kronecker
 * product, and two EKFACs have different eigenbases — it refuses with the way out: a
 * `FisherSum`, which keeps the terms and applies them one by one (exact, one product per term).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { checkAlive } from '../object/disposal.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { PVector } from '../object/pvector.js';
import { describe } from '../object/arguments.js';
import { checkScalar, checkVector, type PMat } from '../object/pspace/pmat.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatQuasiDiag } from '../object/pspace/quasi-diag.js';
import { PMatLowRank } from '../object/pspace/low-rank.js';
import { PMatEye } from '../object/pspace/eye.js';

/** A number as itself, anything else described (for error messages). */
const shown = (x: unknown): string => (typeof x === 'number' ? String(x) : describe(x));

/**
 * What EWC, Fisher merging and the optimizer need from a curvature matrix: its collection and
 * the product M v. Every stored PMat is one, and so is a FisherSum.
 */
export interface CurvatureOperator {
  /** The parameters the matrix is about. */
  readonly layerCollection: LayerCollection;
  /** M v, synchronously. */
  mv(v: PVector): PVector;
}

/** One weighted term of a FisherSum. */
export interface FisherTerm {
  /** The matrix F_t (not copied, not disposed by the sum). */
  readonly matrix: PMat;
  /** Its weight w ≥ 0 (default 1). */
  readonly weight?: number;
}

/**
 * Σ_t w_t·F_t kept as its terms, for matrices whose sum is not of their own kind (KFAC, EKFAC,
 * mixed ones). The terms are not copied: they stay owned by the caller, and `dispose()` of the
 * sum releases nothing but itself.
 *
 * @example
 * const F = new FisherSum([{ matrix: fTask1, weight: 0.9 }, { matrix: fTask2 }]);
 * const penalty = ewcPenalty(F, anchor, { model });
 */
export class FisherSum implements CurvatureOperator {
  /** The collection shared by every term. */
  readonly layerCollection: LayerCollection;
  private items: Array<{ matrix: PMat; weight: number }> | null;

  /** The sum Σ_t w_t·F_t of `terms` (a bare matrix has weight 1), all on one layer collection. */
  constructor(terms: ReadonlyArray<FisherTerm | PMat>) {
    if (!Array.isArray(terms) || terms.length === 0) throw new InvalidArgumentError(`FisherSum: 'terms' must be a non-empty array of matrices or { matrix, weight }, received ${describe(terms)}`);
    this.items = terms.map((t, i) => {
      const term = isTerm(t) ? t : { matrix: t as PMat };
      const weight = term.weight ?? 1;
      if (typeof term.matrix?.mv !== 'function') throw new InvalidArgumentError(`FisherSum: term ${i} must be a stored PMat (or { matrix, weight }), received ${describe(term.matrix)}`);
      if (!(typeof weight === 'number' && Number.isFinite(weight) && weight >= 0)) throw new InvalidArgumentError(`FisherSum: the weight of term ${i} must be a finite number ≥ 0, received ${shown(weight)}`);
      return { matrix: term.matrix, weight };
    });
    this.layerCollection = this.items[0]!.matrix.layerCollection;
    this.items.forEach((t, i) => this.layerCollection.assertSame(t.matrix.layerCollection, `term ${i} of the FisherSum`));
  }

  /** The terms with their weights (the matrices are not copied). */
  get terms(): ReadonlyArray<Required<FisherTerm>> {
    checkAlive(this.items !== null, 'FisherSum');
    return this.items;
  }

  /** Σ_t w_t F_t v. */
  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'FisherSum.mv');
    const parts = this.terms.map((t) => t.matrix.mv(v));
    try {
      const out = tf.tidy(() => parts.reduce<tf.Tensor>((acc, p, i) => tf.add(acc, tf.mul(p.data, this.terms[i]!.weight)), tf.zerosLike(v.data)));
      return PVector.adopt(this.layerCollection, out as tf.Tensor1D);
    } finally {
      parts.forEach((p) => p.dispose());
    }
  }

  /** Σ_t w_t vᵀF_t v. */
  vTMv(v: PVector): number {
    return this.terms.reduce((s, t) => s + t.weight * t.matrix.vTMv(v), 0);
  }

  /** Σ_t w_t tr(F_t). */
  trace(): number {
    return this.terms.reduce((s, t) => s + t.weight * t.matrix.trace(), 0);
  }

  /** Σ_t w_t diag(F_t). */
  getDiag(): tf.Tensor1D {
    const diags = this.terms.map((t) => t.matrix.getDiag());
    try {
      return tf.tidy(() => diags.reduce<tf.Tensor>((acc, d, i) => tf.add(acc, tf.mul(d, this.terms[i]!.weight)), tf.zeros([this.layerCollection.numel()]))) as tf.Tensor1D;
    } finally {
      tf.dispose(diags);
    }
  }

  /** The dense d×d sum (only for small d). */
  toTensor(): tf.Tensor2D {
    const dense = this.terms.map((t) => t.matrix.toTensor());
    try {
      const d = this.layerCollection.numel();
      return tf.tidy(() => dense.reduce<tf.Tensor>((acc, m, i) => tf.add(acc, tf.mul(m, this.terms[i]!.weight)), tf.zeros([d, d]))) as tf.Tensor2D;
    } finally {
      tf.dispose(dense);
    }
  }

  /** A sum with every weight multiplied by x ≥ 0 (the same matrices). */
  scale(x: number): FisherSum {
    checkScalar(x, 'FisherSum.scale');
    if (x < 0) throw new InvalidArgumentError(`FisherSum.scale: 'x' must be ≥ 0, received ${x}`);
    return new FisherSum(this.terms.map((t) => ({ matrix: t.matrix, weight: t.weight * x })));
  }

  /** Forgets the terms (which stay owned by the caller). */
  dispose(): void {
    this.items = null;
  }
}

function isTerm(t: unknown): t is FisherTerm {
  return typeof t === 'object' && t !== null && 'matrix' in t;
}

/** Options of the online Fisher (a running weighted sum over tasks or steps). */
/** Options of `onlineFisher`. */
export interface OnlineFisherOptions {
  /** Decay γ ∈ [0, 1] of the old tasks' Fisher (Schwarz et al. 2018). Default 1 (a plain sum). */
  gamma?: number;
}

/**
 * γ·F_old + F_new in the representation of both, for online EWC. Supported where the sum keeps
 * the structure: PMatDiag, PMatDense, PMatBlockDiag, PMatQuasiDiag, PMatLowRank (stacked
 * factors: the rank grows), PMatEye. The inputs are left untouched; the caller owns the result.
 *
 * @throws InvalidArgumentError for PMatKFAC / PMatEKFAC / PMatMixed (their sum is not of their
 * kind) naming what to use instead, or for two different representations.
 * @example
 * const F = onlineFisher(fOld, fNew, { gamma: 0.9 });
 */
export function onlineFisher<M extends PMat>(old: M, next: M, options: OnlineFisherOptions = {}): M {
  const gamma = options.gamma ?? 1;
  if (!(typeof gamma === 'number' && Number.isFinite(gamma) && gamma >= 0 && gamma <= 1)) {
    throw new InvalidArgumentError(`onlineFisher: 'gamma' must be a number in [0, 1], received ${shown(gamma)}`);
  }
  const name = (m: unknown) => (m as { constructor?: { name?: string } })?.constructor?.name ?? describe(m);
  if (old?.constructor !== next?.constructor) {
    throw new InvalidArgumentError(`onlineFisher: 'old' (${name(old)}) and 'next' (${name(next)}) must be the same representation; convert one, or keep both in a FisherSum`);
  }
  const sum = summable(old);
  if (!sum) {
    throw new InvalidArgumentError(
      `onlineFisher: the sum of two ${name(old)} matrices is not a ${name(old)} (A₁⊗G₁ + A₂⊗G₂ is not a Kronecker product, and eigenbases differ); ` +
        `keep the terms exactly with new FisherSum([{ matrix: old, weight: ${gamma} }, { matrix: next }]), which ewcPenalty and fisherMerge accept, ` +
        `or compute the Fisher as PMatDiag or PMatBlockDiag, whose sums are of their kind`,
    );
  }
  old.layerCollection.assertSame(next.layerCollection, "onlineFisher's 'next'");
  const scaled = sum.scale(old, gamma);
  try {
    return sum.add(scaled, next) as M;
  } finally {
    scaled.dispose();
  }
}

interface Summable {
  scale(m: PMat, x: number): PMat;
  add(a: PMat, b: PMat): PMat;
}

/** The scale/add pair of the representations whose sums are of their own kind. */
function summable(m: PMat): Summable | null {
  const kept = m instanceof PMatDiag || m instanceof PMatDense || m instanceof PMatBlockDiag || m instanceof PMatQuasiDiag || m instanceof PMatLowRank || m instanceof PMatEye;
  if (!kept) return null;
  type Closed = PMat & { scale(x: number): PMat; add(o: PMat): PMat };
  return { scale: (a, x) => (a as Closed).scale(x), add: (a, b) => (a as Closed).add(b) };
}
