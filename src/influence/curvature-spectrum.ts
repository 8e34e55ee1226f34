/**
 * The eigendecomposition of a stored curvature matrix F = Σ_j λ_j u_j u_jᵀ, kept in the form its
 * representation gives for free, so that any spectral function f(F) can be applied to many
 * vectors at once without forming d×d:
 *   - PMatKFAC / PMatEKFAC: per layer, U_A ⊗ U_G with the diagonal D in that basis
 *     (George et al. 2018; kronfluence projects per-example gradients the same way, Grosse et
 *     al. 2023, eq. 21): Uᵀv = vec(U_Aᵀ V U_G) per layer, on the device;
 *   - PMatDiag: unit vectors;
 *   - PMatDense / PMatBlockDiag: a float64 eigendecomposition of each block (computed once);
 *   - PMatLowRank (F = RᵀR, R the m×d scaled Jacobian): the nonzero eigenpairs from the m×m
 *     Gram R Rᵀ = V S Vᵀ, u_j = Rᵀ v_j / √s_j; the other d − m eigenvalues are 0.
 * Laplace uses it for log det(a·F + δI) = Σ_j log(a λ_j + δ) (eigenvalues cached: new
 * hyperparameters cost no pass), Λ⁻¹ and Λ^{-1/2}; the influence functions for (F + λI)⁻¹.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { checkAlive } from '../object/disposal.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { eighSym, gemm } from '../linalg/index.js';
import type { PMatBase } from '../object/pspace/pmat.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { PMatLowRank } from '../object/pspace/low-rank.js';
import { describe } from '../object/arguments.js';

/** The representations with a spectrum (and so a log-determinant, a square root, ...). */
export const SPECTRAL_REPRESENTATIONS = 'PMatDense, PMatDiag, PMatBlockDiag, PMatKFAC, PMatEKFAC or PMatLowRank';

/** A function of the eigenvalues, applied entrywise. */
export type SpectralFunction = (eigenvalue: number) => number;

/** One Kronecker eigenblock (U_A ⊗ U_G) diag(vec D) (U_A ⊗ U_G)ᵀ of the parameters offset … offset + k·c. */
export interface KroneckerBlock {
  readonly offset: number;
  readonly k: number;
  readonly c: number;
  /** D, [k, c] row-major. */
  readonly eigenvalues: Float64Array;
  readonly uA: tf.Tensor2D;
  readonly uG: tf.Tensor2D;
}

interface KroneckerPart extends KroneckerBlock {
  readonly kind: 'kronecker';
  readonly offset: number;
  readonly k: number;
  readonly c: number;
  readonly eigenvalues: Float64Array;
  readonly uA: tf.Tensor2D;
  readonly uG: tf.Tensor2D;
}
interface DiagonalPart {
  readonly kind: 'diagonal';
  readonly offset: number;
  readonly size: number;
  readonly eigenvalues: Float64Array;
}
interface DensePart {
  readonly kind: 'dense';
  readonly offset: number;
  readonly size: number;
  readonly eigenvalues: Float64Array;
  /** size × size, eigenvectors in columns, row-major float64. */
  readonly vectors: Float64Array;
}
/** Nonzero eigenpairs of a low-rank matrix over the whole vector: u_j = Rᵀ v_j / √s_j. */
interface LowRankPart {
  readonly kind: 'lowrank';
  readonly offset: number;
  readonly size: number;
  readonly eigenvalues: Float64Array;
  /** The eigenvectors as rows, [m', d] row-major float64. */
  readonly basis: Float64Array;
}
type Part = KroneckerPart | DiagonalPart | DensePart | LowRankPart;

export class CurvatureSpectrum {
  readonly layerCollection: LayerCollection;
  private parts: Part[] | null;
  /** d minus the number of eigenvalues held (structural zeros of a low-rank matrix). */
  readonly implicitZeros: number;

  private constructor(lc: LayerCollection, parts: Part[]) {
    this.layerCollection = lc;
    this.parts = parts;
    this.implicitZeros = lc.numel() - parts.reduce((s, p) => s + p.eigenvalues.length, 0);
  }

  /** Whether `matrix` is one of the representations with a spectrum. */
  static supports(matrix: unknown): boolean {
    return [PMatDense, PMatDiag, PMatBlockDiag, PMatKFAC, PMatEKFAC, PMatLowRank].some((c) => matrix instanceof c);
  }

  /**
   * The spectrum of `matrix` (not taken over: it stays the caller's). Throws
   * InvalidArgumentError for a representation without one, naming `where` and those that have.
   */
  static of(matrix: PMatBase, where: string): CurvatureSpectrum {
    const lc = matrix.layerCollection;
    if (matrix instanceof PMatEKFAC) return new CurvatureSpectrum(lc, kroneckerParts(matrix));
    if (matrix instanceof PMatKFAC) {
      // A ⊗ G in its Kronecker eigenbasis: an EKFAC matrix with D = λ_A λ_Gᵀ.
      const e = matrix.pow(1);
      try {
        return new CurvatureSpectrum(lc, kroneckerParts(e));
      } finally {
        e.dispose();
      }
    }
    if (matrix instanceof PMatDiag) return new CurvatureSpectrum(lc, [{ kind: 'diagonal', offset: 0, size: lc.numel(), eigenvalues: Float64Array.from(matrix.values()) }]);
    if (matrix instanceof PMatDense) return new CurvatureSpectrum(lc, [densePart(0, lc.numel(), matrix.values())]);
    if (matrix instanceof PMatBlockDiag) return new CurvatureSpectrum(lc, lc.layers.map((e) => densePart(e.offset, e.numel, matrix.block(e.id))));
    if (matrix instanceof PMatLowRank) return new CurvatureSpectrum(lc, [lowRankPart(matrix.factor, lc.numel())]);
    throw new InvalidArgumentError(`${where}: ${describe(matrix)} has no eigendecomposition to work with; use ${SPECTRAL_REPRESENTATIONS}`);
  }

  private get live(): Part[] {
    checkAlive(this.parts !== null, 'CurvatureSpectrum');
    return this.parts;
  }

  /** The eigenvalues held (all d, except the structural zeros of a low-rank matrix), float64. */
  eigenvalues(): Float64Array {
    const parts = this.live;
    const out = new Float64Array(parts.reduce((s, p) => s + p.eigenvalues.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p.eigenvalues, at);
      at += p.eigenvalues.length;
    }
    return out;
  }

  /** Σ_j log f(λ_j) over all d eigenvalues (the structural zeros count as f(0)). */
  logdet(f: SpectralFunction): number {
    let s = 0;
    for (const p of this.live) for (const x of p.eigenvalues) s += Math.log(f(x));
    return s + this.implicitZeros * Math.log(f(0));
  }

  /**
   * The Kronecker eigenblocks in parameter order (views, valid until dispose) when every part is
   * one — F came from PMatKFAC or PMatEKFAC — else null.
   */
  kroneckerBlocks(): ReadonlyArray<KroneckerBlock> | null {
    const parts = this.live;
    return parts.every((p): p is KroneckerPart => p.kind === 'kronecker') ? parts : null;
  }

  /** Rows of f(F) Vᵀ for rows V [R, d] (f(F) symmetric): a new [R, d] tensor. */
  apply(rows: tf.Tensor2D, f: SpectralFunction): tf.Tensor2D {
    const parts = this.live;
    return tf.tidy(() => tf.concat(this.sliceByPart(parts, rows).map(([p, v]) => applyPart(p, v, f)), 1) as tf.Tensor2D);
  }

  /** v_r f(F) v_rᵀ for every row of V [R, d]: a new [R] tensor. */
  quadratic(rows: tf.Tensor2D, f: SpectralFunction): tf.Tensor1D {
    const parts = this.live;
    return tf.tidy(() => this.sliceByPart(parts, rows).map(([p, v]) => quadraticPart(p, v, f)).reduce((a, b) => tf.add(a, b)) as tf.Tensor1D);
  }

  /** Column slices of the rows, one per part, in parameter order. */
  private sliceByPart(parts: Part[], rows: tf.Tensor2D): Array<[Part, tf.Tensor2D]> {
    const d = this.layerCollection.numel();
    if (rows.rank !== 2 || rows.shape[1] !== d) throw new InvalidArgumentError(`curvature spectrum: expected rows [R, ${d}], received [${rows.shape}]`);
    return parts.map((p) => [p, p.kind === 'lowrank' ? rows : (tf.slice(rows, [0, p.offset], [-1, partSize(p)]) as tf.Tensor2D)]);
  }

  dispose(): void {
    for (const p of this.parts ?? []) if (p.kind === 'kronecker') tf.dispose([p.uA, p.uG]);
    this.parts = null;
  }
}

function partSize(p: Part): number {
  return p.kind === 'kronecker' ? p.k * p.c : p.size;
}

function kroneckerParts(m: PMatEKFAC): Part[] {
  return m.eigenBlocks().map((b) => ({
    kind: 'kronecker' as const,
    offset: b.offset,
    k: b.k,
    c: b.c,
    eigenvalues: Float64Array.from(b.diagonal),
    uA: tf.tensor2d(new Float32Array(b.uA), [b.k, b.k]),
    uG: tf.tensor2d(new Float32Array(b.uG), [b.c, b.c]),
  }));
}

function densePart(offset: number, size: number, values: Float64Array): DensePart {
  const e = eighSym(values, size);
  return { kind: 'dense', offset, size, eigenvalues: e.values.map((x) => Math.max(x, 0)), vectors: e.vectors };
}

/** Eigenvalues of RᵀR below this fraction of the largest are treated as the zeros they are in exact arithmetic. */
const LOW_RANK_CUTOFF = 1e-10;

function lowRankPart(factor: tf.Tensor2D, d: number): LowRankPart {
  const [m] = factor.shape;
  const r = Float64Array.from(factor.dataSync());
  // Gram R Rᵀ (m×m) in float64: R [m, d] times Rᵀ.
  const rt = new Float64Array(d * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < d; j++) rt[j * m + i] = r[i * d + j]!;
  const e = eighSym(gemm(r, m, d, rt, m), m);
  const top = e.values.reduce((a, x) => Math.max(a, x), 0);
  const keep = Array.from(e.values.keys()).filter((j) => e.values[j]! > LOW_RANK_CUTOFF * top);
  // Row j of the basis: (Rᵀ v_j)ᵀ / √s_j = (v_jᵀ R) / √s_j.
  const vt = new Float64Array(keep.length * m);
  keep.forEach((j, q) => {
    const scale = 1 / Math.sqrt(e.values[j]!);
    for (let i = 0; i < m; i++) vt[q * m + i] = e.vectors[i * m + j]! * scale;
  });
  return { kind: 'lowrank', offset: 0, size: d, eigenvalues: Float64Array.from(keep, (j) => e.values[j]!), basis: gemm(vt, keep.length, m, r, d) };
}

/** f over the eigenvalues, as a float32 tensor of the given shape. */
function weights(values: Float64Array, f: SpectralFunction, shape: number[]): tf.Tensor {
  return tf.tensor(Float32Array.from(values, f), shape);
}

/** Σ_ab (U_Aᵀ V_r U_G)²_ab f(D_ab) for every row r of V [R, k·c] (one Kronecker block): [R]. */
export function kroneckerQuadratic(block: KroneckerBlock, rows: tf.Tensor2D, f: SpectralFunction): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(tf.square(projectKronecker(block, rows)), weights(block.eigenvalues, f, [block.k, block.c])), [1, 2]) as tf.Tensor1D);
}

/** U_Aᵀ V_r U_G for every row r of V [R, k·c]: [R, k, c]. */
function projectKronecker(p: KroneckerBlock, v: tf.Tensor2D): tf.Tensor3D {
  const r = v.shape[0];
  const right = tf.matMul(v.reshape([r * p.k, p.c]), p.uG).reshape([r, p.k, p.c]);
  const left = tf.matMul(tf.transpose(right, [0, 2, 1]).reshape([r * p.c, p.k]), p.uA).reshape([r, p.c, p.k]);
  return tf.transpose(left, [0, 2, 1]) as tf.Tensor3D;
}

/** U_A W_r U_Gᵀ for every row r of W [R, k, c]: [R, k·c]. */
function unprojectKronecker(p: KroneckerPart, w: tf.Tensor3D): tf.Tensor2D {
  const r = w.shape[0];
  const right = tf.matMul(w.reshape([r * p.k, p.c]), p.uG, false, true).reshape([r, p.k, p.c]);
  const left = tf.matMul(tf.transpose(right, [0, 2, 1]).reshape([r * p.c, p.k]), p.uA, false, true).reshape([r, p.c, p.k]);
  return tf.transpose(left, [0, 2, 1]).reshape([r, p.k * p.c]) as tf.Tensor2D;
}

/** Rows of a float32 tensor as float64, and the float64 rows back. */
function toHost(v: tf.Tensor2D): Float64Array {
  return Float64Array.from(v.dataSync());
}

function applyPart(p: Part, v: tf.Tensor2D, f: SpectralFunction): tf.Tensor2D {
  const r = v.shape[0];
  switch (p.kind) {
    case 'kronecker':
      return unprojectKronecker(p, tf.mul(projectKronecker(p, v), weights(p.eigenvalues, f, [p.k, p.c])) as tf.Tensor3D);
    case 'diagonal':
      return tf.mul(v, weights(p.eigenvalues, f, [1, p.size])) as tf.Tensor2D;
    case 'dense': {
      // V U f(Λ) Uᵀ in float64.
      const n = p.size;
      const proj = gemm(toHost(v), r, n, p.vectors, n);
      for (let i = 0; i < r; i++) for (let j = 0; j < n; j++) proj[i * n + j]! *= f(p.eigenvalues[j]!);
      const ut = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) ut[j * n + i] = p.vectors[i * n + j]!;
      return tf.tensor2d(Float32Array.from(gemm(proj, r, n, ut, n)), [r, n]);
    }
    case 'lowrank': {
      // f(0)·v + Σ_j (f(s_j) − f(0)) (v·u_j) u_j.
      const { m, proj } = lowRankProjection(p, v);
      const f0 = f(0);
      for (let i = 0; i < r; i++) for (let j = 0; j < m; j++) proj[i * m + j]! *= f(p.eigenvalues[j]!) - f0;
      const out = gemm(proj, r, m, p.basis, p.size);
      const host = toHost(v);
      for (let i = 0; i < out.length; i++) out[i]! += f0 * host[i]!;
      return tf.tensor2d(Float32Array.from(out), [r, p.size]);
    }
  }
}

function quadraticPart(p: Part, v: tf.Tensor2D, f: SpectralFunction): tf.Tensor1D {
  const r = v.shape[0];
  switch (p.kind) {
    case 'kronecker':
      return tf.sum(tf.mul(tf.square(projectKronecker(p, v)), weights(p.eigenvalues, f, [p.k, p.c])), [1, 2]) as tf.Tensor1D;
    case 'diagonal':
      return tf.sum(tf.mul(tf.square(v), weights(p.eigenvalues, f, [1, p.size])), 1) as tf.Tensor1D;
    case 'dense': {
      const n = p.size;
      const proj = gemm(toHost(v), r, n, p.vectors, n);
      const out = new Float64Array(r);
      for (let i = 0; i < r; i++) for (let j = 0; j < n; j++) out[i] += f(p.eigenvalues[j]!) * proj[i * n + j]! ** 2;
      return tf.tensor1d(Float32Array.from(out));
    }
    case 'lowrank': {
      // f(0)‖v‖² + Σ_j (f(s_j) − f(0)) (v·u_j)².
      const { m, proj } = lowRankProjection(p, v);
      const f0 = f(0);
      const host = toHost(v);
      const out = new Float64Array(r);
      for (let i = 0; i < r; i++) {
        let s = 0;
        for (let k = 0; k < p.size; k++) s += host[i * p.size + k]! ** 2;
        s *= f0;
        for (let j = 0; j < m; j++) s += (f(p.eigenvalues[j]!) - f0) * proj[i * m + j]! ** 2;
        out[i] = s;
      }
      return tf.tensor1d(Float32Array.from(out));
    }
  }
}

/** V Uᵀ for the low-rank basis rows U [m', d]: [R, m'] float64. */
function lowRankProjection(p: LowRankPart, v: tf.Tensor2D): { m: number; proj: Float64Array } {
  const m = p.eigenvalues.length;
  const bt = new Float64Array(p.size * m);
  for (let j = 0; j < m; j++) for (let k = 0; k < p.size; k++) bt[k * m + j] = p.basis[j * p.size + k]!;
  return { m, proj: gemm(toHost(v), v.shape[0], p.size, bt, m) };
}
