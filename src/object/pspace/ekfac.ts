/**
 * PMatEKFAC (George et al. 2018): per layer, the eigenbases U_A, U_G of the KFAC factors and a
 * diagonal D in that basis, M_l = (U_A ⊗ U_G) diag(vec D) (U_A ⊗ U_G)ᵀ. D starts at λ_A λ_Gᵀ,
 * which is exactly KFAC (`diagonalSource === 'kfac'`); `updateDiag(loader)` replaces it by the
 * exact second moment of the per-example gradients in that basis,
 *   D[a, b] = (1/n) Σᵢ Σ_o (U_Aᵀ ∇W_{i,o} U_G)[a, b]²,
 * the best diagonal in the basis (in Frobenius norm). Every operation is exact in the basis.
 *
 * Blocks are held in parameter order: one per layer, plus, for a layer whose bias is its own
 * exact block B (Conv2DTranspose), a block with U_A = eigenvectors of B, U_G = [1] and D = λ_B,
 * whose updated diagonal is (1/n) Σᵢ Σ_o (U_Bᵀ bᵢₒ)∘².
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, NotPositiveDefiniteError } from '../../errors.js';
import type { KfacType } from '../../layers/layer-kind.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import type { Loader } from '../../data/loader.js';
import { PVector } from '../pvector.js';
import { preciseSumOf } from '../reductions.js';
import { accumulate } from '../../statistics/statistic.js';
import { type EigenbasisBlock, eigenbasisDiagonal } from '../../statistics/eigenbasis-diagonal.js';
import { vectorFromHost, vectorToHost } from './host-vectors.js';
import { type FisherSpec, type NormOrder, type PMat, type Representation, type SolveOptions, checkAlive, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import { type RepresentationState, type RestoreContext, metaChoice, stateArray } from './state.js';
import { checkOptions, describe } from '../arguments.js';
import { EigenBlock } from './kronecker/eigen-block.js';
import { factorEigen } from './kronecker/factor-eigen.js';
import { type KroneckerFactors, factorOf } from '../../statistics/kronecker-factors.js';
import { biasSize } from './kronecker/parts.js';
import { assertFiniteStatistic, computeFiniteFactors } from '../../statistics/finiteness.js';
import { blockDiagonal, checkKfacType, powerOf } from './kronecker/helpers.js';

/** One block of a PMatEKFAC (see `PMatEKFAC.eigenBlocks`). */
export interface EKFACBlock {
  /** The layer's id. */
  readonly id: string;
  /** 'weights': the layer's Kronecker block (kernel, with a bias row where it is one); 'bias': a separate bias block. */
  readonly part: 'weights' | 'bias';
  /** The block's first parameter in the flat parameter vector. */
  readonly offset: number;
  /** Eigenbasis of the row factor (k×k, eigenvectors in columns). */
  readonly uA: Float64Array;
  /** Eigenbasis of the column factor (c×c; [1] for a bias block). */
  readonly uG: Float64Array;
  /** The diagonal D in the basis, [k, c] row-major. */
  readonly diagonal: Float64Array;
  /** Size k of the row factor. */
  readonly k: number;
  /** Size c of the column factor (1 for a bias block). */
  readonly c: number;
}

/** Where the diagonal of an EKFAC matrix comes from. */
export type DiagonalSource = 'kfac' | 'updated' | 'derived';

/** Options of `PMatEKFAC.with`. */
export interface EKFACOptions {
  /** Shared-position convention of the KFAC factors whose eigenbases are used. Default 'expand'. */
  kfacType?: KfacType;
}

/**
 * Eigenbasis blocks of KFAC factors, with D = λ_A λ_Gᵀ (clamped at 0: the factors are PSD), in
 * parameter order; a separate bias block B becomes the block (U_B, [1], λ_B).
 */
export function kfacEigenBlocks(factors: readonly KroneckerFactors[]): EigenBlock[] {
  const blocks: EigenBlock[] = [];
  try {
    for (const f of factors) {
      // A and G are read only if the direct route is taken: a factor held as its rows is never formed here.
      blocks.push(eigenBlockOf(f.k, f.c, () => f.a, () => factorOf(f, 'g'), f.aRows, f.gRows));
      if (f.bias) blocks.push(eigenBlockOf(biasSize(f), 1, f.bias, Float64Array.of(1)));
    }
    return blocks;
  } catch (e) {
    // Mark the blocks of the layers before the failing one disposed (they hold no tensors any more).
    blocks.forEach((b) => b.dispose());
    throw e;
  }
}

function eigenBlockOf(k: number, c: number, a: Float64Array | (() => Float64Array), g: Float64Array | (() => Float64Array), aRows?: Float64Array, gRows?: Float64Array): EigenBlock {
  const ea = factorEigen(a, k, aRows);
  // U_G is used explicitly by the blocks: a thin basis from G's rows is completed here.
  const eg = factorEigen(g, c, gRows);
  const d = new Float64Array(k * c);
  for (let i = 0; i < k; i++) for (let j = 0; j < c; j++) d[i * c + j] = Math.max(ea.values[i]!, 0) * Math.max(eg.values[j]!, 0);
  return new EigenBlock(k, c, ea.basis, eg.vectors, d);
}

/** Which blocks belong to each layer: its Kronecker block and, when separate, its bias block. */
interface LayerBlocks {
  readonly weights: number;
  readonly bias: number | null;
  readonly offset: number;
}

/** Maps blocks in parameter order onto the layers, refusing sizes that do not match. */
function layerBlocks(lc: LayerCollection, blocks: readonly EigenBlock[]): LayerBlocks[] {
  let j = 0;
  const out = lc.layers.map((e) => {
    const size = (b: EigenBlock | undefined) => (b ? b.k * b.c : 0);
    const weights = j++;
    const w = size(blocks[weights]);
    if (w === e.numel) return { weights, bias: null, offset: e.offset };
    const bias = j++;
    if (w === 0 || w + size(blocks[bias]) !== e.numel || blocks[bias]!.c !== 1) {
      throw new InvalidArgumentError(`PMatEKFAC: the eigenblocks of layer '${e.id}' do not match its ${e.numel} parameters`);
    }
    return { weights, bias, offset: e.offset };
  });
  if (j !== blocks.length) throw new InvalidArgumentError(`PMatEKFAC: expected the eigenblocks of ${lc.layers.length} layers, received ${blocks.length} blocks`);
  return out;
}

export class PMatEKFAC implements PMat {
  /** The name in saved files and messages: 'PMatEKFAC'. */
  static readonly representationName = 'PMatEKFAC';
  readonly layerCollection: LayerCollection;
  /** In parameter order (see the class documentation). */
  private readonly hostBlocks: EigenBlock[];
  private readonly byLayer: LayerBlocks[];
  /** The first parameter of each block. */
  private readonly offsets: number[];
  private disposed = false;
  private source: DiagonalSource;
  /** The definition of the matrix (model, variant, ...) without data, for `updateDiag`. */
  private readonly spec: FisherSpec | null;
  private readonly kfacType: KfacType;

  /** @internal Use FIM({ representation: PMatEKFAC }) or PMatKFAC's inv/pow. */
  constructor(lc: LayerCollection, blocks: EigenBlock[], source: DiagonalSource, spec: FisherSpec | null, kfacType: KfacType = 'expand') {
    this.layerCollection = lc;
    this.byLayer = layerBlocks(lc, blocks);
    this.hostBlocks = blocks;
    this.offsets = this.byLayer.flatMap((l) => (l.bias === null ? [l.offset] : [l.offset, l.offset + blocks[l.weights]!.k * blocks[l.weights]!.c]));
    this.source = source;
    this.spec = spec;
    this.kfacType = kfacType;
  }

  /** A representation with options, e.g. `representation: PMatEKFAC.with({ kfacType: 'reduce' })`. */
  static with(options: EKFACOptions): Representation<PMatEKFAC> {
    const kfacType = checkKfacType(checkOptions(options, ['kfacType'], 'PMatEKFAC.with').kfacType, 'PMatEKFAC.with');
    return { representationName: 'PMatEKFAC', compute: (spec) => PMatEKFAC.computeWith(spec, kfacType) };
  }

  /**
   * The persisted state: diagonalSource, kfacType, the matrix's definition (variant and options,
   * as 'definition.*', when it can be written down: updateDiag then works after a load) and, per
   * layer i, 'uA<i>', 'uG<i>', 'd<i>' and for a separate bias block 'uB<i>', 'dB<i>'.
   */
  toState(): RepresentationState {
    const index = new Map(this.layerCollection.layers.map((e, i) => [e.id, i]));
    const arrays: Record<string, Float64Array> = {};
    for (const b of this.eigenBlocks()) {
      const i = index.get(b.id)!;
      if (b.part === 'bias') Object.assign(arrays, { [`uB${i}`]: b.uA, [`dB${i}`]: b.diagonal });
      else Object.assign(arrays, { [`uA${i}`]: b.uA, [`uG${i}`]: b.uG, [`d${i}`]: b.diagonal });
    }
    const definition = this.spec?.outputs.definition ?? {};
    return { meta: { diagonalSource: this.source, kfacType: this.kfacType, ...Object.fromEntries(Object.entries(definition).map(([k, v]) => [`definition.${k}`, v])) }, arrays };
  }

  /**
   * Rebuilds a PMatEKFAC from `toState()` on `lc`; block sizes must be those of each layer's
   * Kronecker support. With a recorded definition (and a diagonal not derived by inv/pow),
   * updateDiag works as on the saved matrix.
   */
  static fromState(lc: LayerCollection, state: RepresentationState, context: RestoreContext): PMatEKFAC {
    const where = 'PMatEKFAC.fromState';
    const source = metaChoice(state.meta, 'diagonalSource', ['kfac', 'updated', 'derived'] as const, where);
    const kfacType = metaChoice(state.meta, 'kfacType', ['expand', 'reduce'] as const, where);
    // Every size is checked before the first block allocates tensors.
    const sizes = lc.layers.map((e, i) => {
      if (!e.kind.kronecker) throw new InvalidArgumentError(`${where}: layer '${e.id}' (${e.kind.name}) has no Kronecker factors`);
      const [k, c] = e.kind.kronecker.factorSizes(e.layer);
      const weights = { k, c, uA: stateArray(state, `uA${i}`, where, k * k), uG: stateArray(state, `uG${i}`, where, c * c), d: stateArray(state, `d${i}`, where, k * c) };
      const kb = e.numel - k * c;
      if (kb === 0) return { weights, bias: null };
      if (kb < 0 || !state.arrays[`uB${i}`]) throw new InvalidArgumentError(`${where}: the blocks of layer '${e.id}' (${k}×${c}) do not cover its ${e.numel} parameters`);
      return { weights, bias: { k: kb, uA: stateArray(state, `uB${i}`, where, kb * kb), d: stateArray(state, `dB${i}`, where, kb) } };
    });
    const spec = source === 'derived' ? null : context.spec(lc, state.meta);
    const blocks: EigenBlock[] = [];
    try {
      for (const { weights: w, bias } of sizes) {
        blocks.push(new EigenBlock(w.k, w.c, w.uA, w.uG, w.d));
        if (bias) blocks.push(new EigenBlock(bias.k, 1, bias.uA, Float64Array.of(1), bias.d));
      }
      return new PMatEKFAC(lc, blocks, source, spec, kfacType);
    } catch (e) {
      blocks.forEach((b) => b.dispose());
      throw e;
    }
  }

  /** KFAC's eigenbases of `spec` with the diagonal λ_A ⊗ λ_G (equal to KFAC until `updateDiag`); what `FIM({ representation: PMatEKFAC })` calls. */
  static compute(spec: FisherSpec): Promise<PMatEKFAC> {
    return PMatEKFAC.computeWith(spec, 'expand');
  }

  private static async computeWith(spec: FisherSpec, kfacType: KfacType): Promise<PMatEKFAC> {
    const factors = await computeFiniteFactors(spec, kfacType, 'PMatEKFAC');
    return new PMatEKFAC(spec.layerCollection, kfacEigenBlocks(factors), 'kfac', spec, kfacType);
  }

  /** The per-layer blocks; throws DisposedError once disposed. */
  private get blocks(): EigenBlock[] {
    checkAlive(!this.disposed, 'PMatEKFAC');
    return this.hostBlocks;
  }

  /** 'kfac' until `updateDiag` (the matrix then equals PMatKFAC), 'updated' after it. */
  get diagonalSource(): DiagonalSource {
    return this.source;
  }

  /**
   * Per block, in parameter order: the eigenbases and the diagonal, float64, not copied. One
   * block per layer (`part: 'weights'`), followed for a layer with a separate bias block
   * (Conv2DTranspose) by that block (`part: 'bias'`, k = C_b, c = 1, uG = [1]); `offset` is the
   * block's first parameter in the flat vector.
   */
  eigenBlocks(): ReadonlyArray<EKFACBlock> {
    const blocks = this.blocks;
    return this.layerCollection.layers.flatMap((e, i) => {
      const l = this.byLayer[i]!;
      const view = (j: number, part: 'weights' | 'bias'): EKFACBlock => {
        const b = blocks[j]!;
        return { id: e.id, part, offset: this.offsets[j]!, uA: b.uA, uG: b.uG, diagonal: b.d, k: b.k, c: b.c };
      };
      return l.bias === null ? [view(l.weights, 'weights')] : [view(l.weights, 'weights'), view(l.bias, 'bias')];
    });
  }

  /**
   * Replaces the diagonal by the exact second moment of the per-example gradients in the
   * Kronecker eigenbasis, over `loader` (one pass; same model, variant and layers as at
   * construction; the statistic is statistics/eigenbasis-diagonal.ts). Returns this matrix.
   */
  async updateDiag(loader: Loader): Promise<this> {
    checkAlive(!this.disposed, 'PMatEKFAC');
    if (loader === undefined || loader === null) throw new InvalidArgumentError(`PMatEKFAC.updateDiag: 'loader' is required (a tf.data.Dataset, a batch, or an array/iterable of batches), received ${describe(loader)}`);
    if (!this.spec) {
      throw new InvalidArgumentError(
        this.source === 'derived'
          ? `updateDiag: this PMatEKFAC was derived from another matrix (inv/pow), not computed from a model; compute one with FIM({ representation: PMatEKFAC })`
          : `updateDiag: this PMatEKFAC was loaded from a file that does not record its definition (a loss function, or a file of format version 1); compute one with FIM({ representation: PMatEKFAC })`,
      );
    }
    const layers = this.byLayer.map(({ weights, bias }) => ({ weights: eigenbasisOf(this.blocks[weights]!), bias: bias === null ? null : eigenbasisOf(this.blocks[bias]!) }));
    const { value: diagonals } = await accumulate({ ...this.spec, loader }, eigenbasisDiagonal(this.layerCollection, layers, 'PMatEKFAC'));
    // Checked before any new block holds tensors: an overflow leaves this matrix as it was.
    diagonals.forEach((d, i) => assertFiniteStatistic(d, 'PMatEKFAC.updateDiag', `the updated diagonal of block ${i}`));
    const next = this.blocks.map((b, i) => b.withDiagonal(diagonals[i]!));
    this.blocks.forEach((b) => b.dispose());
    this.blocks.splice(0, this.blocks.length, ...next);
    this.source = 'updated';
    return this;
  }

  private slices<T extends tf.Tensor>(v: PVector, what: string, f: (b: EigenBlock, slice: tf.Tensor1D) => T): T[] {
    checkVector(v, this.layerCollection, `PMatEKFAC.${what}`);
    const data = v.data;
    return this.blocks.map((b, j) => tf.tidy(() => f(b, tf.slice(data, [this.offsets[j]!], [b.k * b.c]))));
  }

  trace(): number {
    return this.blocks.reduce((s, b) => s + b.d.reduce((a, x) => a + x, 0), 0);
  }

  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatEKFAC.norm');
    const all = this.blocks.flatMap((b) => Array.from(b.d));
    if (ord === 'fro') return Math.sqrt(all.reduce((a, x) => a + x * x, 0));
    return ord === 2 ? all.reduce((a, x) => Math.max(a, Math.abs(x)), 0) : all.reduce((a, x) => Math.min(a, Math.abs(x)), Infinity);
  }

  mv(v: PVector): PVector {
    const parts = this.slices(v, 'mv', (b, s) => b.mv(s));
    const out = tf.concat(parts) as tf.Tensor1D;
    tf.dispose(parts);
    return PVector.adopt(this.layerCollection, out);
  }

  vTMv(v: PVector): number {
    const parts = this.slices(v, 'vTMv', (b, s) => b.vTMv(s));
    try {
      return preciseSumOf(() => tf.stack(parts));
    } finally {
      tf.dispose(parts);
    }
  }

  getDiag(): tf.Tensor1D {
    return tf.tidy(() => tf.concat(this.blocks.map((b) => b.diagonal())) as tf.Tensor1D);
  }

  toTensor(): tf.Tensor2D {
    return tf.tidy(() => blockDiagonal(this.blocks.map((b) => b.dense())));
  }

  /** (M + regul·I)⁻¹ v = Σ_l (U_A ⊗ U_G) diag(1/(D + regul)) (U_A ⊗ U_G)ᵀ v, in float64. */
  solve(v: PVector, options?: SolveOptions): PVector {
    const regul = checkRegul(options, 'PMatEKFAC.solve');
    return this.applyFunction(v, 'solve', (d) => 1 / checkPositive(d + regul, regul, 'solve'));
  }

  /** (M + regul·I)⁻¹, exact, as a PMatEKFAC. */
  inv(options?: SolveOptions): PMatEKFAC {
    const regul = checkRegul(options, 'PMatEKFAC.inv');
    return this.mapDiagonal((d) => 1 / checkPositive(d + regul, regul, 'inv'));
  }

  /** The pseudo-inverse: 1/D where D > atol, 0 elsewhere (atol default 1e-8·max D). */
  pinv(options: { atol?: number } = {}): PMatEKFAC {
    const atol = checkOptions(options, ['atol'], 'PMatEKFAC.pinv').atol ?? 1e-8 * this.norm(2);
    if (!(typeof atol === 'number' && atol >= 0 && Number.isFinite(atol))) throw new InvalidArgumentError(`PMatEKFAC.pinv: 'atol' must be a finite number ≥ 0, received ${String(atol)}`);
    return this.mapDiagonal((d) => (d > atol ? 1 / d : 0));
  }

  /** (M + regul·I)^p for real p, exact (negative or fractional p need M + regul·I positive definite / semi-definite). */
  pow(p: number, options?: SolveOptions): PMatEKFAC {
    checkScalar(p, 'PMatEKFAC.pow');
    const regul = checkRegul(options, 'PMatEKFAC.pow');
    return this.mapDiagonal((d) => powerOf(Math.max(d + regul, 0), p, regul));
  }

  /** log det(M + regul·I) = Σ log(D + regul); −Infinity when singular. */
  logdet(options?: SolveOptions): number {
    const regul = checkRegul(options, 'PMatEKFAC.logdet');
    return this.blocks.reduce((s, b) => s + b.d.reduce((a, x) => a + Math.log(Math.max(x + regul, 0)), 0), 0);
  }

  /** x·M (the diagonal scaled, the eigenbases shared) as a new matrix. */
  scale(x: number): PMatEKFAC {
    checkScalar(x, 'PMatEKFAC.scale');
    return this.mapDiagonal((d) => d * x);
  }

  dispose(): void {
    this.hostBlocks.forEach((b) => b.dispose());
    this.disposed = true;
  }

  private mapDiagonal(f: (d: number) => number): PMatEKFAC {
    return new PMatEKFAC(this.layerCollection, this.blocks.map((b) => b.withDiagonal(b.d.map(f))), 'derived', null, this.kfacType);
  }

  private applyFunction(v: PVector, what: string, f: (d: number) => number): PVector {
    checkVector(v, this.layerCollection, `PMatEKFAC.${what}`);
    const x = vectorToHost(v);
    this.blocks.forEach((b, j) => {
      const at = this.offsets[j]!;
      x.set(b.applyHost(x.subarray(at, at + b.k * b.c), f), at);
    });
    return vectorFromHost(this.layerCollection, x);
  }
}

/**
 * The block's eigenbasis for the eigenbasis-diagonal statistic: a wide factor's U_A as its range
 * U_r, the null-space basis read (and materialised) only if the data need it.
 */
function eigenbasisOf(b: EigenBlock): EigenbasisBlock {
  const { basis } = b;
  return {
    k: b.k,
    c: b.c,
    uG: b.uG,
    get uA() {
      return b.uA;
    },
    ...(basis.rank < basis.k ? { range: { rank: basis.rank, vectors: basis.range } } : {}),
  };
}

function checkPositive(x: number, regul: number, op: string): number {
  if (!(x > 0)) throw new NotPositiveDefiniteError(`PMatEKFAC.${op}: an eigenvalue + regul is ${x} (regul = ${regul}); use a regul > 0 to invert a singular matrix`);
  return x;
}
