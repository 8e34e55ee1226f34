/**
 * Fisher-weighted model merging (Matena & Raffel 2022, eq. 3 with the full matrices of their
 * §2.2): given models θ_t with Fishers F_t on the same parameters,
 *   θ* = (Σ_t F_t + λI)⁻¹ Σ_t F_t θ_t,
 * the maximiser of Σ_t log p(θ | Laplace posterior of model t) with a Gaussian prior of
 * precision λ. Diagonal Fishers reduce to an elementwise weighted average (their eq. 2); dense
 * and block-diagonal ones are solved in float64 by Cholesky; any other mix (KFAC, EKFAC, mixed,
 * FisherSum) by conjugate gradient on v ↦ Σ_t F_t v + λv, one product per term and iteration.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, NotPositiveDefiniteError } from '../errors.js';
import type { LayerCollection, LayerEntry } from '../layers/layer-collection.js';
import { PVector } from '../object/pvector.js';
import { checkOptions, describe } from '../object/arguments.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { conjugateGradient } from '../linalg/conjugate-gradient.js';
import { vectorFromHost, vectorToHost } from '../object/pspace/host-vectors.js';
import { cholesky, choleskySolve } from '../linalg/index.js';
import type { CurvatureOperator } from './fisher-sum.js';

/** A number as itself, anything else described (for error messages). */
const shown = (x: unknown): string => (typeof x === 'number' ? String(x) : describe(x));

/** One model to merge: its weights and its Fisher on the same layer collection. */
export interface MergeMember {
  /** A PVector, or a model whose current weights are read on the Fisher's collection. */
  weights: PVector | tf.LayersModel;
  /** Its Fisher (any stored matrix or a FisherSum) on the same collection. */
  fisher: CurvatureOperator;
}

/** Options of Fisher-weighted model merging. */
/** Options of `fisherMerge`. */
export interface FisherMergeOptions {
  /** Damping λ ≥ 0 of (Σ F_t + λI). Default 0 (then Σ F_t must be invertible). */
  regul?: number;
  /** 'auto' (default): closed form for all-Diag, all-Dense or all-BlockDiag members, CG otherwise; 'cg' forces CG. */
  solver?: 'auto' | 'cg';
  /** CG: relative residual tolerance (default 1e-6) and iteration cap (default min(10·d, 1000)). */
  rtol?: number;
  /** CG: iteration cap (each iteration one product per member). */
  maxIter?: number;
}

/**
 * (Σ_t F_t + λI)⁻¹ Σ_t F_t θ_t as a PVector (the caller owns it; `copyToModel` puts it in a model).
 *
 * @throws InvalidArgumentError for an empty list or a bad option; LayerCollectionMismatchError
 * for members on different collections; NotPositiveDefiniteError when Σ F_t + λI is singular
 * (use regul > 0).
 * @example
 * const merged = await fisherMerge([{ weights: modelA, fisher: fA }, { weights: modelB, fisher: fB }], { regul: 1e-6 });
 * merged.copyToModel(modelA);
 */
export async function fisherMerge(members: readonly MergeMember[], options: FisherMergeOptions = {}): Promise<PVector> {
  const o = checkOptions(options, ['regul', 'solver', 'rtol', 'maxIter'], 'fisherMerge') as FisherMergeOptions;
  const regul = o.regul ?? 0;
  if (!(typeof regul === 'number' && Number.isFinite(regul) && regul >= 0)) throw new InvalidArgumentError(`fisherMerge: 'regul' must be a finite number ≥ 0, received ${shown(regul)}`);
  if (o.solver !== undefined && o.solver !== 'auto' && o.solver !== 'cg') throw new InvalidArgumentError(`fisherMerge: 'solver' must be 'auto' or 'cg', received ${describe(o.solver)}`);
  if (!Array.isArray(members) || members.length === 0) throw new InvalidArgumentError(`fisherMerge: 'members' must be a non-empty array of { weights, fisher }, received ${describe(members)}`);
  members.forEach((m, i) => {
    if (typeof m?.fisher?.mv !== 'function') throw new InvalidArgumentError(`fisherMerge: member ${i} needs a stored 'fisher' matrix (PMatDiag, PMatKFAC, ...), received ${describe(m?.fisher)}`);
    if (!(m.weights instanceof PVector || m.weights instanceof tf.LayersModel)) throw new InvalidArgumentError(`fisherMerge: the 'weights' of member ${i} must be a PVector or a tf.LayersModel, received ${describe(m.weights)}`);
  });
  const lc = members[0]!.fisher.layerCollection;
  members.forEach((m, i) => {
    lc.assertSame(m.fisher.layerCollection, `the fisher of member ${i}`);
    if (m.weights instanceof PVector) lc.assertSame(m.weights.layerCollection, `the weights of member ${i}`);
  });
  const thetas = members.map((m) => (m.weights instanceof PVector ? m.weights : PVector.fromModel(m.weights, lc)));
  try {
    const fishers = members.map((m) => m.fisher);
    if ((o.solver ?? 'auto') === 'auto') {
      if (fishers.every((f) => f instanceof PMatDiag)) return mergeDiag(lc, fishers as PMatDiag[], thetas, regul);
      if (fishers.every((f) => f instanceof PMatDense)) return mergeBlocks(lc, [{ offset: 0, n: lc.numel(), blocks: (fishers as PMatDense[]).map((f) => f.values()) }], thetas, regul);
      if (fishers.every((f) => f instanceof PMatBlockDiag)) {
        return mergeBlocks(lc, lc.layers.map((e: LayerEntry) => ({ offset: e.offset, n: e.numel, blocks: (fishers as PMatBlockDiag[]).map((f) => f.block(e.id)) })), thetas, regul);
      }
    }
    return await mergeByCG(lc, fishers, thetas, regul, o);
  } finally {
    thetas.forEach((t, i) => {
      if (t !== members[i]!.weights) t.dispose();
    });
  }
}

/** θ*_k = Σ_t F_t,kk θ_t,k / (Σ_t F_t,kk + λ), in float64. */
function mergeDiag(lc: LayerCollection, fishers: PMatDiag[], thetas: PVector[], regul: number): PVector {
  const d = lc.numel();
  const num = new Float64Array(d);
  const den = new Float64Array(d).fill(regul);
  fishers.forEach((f, t) => {
    const w = f.values();
    const x = vectorToHost(thetas[t]!);
    for (let k = 0; k < d; k++) {
      num[k] += w[k]! * x[k]!;
      den[k] += w[k]!;
    }
  });
  const k = den.findIndex((x) => !(x > 0));
  if (k >= 0) throw new NotPositiveDefiniteError(`fisherMerge: parameter ${k} has zero Fisher in every member (Σ F_t + regul = ${den[k]}); use a regul > 0`);
  return vectorFromHost(lc, num.map((x, i) => x / den[i]!));
}

/** Per diagonal block (offset, size n, the members' n×n float64 blocks): Cholesky solve of Σ_t B_t + λI against Σ_t B_t θ_t. */
function mergeBlocks(lc: LayerCollection, parts: Array<{ offset: number; n: number; blocks: Float64Array[] }>, thetas: PVector[], regul: number): PVector {
  const xs = thetas.map((t) => vectorToHost(t));
  const out = new Float64Array(lc.numel());
  for (const { offset, n, blocks } of parts) {
    const sum = new Float64Array(n * n);
    const rhs = new Float64Array(n);
    blocks.forEach((b, t) => {
      const x = xs[t]!;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) {
          const bij = b[i * n + j]!;
          sum[i * n + j] += bij;
          s += bij * x[offset + j]!;
        }
        rhs[i] += s;
      }
    });
    for (let i = 0; i < n; i++) sum[i * n + i] += regul;
    out.set(choleskySolve(cholesky(sum, n), n, rhs, 1), offset);
  }
  return vectorFromHost(lc, out);
}

async function mergeByCG(lc: LayerCollection, fishers: CurvatureOperator[], thetas: PVector[], regul: number, o: FisherMergeOptions): Promise<PVector> {
  const apply = (v: PVector): PVector => {
    const parts = fishers.map((f) => f.mv(v));
    const out = tf.tidy(() => parts.reduce<tf.Tensor>((a, p) => tf.add(a, p.data), tf.zerosLike(v.data)) as tf.Tensor1D);
    parts.forEach((p) => p.dispose());
    return PVector.adopt(lc, out);
  };
  const products = fishers.map((f, t) => f.mv(thetas[t]!));
  const b = PVector.adopt(lc, tf.tidy(() => products.reduce<tf.Tensor>((a, p) => tf.add(a, p.data), tf.zeros([lc.numel()])) as tf.Tensor1D));
  products.forEach((p) => p.dispose());
  try {
    const { x } = await conjugateGradient(async (v) => apply(v), b, { regul, rtol: o.rtol ?? 1e-6, ...(o.maxIter !== undefined ? { maxIter: o.maxIter } : {}) });
    return x;
  } finally {
    b.dispose();
  }
}
