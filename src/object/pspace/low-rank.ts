/**
 * PMatLowRank: M = JᵀJ with J ∈ R^{m×d} the stacked per-example Jacobian rows of the
 * square-root outputs divided by √n (m = O·n rows, ordered output-major within each batch).
 * Never forms d×d: products go through J, the spectrum and solves through the m×m Gram JJᵀ.
 * The algebra of the Jacobian-rows statistic (statistics/jacobian-rows.ts).
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError } from '../../errors.js';
import { checkAlive } from '../disposal.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { cholesky, choleskySolve, eighSym } from '../../linalg/index.js';
import { PVector } from '../pvector.js';
import { checkFloatTensor, checkLayerCollection, describe } from '../arguments.js';
import { preciseSumOf } from '../reductions.js';
import { accumulate } from '../../statistics/statistic.js';
import { scaledJacobianRows } from '../../statistics/jacobian-rows.js';
import { overflowError } from '../../statistics/finiteness.js';
import { vectorFromHost, vectorToHost } from './host-vectors.js';
import { type FisherSpec, type NormOrder, type PMat, type SolveOptions, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import type { RepresentationState } from './state.js';
import { PFMapDense } from '../map/dense.js';
import { type MapTMmapOptions, checkPFMap, checkReduction, mapRows, pfmapFromColumns, reduce, rowsTransposedToHost } from '../map/pmat-algebra.js';

export class PMatLowRank implements PMat {
  /** The name in saved files and messages: 'PMatLowRank'. */
  static readonly representationName = 'PMatLowRank';
  readonly layerCollection: LayerCollection;
  private j: tf.Tensor2D | null;
  private gramHost: Float64Array | null = null;
  private gramSpectrum: Float64Array | null = null;
  private factorCache: { regul: number; l: Float64Array } | null = null;

  /** Wraps J/√n of shape [m, d] (taken over). */
  constructor(lc: LayerCollection, scaledJacobian: tf.Tensor2D) {
    checkLayerCollection(lc, 'PMatLowRank');
    checkFloatTensor(scaledJacobian, 'PMatLowRank', 'scaledJacobian');
    if (scaledJacobian.rank !== 2 || scaledJacobian.shape[1] !== lc.numel()) {
      throw new InvalidArgumentError(`PMatLowRank: expected a [m, ${lc.numel()}] tensor, received [${scaledJacobian.shape}]`);
    }
    this.layerCollection = lc;
    this.j = scaledJacobian;
  }

  /** The persisted state: the float32 factor J/√n and its number of rows. */
  toState(): RepresentationState {
    return { meta: { rows: this.rows }, arrays: { factor: new Float32Array(this.factor.dataSync()) } };
  }

  /** Rebuilds a PMatLowRank from `toState()` on `lc` (sizes checked before any tensor is made). */
  static fromState(lc: LayerCollection, state: RepresentationState): PMatLowRank {
    const rows = state.meta.rows;
    const factor = state.arrays.factor;
    if (!(typeof rows === 'number' && Number.isSafeInteger(rows) && rows >= 0)) throw new InvalidArgumentError(`PMatLowRank.fromState: 'rows' must be an integer ≥ 0, found ${JSON.stringify(rows)}`);
    if (!(factor instanceof Float32Array) || factor.length !== rows * lc.numel()) {
      throw new InvalidArgumentError(`PMatLowRank.fromState: array 'factor' must hold ${rows}×${lc.numel()} float32 values, found ${factor ? `${factor.length} ${factor instanceof Float32Array ? 'float32' : 'float64'}` : 'none'}`);
    }
    return new PMatLowRank(lc, tf.tensor2d(factor, [rows, lc.numel()]));
  }

  /** The factor J/√n of F = JᵀJ/n (the stacked per-example gradients, n·O rows) of `spec` (what `FIM({ representation: PMatLowRank })` calls). */
  static async compute(spec: FisherSpec): Promise<PMatLowRank> {
    const lc = spec.layerCollection;
    const { value: j } = await accumulate(spec, scaledJacobianRows(lc));
    // The matrix JᵀJ is finite in float32 iff its diagonal (column sums of squares of J) is:
    // |M_ab| ≤ √(M_aa M_bb). One reduction to a scalar.
    const largest = tf.tidy(() => tf.max(tf.sum(tf.square(j), 0)));
    const value = largest.dataSync()[0]!;
    largest.dispose();
    if (!Number.isFinite(value)) {
      j.dispose();
      throw overflowError('PMatLowRank', 'the diagonal of JᵀJ (largest column sum of squares of the per-example gradients)', value);
    }
    return new PMatLowRank(lc, j);
  }

  /** J/√n, shape [m, d], not copied. */
  get factor(): tf.Tensor2D {
    checkAlive(this.j !== null && !this.j.isDisposed, 'PMatLowRank');
    return this.j;
  }

  /** Number of rows m of the factor (the rank is at most m). */
  get rows(): number {
    return this.factor.shape[0];
  }

  /**
   * The smaller of the two Gram matrices, in float64: JJᵀ (m×m) when m ≤ d ("dual"), else JᵀJ
   * (d×d, "primal"). Both have the same nonzero eigenvalues; solves use whichever is smaller.
   */
  private gram(): { values: Float64Array; size: number; dual: boolean } {
    if (!this.gramHost) {
      const g = tf.tidy(() => {
        const j = this.factor;
        return this.isDual() ? tf.matMul(j, tf.transpose(j)) : tf.matMul(tf.transpose(j), j);
      });
      this.gramHost = new Float64Array(g.dataSync());
      g.dispose();
    }
    return { values: this.gramHost, size: this.isDual() ? this.rows : this.layerCollection.numel(), dual: this.isDual() };
  }

  private isDual(): boolean {
    return this.rows <= this.layerCollection.numel();
  }

  /** Eigenvalues of the smaller Gram matrix, ascending. */
  private spectrum(): Float64Array {
    const g = this.gram();
    this.gramSpectrum ??= eighSym(g.values, g.size).values;
    return this.gramSpectrum;
  }

  /** tr(JᵀJ) = ‖J‖²_F. */
  trace(): number {
    return preciseSumOf(() => tf.square(this.factor));
  }

  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatLowRank.norm');
    const s = this.spectrum();
    if (ord === 'fro') return Math.sqrt(s.reduce((a, l) => a + l * l, 0));
    if (ord === 2) return s.length ? Math.max(0, s[s.length - 1]!) : 0;
    // With the dual Gram (m ≤ d), JᵀJ has d − m ≥ 0 further zero eigenvalues.
    if (this.isDual() && this.rows < this.layerCollection.numel()) return 0;
    return s.length ? Math.max(0, s[0]!) : 0;
  }

  /** Jᵀ(J v). */
  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'PMatLowRank.mv');
    const j = this.factor;
    const out = tf.tidy(() => {
      const jv = tf.matMul(j, v.data.reshape([-1, 1]));
      return tf.matMul(tf.transpose(jv), j).reshape([-1]) as tf.Tensor1D;
    });
    return PVector.adopt(this.layerCollection, out);
  }

  /** ‖J v‖². */
  vTMv(v: PVector): number {
    checkVector(v, this.layerCollection, 'PMatLowRank.vTMv');
    return preciseSumOf(() => tf.square(tf.matMul(this.factor, v.data.reshape([-1, 1]))));
  }

  getDiag(): tf.Tensor1D {
    return tf.tidy(() => tf.sum(tf.square(this.factor), 0) as tf.Tensor1D);
  }

  toTensor(): tf.Tensor2D {
    return tf.tidy(() => tf.matMul(tf.transpose(this.factor), this.factor));
  }

  /**
   * (JᵀJ + λI)⁻¹ v. When m ≤ d, by the Woodbury identity (JᵀJ + λI)⁻¹ v = (v − Jᵀ(JJᵀ + λI)⁻¹ J v)/λ
   * with the m×m system; otherwise directly with the d×d system. Both through a float64 Cholesky
   * factorisation cached per λ. Needs λ > 0 in the first case: JᵀJ is singular when m < d.
   */
  solve(v: PVector, options?: SolveOptions): PVector;
  solve(v: PFMapDense, options?: SolveOptions): PFMapDense;
  solve(v: PVector | PFMapDense, options?: SolveOptions): PVector | PFMapDense {
    if (v instanceof PFMapDense) return this.solveMap(v, options);
    const regul = checkRegul(options, 'PMatLowRank.solve');
    checkVector(v, this.layerCollection, 'PMatLowRank.solve');
    const g = this.gram();
    if (g.dual && !(regul > 0)) {
      throw new InvalidArgumentError(`PMatLowRank.solve needs regul > 0 (JᵀJ has rank ≤ ${this.rows} < d = ${this.layerCollection.numel()}); received ${regul}`);
    }
    const l = this.choleskyOf(regul);
    if (!g.dual) return vectorFromHost(this.layerCollection, choleskySolve(l, g.size, vectorToHost(v), 1));
    const jvT = tf.tidy(() => tf.matMul(this.factor, v.data.reshape([-1, 1])));
    const jv = new Float64Array(jvT.dataSync());
    jvT.dispose();
    const y = choleskySolve(l, g.size, jv, 1);
    const out = tf.tidy(() => {
      const jty = tf.matMul(tf.tensor2d(new Float32Array(y), [1, g.size]), this.factor).reshape([-1]);
      return tf.div(tf.sub(v.data, jty), regul) as tf.Tensor1D;
    });
    return PVector.adopt(this.layerCollection, out);
  }

  private choleskyOf(regul: number): Float64Array {
    if (this.factorCache?.regul !== regul) {
      const g = this.gram();
      const a = new Float64Array(g.values);
      for (let i = 0; i < g.size; i++) a[i * g.size + i]! += regul;
      this.factorCache = { regul, l: cholesky(a, g.size) };
    }
    return this.factorCache.l;
  }

  /** [J₁; J₂]ᵀ[J₁; J₂] = M₁ + M₂, still low rank. */
  add(other: PMatLowRank): PMatLowRank {
    if (!(other instanceof PMatLowRank)) throw new InvalidArgumentError(`PMatLowRank.add: 'other' must be a PMatLowRank, received ${describe(other)}`);
    this.layerCollection.assertSame(other.layerCollection, 'the matrix given to PMatLowRank.add');
    return new PMatLowRank(this.layerCollection, tf.concat([this.factor, other.factor], 0));
  }

  /** x·M for x ≥ 0 (stored as √x·J). */
  scale(x: number): PMatLowRank {
    checkScalar(x, 'PMatLowRank.scale');
    if (x < 0) throw new InvalidArgumentError(`PMatLowRank.scale: 'x' must be ≥ 0 to stay of the form JᵀJ, received ${x}; convert with toTensor() first`);
    return new PMatLowRank(this.layerCollection, tf.mul(this.factor, Math.sqrt(x)));
  }

  dispose(): void {
    this.j?.dispose();
    this.j = null;
    this.gramHost = null;
    this.gramSpectrum = null;
    this.factorCache = null;
  }

  /** Rows (AᵀA J_rᵀ)ᵀ = (J_r Aᵀ) A of a PFMapDense J, with A = J_M/√n the stored factor [m, d]. */
  mmap(pfmap: PFMapDense): PFMapDense {
    checkPFMap(pfmap, this.layerCollection, 'PMatLowRank.mmap');
    const a = this.factor;
    return mapRows(pfmap, (rows) => tf.matMul(tf.matMul(rows, a, false, true), a));
  }

  /** J_r AᵀA J_rᵀ = ‖A J_rᵀ‖² for every row of J: [O, n] ('diag') or Σ_o, [n] ('sum', default). */
  mapTMmap(pfmap: PFMapDense, options: MapTMmapOptions<'diag'>): tf.Tensor2D;
  mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions<'sum'>): tf.Tensor1D;
  mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions): tf.Tensor {
    const reduction = checkReduction(options, 'PMatLowRank.mapTMmap');
    checkPFMap(pfmap, this.layerCollection, 'PMatLowRank.mapTMmap');
    const [o, n, d] = pfmap.data.shape;
    return tf.tidy(() => reduce(tf.sum(tf.square(tf.matMul(pfmap.data.reshape([o * n, d]), this.factor, false, true)), 1), o, n, reduction));
  }

  /**
   * Every row of J through the same factorisation as `solve(v)`: the primal d×d system for all
   * rows at once, or (m ≤ d) Woodbury, X = (Y − ((AAᵀ + λI)⁻¹ A Yᵀ)ᵀ A)/λ for the rows Y of J.
   */
  private solveMap(pfmap: PFMapDense, options?: SolveOptions): PFMapDense {
    const regul = checkRegul(options, 'PMatLowRank.solve');
    checkPFMap(pfmap, this.layerCollection, 'PMatLowRank.solve');
    const g = this.gram();
    if (g.dual && !(regul > 0)) {
      throw new InvalidArgumentError(`PMatLowRank.solve needs regul > 0 (JᵀJ has rank ≤ ${this.rows} < d = ${this.layerCollection.numel()}); received ${regul}`);
    }
    const l = this.choleskyOf(regul);
    if (!g.dual) {
      const { rhs, count } = rowsTransposedToHost(pfmap);
      return pfmapFromColumns(pfmap, choleskySolve(l, g.size, rhs, count));
    }
    const [o, n, d] = pfmap.data.shape;
    const ayT = tf.tidy(() => tf.matMul(this.factor, pfmap.data.reshape([o * n, d]), false, true));
    const z = choleskySolve(l, g.size, new Float64Array(ayT.dataSync()), o * n);
    ayT.dispose();
    return mapRows(pfmap, (rows) => tf.div(tf.sub(rows, tf.matMul(tf.tensor2d(new Float32Array(z), [g.size, o * n]), this.factor, true, false)), regul));
  }
}
