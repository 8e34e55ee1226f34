/**
 * PMatDiag: diag(M) only, M_kk = (1/n) Σ_i Σ_o (∂f̃_o(x_i)/∂θ_k)², the algebra of the
 * squared-gradients statistic (statistics/squared-gradients.ts).
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, NotPositiveDefiniteError } from '../../errors.js';
import { checkAlive } from '../disposal.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';
import { checkFiniteValues, checkLayerCollection, describe } from '../arguments.js';
import { assertFiniteStatistic } from '../../statistics/finiteness.js';
import { accumulate } from '../../statistics/statistic.js';
import { squaredGradients } from '../../statistics/squared-gradients.js';
import { type FisherSpec, type NormOrder, type PMat, type SolveOptions, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import { type RepresentationState, stateArray } from './state.js';
import { vectorFromHost, vectorToHost } from './host-vectors.js';
import { PFMapDense } from '../map/dense.js';
import { type MapTMmapOptions, checkPFMap, checkReduction, mapRows, quadraticRows } from '../map/pmat-algebra.js';

export class PMatDiag implements PMat {
  /** The name in saved files and messages: 'PMatDiag'. */
  static readonly representationName = 'PMatDiag';
  readonly layerCollection: LayerCollection;
  /**
   * The diagonal, float64 on the host only: operations that need it on the device upload a
   * float32 copy for their duration (at d ≈ 10⁸ a resident copy would be 0.4 GB beside the
   * 0.8 GB float64 array, for nothing when only host algebra follows).
   */
  private diag: Float64Array | null;

  /** Wraps the float64 diagonal (taken over). */
  constructor(lc: LayerCollection, diag: Float64Array) {
    checkLayerCollection(lc, 'PMatDiag');
    if (!(diag instanceof Float64Array)) throw new InvalidArgumentError(`PMatDiag: 'diag' must be a Float64Array of d entries, received ${describe(diag)}`);
    checkFiniteValues(diag, 'PMatDiag', 'diag');
    if (diag.length !== lc.numel()) throw new InvalidArgumentError(`PMatDiag: expected ${lc.numel()} values, received ${diag.length}`);
    this.layerCollection = lc;
    this.diag = diag;
  }

  /** The persisted state: the diagonal (float64, not copied). */
  toState(): RepresentationState {
    return { meta: {}, arrays: { diag: this.values() } };
  }

  /** Rebuilds a PMatDiag from `toState()` on `lc`. */
  static fromState(lc: LayerCollection, state: RepresentationState): PMatDiag {
    return new PMatDiag(lc, stateArray(state, 'diag', 'PMatDiag.fromState', lc.numel()));
  }

  /** The exact diagonal F_jj = (1/n) Σ_i Σ_o (∂f̃_o(x_i)/∂θ_j)² of `spec` (what `FIM({ representation: PMatDiag })` calls). */
  static async compute(spec: FisherSpec): Promise<PMatDiag> {
    const lc = spec.layerCollection;
    const { value: diag } = await accumulate(spec, squaredGradients(lc));
    assertFiniteStatistic(diag, 'PMatDiag', 'the diagonal');
    return new PMatDiag(lc, diag);
  }

  /** The diagonal as float64, not copied. */
  values(): Float64Array {
    checkAlive(this.diag !== null, 'PMatDiag');
    return this.diag;
  }

  /** Runs `f` on a float32 device copy of the diagonal, released when `f` returns. */
  private withTensor<T>(f: (diag: tf.Tensor1D) => T): T {
    const device = tf.tensor1d(new Float32Array(this.values()));
    try {
      return f(device);
    } finally {
      device.dispose();
    }
  }

  trace(): number {
    return this.values().reduce((a, b) => a + b, 0);
  }

  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatDiag.norm');
    const d = this.values();
    if (ord === 'fro') return Math.sqrt(d.reduce((a, b) => a + b * b, 0));
    return ord === 2 ? d.reduce((a, b) => Math.max(a, Math.abs(b)), 0) : d.reduce((a, b) => Math.min(a, Math.abs(b)), Infinity);
  }

  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'PMatDiag.mv');
    return PVector.adopt(this.layerCollection, this.withTensor((d) => tf.mul(d, v.data)));
  }

  vTMv(v: PVector): number {
    checkVector(v, this.layerCollection, 'PMatDiag.vTMv');
    const x = vectorToHost(v);
    const d = this.values();
    let s = 0;
    for (let k = 0; k < d.length; k++) s += d[k]! * x[k]! * x[k]!;
    return s;
  }

  getDiag(): tf.Tensor1D {
    return tf.tensor1d(new Float32Array(this.values()));
  }

  toTensor(): tf.Tensor2D {
    return this.withTensor((d) => tf.tidy(() => tf.mul(tf.eye(d.size), d.reshape([1, -1])) as tf.Tensor2D));
  }

  /** v / (diag + regul); for a PFMapDense J, every row divided by (diag + regul). */
  solve(v: PVector, options?: SolveOptions): PVector;
  solve(v: PFMapDense, options?: SolveOptions): PFMapDense;
  solve(v: PVector | PFMapDense, options?: SolveOptions): PVector | PFMapDense {
    if (v instanceof PFMapDense) return this.solveMap(v, options);
    const regul = checkRegul(options, 'PMatDiag.solve');
    checkVector(v, this.layerCollection, 'PMatDiag.solve');
    const x = vectorToHost(v);
    const d = this.damped(regul, 'solve');
    for (let k = 0; k < x.length; k++) x[k]! /= d[k]!;
    return vectorFromHost(this.layerCollection, x);
  }

  /** (M + regul·I)⁻¹. */
  inv(options?: SolveOptions): PMatDiag {
    const regul = checkRegul(options, 'PMatDiag.inv');
    return new PMatDiag(this.layerCollection, this.damped(regul, 'inv').map((x) => 1 / x));
  }

  private damped(regul: number, op: string): Float64Array {
    const d = this.values().map((x) => x + regul);
    const k = d.findIndex((x) => !(x > 0));
    if (k >= 0) {
      throw new NotPositiveDefiniteError(`PMatDiag.${op}: diagonal entry ${k} + regul is ${d[k]}; use a regul > 0 to invert a singular matrix`);
    }
    return d;
  }

  /** M + M′ as a new matrix. */
  add(other: PMatDiag): PMatDiag {
    const o = this.other(other, 'add');
    return new PMatDiag(this.layerCollection, this.values().map((x, k) => x + o[k]!));
  }

  /** M − M′ as a new matrix. */
  sub(other: PMatDiag): PMatDiag {
    const o = this.other(other, 'sub');
    return new PMatDiag(this.layerCollection, this.values().map((x, k) => x - o[k]!));
  }

  /** x·M as a new matrix. */
  scale(x: number): PMatDiag {
    checkScalar(x, 'PMatDiag.scale');
    return new PMatDiag(this.layerCollection, this.values().map((v) => v * x));
  }

  /** The product of two diagonal matrices (elementwise). */
  mm(other: PMatDiag): PMatDiag {
    const o = this.other(other, 'mm');
    return new PMatDiag(this.layerCollection, this.values().map((x, k) => x * o[k]!));
  }

  dispose(): void {
    this.diag = null;
  }

  private other(o: PMatDiag, op: string): Float64Array {
    if (!(o instanceof PMatDiag)) throw new InvalidArgumentError(`PMatDiag.${op}: 'other' must be a PMatDiag, received ${describe(o)}`);
    this.layerCollection.assertSame(o.layerCollection, `the matrix given to PMatDiag.${op}`);
    return o.values();
  }

  /** Rows J_r diag(M) of a PFMapDense J [O, n, d]. */
  mmap(pfmap: PFMapDense): PFMapDense {
    checkPFMap(pfmap, this.layerCollection, 'PMatDiag.mmap');
    return this.withTensor((d) => mapRows(pfmap, (rows) => tf.mul(rows, d)));
  }

  /** Σ_k M_kk J_rk² for every row r = (o, i) of J: [O, n] ('diag') or Σ_o, [n] ('sum', default). */
  mapTMmap(pfmap: PFMapDense, options: MapTMmapOptions<'diag'>): tf.Tensor2D;
  mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions<'sum'>): tf.Tensor1D;
  mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions): tf.Tensor {
    const reduction = checkReduction(options, 'PMatDiag.mapTMmap');
    checkPFMap(pfmap, this.layerCollection, 'PMatDiag.mapTMmap');
    return this.withTensor((d) => quadraticRows(pfmap, (rows) => tf.mul(rows, d), reduction));
  }

  private solveMap(pfmap: PFMapDense, options?: SolveOptions): PFMapDense {
    const regul = checkRegul(options, 'PMatDiag.solve');
    checkPFMap(pfmap, this.layerCollection, 'PMatDiag.solve');
    const damped = this.damped(regul, 'solve');
    const inverse = tf.tensor1d(Float32Array.from(damped, (x) => 1 / x));
    try {
      return mapRows(pfmap, (rows) => tf.mul(rows, inverse));
    } finally {
      inverse.dispose();
    }
  }
}
