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
import { squaredGradientsMean } from '../../statistics/squared-gradients.js';
import { float32Values } from '../../backend/tensor-values.js';
import { type FisherSpec, type NormOrder, type PMat, type SolveOptions, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import { type RepresentationState, stateArray } from './state.js';
import { PFMapDense } from '../map/dense.js';
import { type MapTMmapOptions, checkPFMap, checkReduction, mapRows, quadraticRows } from '../map/pmat-algebra.js';

export class PMatDiag implements PMat {
  /** The name in saved files and messages: 'PMatDiag'. */
  static readonly representationName = 'PMatDiag';
  readonly layerCollection: LayerCollection;
  /**
   * The diagonal is held in one place only, either
   *   - float64 on the host (given as such, or derived by host algebra): operations that need
   *     it on the device upload a float32 copy for their duration (at d ≈ 10⁸ a resident copy
   *     would be 0.4 GB beside the 0.8 GB float64 array), or
   *   - float32 on the device, as a pass computes it: host reductions read it in place and sum
   *     in float64, device operations use it as it is, and `values()` returns float64 copies.
   * The pass's float32 mean is exactly the float64 array it would otherwise become, but that
   * array is 0.8 GB of fresh host memory at d ≈ 10⁸, whose first touch costs this kind of
   * machine as much as the pass (docs/performance.md, "fresh memory").
   */
  private host: Float64Array | null = null;
  private device: tf.Tensor1D | null = null;
  /** Set around the construction from a pass's statistic, already checked finite (a second scan of d values is not free at d ≈ 10⁸). */
  private static checkedStatistic = false;

  /**
   * Wraps the diagonal, taken over: float64 values on the host, or a float32 tensor of d
   * values on the device (owned by the matrix from then on: `dispose()` releases it).
   *
   * @example
   * const F = new PMatDiag(lc, new Float64Array(lc.numel()).fill(1));
   */
  constructor(lc: LayerCollection, diag: Float64Array | tf.Tensor1D) {
    checkLayerCollection(lc, 'PMatDiag');
    const trusted = PMatDiag.checkedStatistic;
    if (diag instanceof tf.Tensor) {
      if (diag.isDisposed) throw new InvalidArgumentError(`PMatDiag: 'diag' is a disposed tensor; pass a live float32 tensor [${lc.numel()}]`);
      if (diag.dtype !== 'float32' || diag.rank !== 1) throw new InvalidArgumentError(`PMatDiag: a 'diag' tensor must be float32 of shape [${lc.numel()}], received ${diag.dtype} [${diag.shape.join(', ')}]`);
      if (diag.size !== lc.numel()) throw new InvalidArgumentError(`PMatDiag: expected ${lc.numel()} values, received ${diag.size}`);
      if (!trusted) checkFiniteValues(float32Values(diag), 'PMatDiag', 'diag');
      this.device = diag;
    } else {
      if (!(diag instanceof Float64Array)) throw new InvalidArgumentError(`PMatDiag: 'diag' must be a Float64Array or a float32 tensor of d entries, received ${describe(diag)}`);
      if (!trusted) checkFiniteValues(diag, 'PMatDiag', 'diag');
      if (diag.length !== lc.numel()) throw new InvalidArgumentError(`PMatDiag: expected ${lc.numel()} values, received ${diag.length}`);
      this.host = diag;
    }
    this.layerCollection = lc;
  }

  /** The persisted state: the diagonal (float64, not copied). */
  toState(): RepresentationState {
    return { meta: {}, arrays: { diag: this.values() } };
  }

  /** Rebuilds a PMatDiag from `toState()` on `lc`. */
  static fromState(lc: LayerCollection, state: RepresentationState): PMatDiag {
    return new PMatDiag(lc, stateArray(state, 'diag', 'PMatDiag.fromState', lc.numel()));
  }

  /**
   * The exact diagonal F_jj = (1/n) Σ_i Σ_o (∂f̃_o(x_i)/∂θ_j)² of `spec` (what `FIM({ representation: PMatDiag })` calls);
   * kept on the device as the pass leaves it when the pass has at most 16 batches.
   */
  static async compute(spec: FisherSpec): Promise<PMatDiag> {
    const lc = spec.layerCollection;
    const { value: diag } = await accumulate(spec, squaredGradientsMean(lc));
    try {
      assertFiniteStatistic(diag instanceof tf.Tensor ? float32Values(diag) : diag, 'PMatDiag', 'the diagonal');
      PMatDiag.checkedStatistic = true;
      return new PMatDiag(lc, diag);
    } catch (e) {
      if (diag instanceof tf.Tensor) diag.dispose();
      throw e;
    } finally {
      PMatDiag.checkedStatistic = false;
    }
  }

  /**
   * The diagonal as float64: the array held when it is on the host (not a copy), else a new
   * float64 copy of the device values on every call (8·d bytes; the device tensor stays, so
   * reading the values changes no tensor count).
   */
  values(): Float64Array {
    const device = this.alive();
    return device === null ? this.host! : Float64Array.from(float32Values(device));
  }

  /** The live device tensor, or null when the diagonal is on the host; throws once disposed. */
  private alive(): tf.Tensor1D | null {
    checkAlive(this.host !== null || this.device !== null, 'PMatDiag');
    return this.device;
  }

  /**
   * The diagonal for reading without a copy: the float64 array, or the device values in place
   * (valid until the next tfjs call; see float32Values).
   */
  private read(): Float64Array | Float32Array {
    const device = this.alive();
    return device === null ? this.host! : float32Values(device);
  }

  /** Runs `f` on the diagonal as a float32 device tensor (a copy for `f`'s duration when it is on the host). */
  private withTensor<T>(f: (diag: tf.Tensor1D) => T): T {
    const held = this.alive();
    if (held !== null) return f(held);
    const device = tf.tensor1d(new Float32Array(this.host!));
    try {
      return f(device);
    } finally {
      device.dispose();
    }
  }

  /** tr(M) = Σ_k M_kk, summed in float64. */
  trace(): number {
    const d = this.read();
    let s = 0;
    for (let k = 0; k < d.length; k++) s += d[k]!;
    return s;
  }

  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatDiag.norm');
    const d = this.read();
    if (ord === 'fro') {
      let s = 0;
      for (let k = 0; k < d.length; k++) s += d[k]! * d[k]!;
      return Math.sqrt(s);
    }
    let m = ord === 2 ? 0 : Infinity;
    for (let k = 0; k < d.length; k++) m = ord === 2 ? Math.max(m, Math.abs(d[k]!)) : Math.min(m, Math.abs(d[k]!));
    return m;
  }

  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'PMatDiag.mv');
    return PVector.adopt(this.layerCollection, this.withTensor((d) => tf.mul(d, v.data)));
  }

  /** vᵀMv = Σ_k M_kk v_k², in float64 (v read in place). */
  vTMv(v: PVector): number {
    checkVector(v, this.layerCollection, 'PMatDiag.vTMv');
    const d = this.read();
    const x = float32Values(v.data);
    let s = 0;
    for (let k = 0; k < d.length; k++) s += d[k]! * x[k]! * x[k]!;
    return s;
  }

  getDiag(): tf.Tensor1D {
    const held = this.alive();
    return held !== null ? held.clone() : tf.tensor1d(new Float32Array(this.host!));
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
    const d = this.read();
    this.assertDampedPositive(d, regul, 'solve');
    const x = float32Values(v.data);
    // Divided in float64, rounded once to float32 as stored.
    const out = new Float32Array(d.length);
    for (let k = 0; k < out.length; k++) out[k] = x[k]! / (d[k]! + regul);
    return PVector.adopt(this.layerCollection, tf.tensor1d(out));
  }

  /** (M + regul·I)⁻¹. */
  inv(options?: SolveOptions): PMatDiag {
    const regul = checkRegul(options, 'PMatDiag.inv');
    return new PMatDiag(this.layerCollection, this.damped(regul, 'inv').map((x) => 1 / x));
  }

  /** diag + regul in float64, refused (NotPositiveDefiniteError) where an entry is not > 0. */
  private damped(regul: number, op: string): Float64Array {
    const d = this.read();
    this.assertDampedPositive(d, regul, op);
    return Float64Array.from(d, (x) => x + regul);
  }

  private assertDampedPositive(d: ArrayLike<number>, regul: number, op: string): void {
    for (let k = 0; k < d.length; k++) {
      if (!(d[k]! + regul > 0)) {
        throw new NotPositiveDefiniteError(`PMatDiag.${op}: diagonal entry ${k} + regul is ${d[k]! + regul}; use a regul > 0 to invert a singular matrix`);
      }
    }
  }

  /** M + M′ as a new matrix. */
  add(other: PMatDiag): PMatDiag {
    return this.combine(other, 'add', (x, y) => x + y);
  }

  /** M − M′ as a new matrix. */
  sub(other: PMatDiag): PMatDiag {
    return this.combine(other, 'sub', (x, y) => x - y);
  }

  /** x·M as a new matrix. */
  scale(x: number): PMatDiag {
    checkScalar(x, 'PMatDiag.scale');
    return new PMatDiag(this.layerCollection, Float64Array.from(this.read(), (v) => v * x));
  }

  /** The product of two diagonal matrices (elementwise). */
  mm(other: PMatDiag): PMatDiag {
    return this.combine(other, 'mm', (x, y) => x * y);
  }

  /** Releases the diagonal (the device tensor, when it is held there). */
  dispose(): void {
    this.device?.dispose();
    this.device = null;
    this.host = null;
  }

  /** f(M_kk, M′_kk) for every k, in float64, as a new matrix. */
  private combine(o: PMatDiag, op: string, f: (x: number, y: number) => number): PMatDiag {
    if (!(o instanceof PMatDiag)) throw new InvalidArgumentError(`PMatDiag.${op}: 'other' must be a PMatDiag, received ${describe(o)}`);
    this.layerCollection.assertSame(o.layerCollection, `the matrix given to PMatDiag.${op}`);
    // Both read in place: no tfjs call between the two reads and the loop.
    const a = this.read();
    const b = o.read();
    const out = new Float64Array(a.length);
    for (let k = 0; k < out.length; k++) out[k] = f(a[k]!, b[k]!);
    return new PMatDiag(this.layerCollection, out);
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
    const d = this.read();
    this.assertDampedPositive(d, regul, 'solve');
    const inverse = tf.tensor1d(Float32Array.from(d, (x) => 1 / (x + regul)));
    try {
      return mapRows(pfmap, (rows) => tf.mul(rows, inverse));
    } finally {
      inverse.dispose();
    }
  }
}
