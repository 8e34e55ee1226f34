/**
 * PMatDense: the full d×d matrix, M = (1/n) Σ_i Σ_o ∇θf̃_o(x_i) ∇θf̃_o(x_i)ᵀ, the algebra of the
 * Jacobian Gram statistic (statistics/jacobian-gram.ts). Memory d² floats:
 * for small models and for checking the other representations.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, ShapeMismatchError } from '../../errors.js';
import { checkFiniteValues, checkFloatTensor, checkLayerCollection, describe } from '../arguments.js';
import { assertFiniteStatistic } from '../../statistics/finiteness.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';
import { accumulate } from '../../statistics/statistic.js';
import { jacobianGram } from '../../statistics/jacobian-gram.js';
import { type FisherSpec, type NormOrder, type PMat, type SolveOptions, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import { type RepresentationState, stateArray } from './state.js';
import { SymmetricBlock } from './symmetric-block.js';
import { vectorFromHost, vectorToHost } from './host-vectors.js';
import { PFMapDense } from '../map/dense.js';
import { type MapTMmapOptions, checkPFMap, checkReduction, mapRows, pfmapFromColumns, quadraticRows, rowsTransposedToHost } from '../map/pmat-algebra.js';

export class PMatDense implements PMat {
  /** The name in saved files and messages: 'PMatDense'. */
  static readonly representationName = 'PMatDense';
  readonly layerCollection: LayerCollection;
  private readonly block: SymmetricBlock;

  /** Wraps a float64 row-major d×d matrix (taken over, not copied). */
  constructor(lc: LayerCollection, values: Float64Array | SymmetricBlock) {
    checkLayerCollection(lc, 'PMatDense');
    if (!(values instanceof Float64Array || values instanceof SymmetricBlock)) {
      throw new InvalidArgumentError(`PMatDense: 'values' must be a Float64Array of d² entries (row-major), received ${describe(values)}`);
    }
    const d = lc.numel();
    const size = values instanceof SymmetricBlock ? values.n * values.n : values.length;
    if (size !== d * d) throw new InvalidArgumentError(`PMatDense: expected ${d * d} values (d = ${d}), received ${size}`);
    if (values instanceof Float64Array) checkFiniteValues(values, 'PMatDense', 'values');
    this.layerCollection = lc;
    this.block = values instanceof SymmetricBlock ? values : new SymmetricBlock(values, d);
  }

  /** The persisted state: the d×d values (float64, not copied). */
  toState(): RepresentationState {
    return { meta: {}, arrays: { values: this.values() } };
  }

  /** Rebuilds a PMatDense from `toState()` on `lc`, refusing a state of the wrong size. */
  static fromState(lc: LayerCollection, state: RepresentationState): PMatDense {
    return new PMatDense(lc, stateArray(state, 'values', 'PMatDense.fromState', lc.numel() ** 2));
  }

  /** The full d×d matrix F = (1/n) Σ_i J_iᵀ H_i J_i of `spec` (what `FIM({ representation: PMatDense })` calls). */
  static async compute(spec: FisherSpec): Promise<PMatDense> {
    const lc = spec.layerCollection;
    const { value: values } = await accumulate(spec, jacobianGram(lc));
    assertFiniteStatistic(values, 'PMatDense', 'the matrix');
    return new PMatDense(lc, values);
  }

  /** A dense matrix from a [d, d] tensor (copied). */
  static fromTensor(lc: LayerCollection, t: tf.Tensor2D): PMatDense {
    checkLayerCollection(lc, 'PMatDense.fromTensor');
    checkFloatTensor(t, 'PMatDense.fromTensor');
    const d = lc.numel();
    if (t.rank !== 2 || t.shape[0] !== d || t.shape[1] !== d) {
      throw new ShapeMismatchError(`PMatDense.fromTensor: 't' must have shape [${d}, ${d}] (d = the collection's numel), received [${t.shape}]`);
    }
    return new PMatDense(lc, new Float64Array(t.dataSync()));
  }

  trace(): number {
    return this.block.trace();
  }

  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatDense.norm');
    if (ord === 'fro') return Math.sqrt(this.block.frobeniusSquared());
    const s = this.block.extremeSingularValues();
    return ord === 2 ? s.max : s.min;
  }

  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'PMatDense.mv');
    return PVector.adopt(this.layerCollection, this.block.mv(v.data));
  }

  vTMv(v: PVector): number {
    checkVector(v, this.layerCollection, 'PMatDense.vTMv');
    const mv = this.mv(v);
    try {
      return mv.dot(v);
    } finally {
      mv.dispose();
    }
  }

  getDiag(): tf.Tensor1D {
    return tf.tensor1d(new Float32Array(this.block.diagonal()));
  }

  toTensor(): tf.Tensor2D {
    return this.block.tensor().clone();
  }

  /** The exact float64 entries (row-major), not copied. */
  values(): Float64Array {
    return this.block.values;
  }

  /** (M + regul·I)⁻¹ v through a float64 Cholesky factorisation (cached per regul); for a PFMapDense J, the rows ((M + regul·I)⁻¹ J_rᵀ)ᵀ. */
  solve(v: PVector, options?: SolveOptions): PVector;
  solve(v: PFMapDense, options?: SolveOptions): PFMapDense;
  solve(v: PVector | PFMapDense, options?: SolveOptions): PVector | PFMapDense {
    if (v instanceof PFMapDense) return this.solveMap(v, options);
    const regul = checkRegul(options, 'PMatDense.solve');
    checkVector(v, this.layerCollection, 'PMatDense.solve');
    return vectorFromHost(this.layerCollection, this.block.solve(vectorToHost(v), 1, regul));
  }

  /** (M + regul·I)⁻¹ as a PMatDense. */
  inv(options?: SolveOptions): PMatDense {
    const regul = checkRegul(options, 'PMatDense.inv');
    return PMatDense.fromBlock(this.layerCollection, this.block.inverse(regul));
  }

  /** M + M′ as a new matrix. */
  add(other: PMatDense): PMatDense {
    return PMatDense.fromBlock(this.layerCollection, this.block.combine(1, this.other(other, 'add'), 1));
  }

  /** M − M′ as a new matrix. */
  sub(other: PMatDense): PMatDense {
    return PMatDense.fromBlock(this.layerCollection, this.block.combine(1, this.other(other, 'sub'), -1));
  }

  /** x·M as a new matrix. */
  scale(x: number): PMatDense {
    return PMatDense.fromBlock(this.layerCollection, this.block.combine(checkScalar(x, 'PMatDense.scale'), null, 0));
  }

  /** The matrix product M·other (not symmetric in general). */
  mm(other: PMatDense): PMatDense {
    return PMatDense.fromBlock(this.layerCollection, this.block.matmul(this.other(other, 'mm')));
  }

  dispose(): void {
    this.block.dispose('PMatDense');
  }

  private other(o: PMatDense, op: string): SymmetricBlock {
    if (!(o instanceof PMatDense)) throw new InvalidArgumentError(`PMatDense.${op}: 'other' must be a PMatDense, received ${describe(o)}`);
    this.layerCollection.assertSame(o.layerCollection, `the matrix given to PMatDense.${op}`);
    return o.block;
  }

  private static fromBlock(lc: LayerCollection, b: SymmetricBlock): PMatDense {
    return new PMatDense(lc, b);
  }

  /** Rows (M J_rᵀ)ᵀ = J_r Mᵀ of a PFMapDense J [O, n, d]: one [O·n, d]×[d, d] product. */
  mmap(pfmap: PFMapDense): PFMapDense {
    checkPFMap(pfmap, this.layerCollection, 'PMatDense.mmap');
    return mapRows(pfmap, (rows) => this.rowsTimesM(rows));
  }

  /** J_r M J_rᵀ for every row r = (o, i) of J: [O, n] ('diag') or Σ_o, [n] ('sum', default). */
  mapTMmap(pfmap: PFMapDense, options: MapTMmapOptions<'diag'>): tf.Tensor2D;
  mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions<'sum'>): tf.Tensor1D;
  mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions): tf.Tensor {
    const reduction = checkReduction(options, 'PMatDense.mapTMmap');
    checkPFMap(pfmap, this.layerCollection, 'PMatDense.mapTMmap');
    return quadraticRows(pfmap, (rows) => this.rowsTimesM(rows), reduction);
  }

  private rowsTimesM(rows: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(rows, this.block.tensor(), false, !this.block.symmetric);
  }

  /** All rows of J solved at once: one float64 Cholesky factorisation, O·n right-hand sides. */
  private solveMap(pfmap: PFMapDense, options?: SolveOptions): PFMapDense {
    const regul = checkRegul(options, 'PMatDense.solve');
    checkPFMap(pfmap, this.layerCollection, 'PMatDense.solve');
    const { rhs, count } = rowsTransposedToHost(pfmap);
    return pfmapFromColumns(pfmap, this.block.solve(rhs, count, regul));
  }
}
