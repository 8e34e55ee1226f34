/**
 * PMatBlockDiag: one dense block per layer (cross-layer terms dropped),
 * B_l = (1/n) Σ_i Σ_o ∇θ_l f̃_o(x_i) ∇θ_l f̃_o(x_i)ᵀ, the algebra of the per-layer Jacobian Gram
 * statistic (statistics/jacobian-gram.ts). Memory Σ_l d_l².
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';
import { checkFiniteValues, checkLayerCollection, describe } from '../arguments.js';
import { assertFiniteStatistic } from '../../statistics/finiteness.js';
import { accumulate } from '../../statistics/statistic.js';
import { layerJacobianGrams } from '../../statistics/jacobian-gram.js';
import { type FisherSpec, type NormOrder, type PMat, type SolveOptions, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import { type RepresentationState, stateArray } from './state.js';
import { SymmetricBlock } from './symmetric-block.js';
import { vectorFromHost, vectorToHost } from './host-vectors.js';
import { PFMapDense } from '../map/dense.js';
import { type MapTMmapOptions, checkPFMap, checkReduction, mapRows, pfmapFromColumns, quadraticRows, rowsTransposedToHost } from '../map/pmat-algebra.js';

export class PMatBlockDiag implements PMat {
  /** The name in saved files and messages: 'PMatBlockDiag'. */
  static readonly representationName = 'PMatBlockDiag';
  readonly layerCollection: LayerCollection;
  private readonly blocks: SymmetricBlock[];

  private constructor(lc: LayerCollection, blocks: SymmetricBlock[]) {
    this.layerCollection = lc;
    this.blocks = blocks;
  }

  /** Wraps float64 row-major blocks, one per layer of `lc` in order (taken over). */
  static fromBlocks(lc: LayerCollection, blocks: Float64Array[]): PMatBlockDiag {
    checkLayerCollection(lc, 'PMatBlockDiag.fromBlocks');
    if (!Array.isArray(blocks)) throw new InvalidArgumentError(`PMatBlockDiag.fromBlocks: 'blocks' must be an array of Float64Arrays, received ${describe(blocks)}`);
    if (blocks.length !== lc.layers.length) throw new InvalidArgumentError(`PMatBlockDiag: expected ${lc.layers.length} blocks, received ${blocks.length}`);
    // Every block is checked before any is wrapped: a bad block after a good one leaks nothing.
    lc.layers.forEach((e, i) => {
      if (!(blocks[i] instanceof Float64Array) || blocks[i]!.length !== e.numel * e.numel) {
        throw new InvalidArgumentError(`PMatBlockDiag: block of layer '${e.id}' must be a Float64Array of ${e.numel}² values, received ${describe(blocks[i])}${blocks[i] instanceof Float64Array ? ` of ${blocks[i]!.length}` : ''}`);
      }
      checkFiniteValues(blocks[i]!, 'PMatBlockDiag.fromBlocks', `block of layer '${e.id}'`);
    });
    return new PMatBlockDiag(
      lc,
      lc.layers.map((e, i) => new SymmetricBlock(blocks[i]!, e.numel)),
    );
  }

  /** The persisted state: block i of layer i as 'block<i>' (float64, not copied). */
  toState(): RepresentationState {
    return { meta: {}, arrays: Object.fromEntries(this.layerCollection.layers.map((e, i) => [`block${i}`, this.block(e.id)])) };
  }

  /** Rebuilds a PMatBlockDiag from `toState()` on `lc`. */
  static fromState(lc: LayerCollection, state: RepresentationState): PMatBlockDiag {
    return PMatBlockDiag.fromBlocks(lc, lc.layers.map((e, i) => stateArray(state, `block${i}`, 'PMatBlockDiag.fromState', e.numel * e.numel)));
  }

  /** The matrix with one dense block F_ll per layer, F_ll = (1/n) Σ_i J_i,lᵀ H_i J_i,l, of `spec` (what `FIM({ representation: PMatBlockDiag })` calls). */
  static async compute(spec: FisherSpec): Promise<PMatBlockDiag> {
    const lc = spec.layerCollection;
    const { value: blocks } = await accumulate(spec, layerJacobianGrams(lc));
    lc.layers.forEach((e, i) => assertFiniteStatistic(blocks[i]!, 'PMatBlockDiag', `the block of layer '${e.id}'`));
    return PMatBlockDiag.fromBlocks(lc, blocks);
  }

  /** The float64 block of one layer, not copied. */
  block(id: string): Float64Array {
    return this.blocks[this.layerCollection.layers.indexOf(this.layerCollection.get(id))]!.values;
  }

  trace(): number {
    return this.blocks.reduce((a, b) => a + b.trace(), 0);
  }

  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatBlockDiag.norm');
    if (ord === 'fro') return Math.sqrt(this.blocks.reduce((a, b) => a + b.frobeniusSquared(), 0));
    const s = this.blocks.map((b) => b.extremeSingularValues());
    return ord === 2 ? s.reduce((a, x) => Math.max(a, x.max), 0) : s.reduce((a, x) => Math.min(a, x.min), Infinity);
  }

  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'PMatBlockDiag.mv');
    const data = v.data;
    const out = tf.tidy(() =>
      tf.concat(this.layerCollection.layers.map((e, i) => this.blocks[i]!.mv(tf.slice(data, [e.offset], [e.numel])))),
    );
    return PVector.adopt(this.layerCollection, out as tf.Tensor1D);
  }

  vTMv(v: PVector): number {
    checkVector(v, this.layerCollection, 'PMatBlockDiag.vTMv');
    const mv = this.mv(v);
    try {
      return mv.dot(v);
    } finally {
      mv.dispose();
    }
  }

  getDiag(): tf.Tensor1D {
    const d = new Float32Array(this.layerCollection.numel());
    this.layerCollection.layers.forEach((e, i) => d.set(this.blocks[i]!.diagonal(), e.offset));
    return tf.tensor1d(d);
  }

  toTensor(): tf.Tensor2D {
    const d = this.layerCollection.numel();
    const out = new Float32Array(d * d);
    this.layerCollection.layers.forEach((e, i) => {
      const b = this.blocks[i]!.values;
      for (let r = 0; r < e.numel; r++) {
        for (let c = 0; c < e.numel; c++) out[(e.offset + r) * d + e.offset + c] = b[r * e.numel + c]!;
      }
    });
    return tf.tensor2d(out, [d, d]);
  }

  /** (M + regul·I)⁻¹ v, block by block through float64 Cholesky factorisations; for a PFMapDense J, the rows ((M + regul·I)⁻¹ J_rᵀ)ᵀ. */
  solve(v: PVector, options?: SolveOptions): PVector;
  solve(v: PFMapDense, options?: SolveOptions): PFMapDense;
  solve(v: PVector | PFMapDense, options?: SolveOptions): PVector | PFMapDense {
    if (v instanceof PFMapDense) return this.solveMap(v, options);
    const regul = checkRegul(options, 'PMatBlockDiag.solve');
    checkVector(v, this.layerCollection, 'PMatBlockDiag.solve');
    const x = vectorToHost(v);
    this.layerCollection.layers.forEach((e, i) => {
      x.set(this.blocks[i]!.solve(x.subarray(e.offset, e.offset + e.numel), 1, regul), e.offset);
    });
    return vectorFromHost(this.layerCollection, x);
  }

  /** (M + regul·I)⁻¹, block by block, as a new matrix (Cholesky in float64). */
  inv(options?: SolveOptions): PMatBlockDiag {
    const regul = checkRegul(options, 'PMatBlockDiag.inv');
    return new PMatBlockDiag(this.layerCollection, this.blocks.map((b) => b.inverse(regul)));
  }

  /** M + M′ block by block, as a new matrix. */
  add(other: PMatBlockDiag): PMatBlockDiag {
    const o = this.other(other, 'add');
    return new PMatBlockDiag(this.layerCollection, this.blocks.map((b, i) => b.combine(1, o[i]!, 1)));
  }

  /** M − M′ block by block, as a new matrix. */
  sub(other: PMatBlockDiag): PMatBlockDiag {
    const o = this.other(other, 'sub');
    return new PMatBlockDiag(this.layerCollection, this.blocks.map((b, i) => b.combine(1, o[i]!, -1)));
  }

  /** x·M as a new matrix. */
  scale(x: number): PMatBlockDiag {
    checkScalar(x, 'PMatBlockDiag.scale');
    return new PMatBlockDiag(this.layerCollection, this.blocks.map((b) => b.combine(x, null, 0)));
  }

  /** Block-wise product. */
  mm(other: PMatBlockDiag): PMatBlockDiag {
    const o = this.other(other, 'mm');
    return new PMatBlockDiag(this.layerCollection, this.blocks.map((b, i) => b.matmul(o[i]!)));
  }

  dispose(): void {
    this.blocks.forEach((b) => b.dispose('PMatBlockDiag'));
  }

  private other(o: PMatBlockDiag, op: string): SymmetricBlock[] {
    if (!(o instanceof PMatBlockDiag)) throw new InvalidArgumentError(`PMatBlockDiag.${op}: 'other' must be a PMatBlockDiag, received ${describe(o)}`);
    this.layerCollection.assertSame(o.layerCollection, `the matrix given to PMatBlockDiag.${op}`);
    return o.blocks;
  }

  /** Rows (M J_rᵀ)ᵀ of a PFMapDense J [O, n, d]: each layer's columns times its block. */
  mmap(pfmap: PFMapDense): PFMapDense {
    checkPFMap(pfmap, this.layerCollection, 'PMatBlockDiag.mmap');
    return mapRows(pfmap, (rows) => this.rowsTimesM(rows));
  }

  /** J_r M J_rᵀ = Σ_l J_r,l B_l J_r,lᵀ for every row: [O, n] ('diag') or Σ_o, [n] ('sum', default). */
  mapTMmap(pfmap: PFMapDense, options: MapTMmapOptions<'diag'>): tf.Tensor2D;
  mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions<'sum'>): tf.Tensor1D;
  mapTMmap(pfmap: PFMapDense, options?: MapTMmapOptions): tf.Tensor {
    const reduction = checkReduction(options, 'PMatBlockDiag.mapTMmap');
    checkPFMap(pfmap, this.layerCollection, 'PMatBlockDiag.mapTMmap');
    return quadraticRows(pfmap, (rows) => this.rowsTimesM(rows), reduction);
  }

  private rowsTimesM(rows: tf.Tensor2D): tf.Tensor2D {
    const r = rows.shape[0];
    return tf.concat(
      this.layerCollection.layers.map((e, i) => {
        const b = this.blocks[i]!;
        return tf.matMul(tf.slice(rows, [0, e.offset], [r, e.numel]), b.tensor(), false, !b.symmetric);
      }),
      1,
    ) as tf.Tensor2D;
  }

  /** Per layer, one float64 Cholesky factorisation and O·n right-hand sides. */
  private solveMap(pfmap: PFMapDense, options?: SolveOptions): PFMapDense {
    const regul = checkRegul(options, 'PMatBlockDiag.solve');
    checkPFMap(pfmap, this.layerCollection, 'PMatBlockDiag.solve');
    const { rhs, count } = rowsTransposedToHost(pfmap);
    this.layerCollection.layers.forEach((e, i) => {
      const part = rhs.subarray(e.offset * count, (e.offset + e.numel) * count);
      part.set(this.blocks[i]!.solve(part, count, regul));
    });
    return pfmapFromColumns(pfmap, rhs);
  }
}
