/**
 * PMatQuasiDiag (Ollivier 2015, "Riemannian metrics for neural networks I", §3.1): the full
 * diagonal plus, for every output unit c of a layer with a bias, the cross terms between the
 * unit's incoming weights W[:, c] and its bias b[c]:
 *   M[(k,c), (K−1,c)] = (1/n) Σᵢ Σ_o ∂_{W[k,c]} f̃ · ∂_{b[c]} f̃.
 * Each unit's block is an "arrowhead" matrix [[diag(D), u], [uᵀ, β]], inverted exactly by a
 * Schur complement; layers without a bias are diagonal. The algebra of two statistics of one pass:
 * the squared gradients (statistics/squared-gradients.ts) and the weight–bias cross terms
 * (statistics/weight-bias-cross.ts).
 *
 * The definition needs each unit's bias as the last row of the layer's [K, C] layout: layers
 * whose bias is a separate block or whose rows are not the inputs (Conv2DTranspose, kernel
 * [kh, kw, cout, cin]: a unit's weights are strided within the kernel) are refused.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, NotPositiveDefiniteError, UnsupportedLayerError } from '../../errors.js';
import { checkAlive } from '../disposal.js';
import type { KroneckerSupport } from '../../layers/layer-kind.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';
import { checkFiniteValues, checkLayerCollection, describe } from '../arguments.js';
import { assertFiniteStatistic } from '../../statistics/finiteness.js';
import { accumulate, jointly } from '../../statistics/statistic.js';
import { squaredGradients } from '../../statistics/squared-gradients.js';
import { weightBiasCross } from '../../statistics/weight-bias-cross.js';
import { vectorFromHost, vectorToHost } from './host-vectors.js';
import { type FisherSpec, type NormOrder, type PMat, type SolveOptions, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import { type RepresentationState, stateArray } from './state.js';
import { checkKroneckerLayers } from '../../statistics/kronecker-factors.js';

/** One layer: the diagonal (numel) and, with a bias, the cross terms [K−1, C] (row-major). */
interface QuasiDiagBlock {
  readonly k: number;
  readonly c: number;
  readonly diag: Float64Array;
  readonly cross: Float64Array | null;
}

export class PMatQuasiDiag implements PMat {
  /** The name in saved files and messages: 'PMatQuasiDiag'. */
  static readonly representationName = 'PMatQuasiDiag';
  readonly layerCollection: LayerCollection;
  private blocks: QuasiDiagBlock[] | null;

  private constructor(lc: LayerCollection, blocks: QuasiDiagBlock[]) {
    this.layerCollection = lc;
    this.blocks = blocks;
  }

  /** From float64 per-layer diagonals and cross terms [K−1, C] (null without bias), taken over. */
  static fromBlocks(lc: LayerCollection, blocks: Array<{ diag: Float64Array; cross: Float64Array | null }>): PMatQuasiDiag {
    checkLayerCollection(lc, 'PMatQuasiDiag.fromBlocks');
    if (!Array.isArray(blocks)) throw new InvalidArgumentError(`PMatQuasiDiag.fromBlocks: 'blocks' must be an array, received ${describe(blocks)}`);
    const supports = quasiDiagLayers(lc);
    if (blocks.length !== lc.layers.length) throw new InvalidArgumentError(`PMatQuasiDiag: expected ${lc.layers.length} blocks, received ${blocks.length}`);
    return new PMatQuasiDiag(
      lc,
      lc.layers.map((e, i) => {
        const [k, c] = supports[i]!.factorSizes(e.layer);
        const b = blocks[i]!;
        if (!(b?.diag instanceof Float64Array) || b.diag.length !== e.numel || (b.cross && b.cross.length !== (k - 1) * c)) {
          throw new InvalidArgumentError(`PMatQuasiDiag: the block of layer '${e.id}' does not match its shapes`);
        }
        checkFiniteValues(b.diag, 'PMatQuasiDiag.fromBlocks', `diag of layer '${e.id}'`);
        if (b.cross) checkFiniteValues(b.cross, 'PMatQuasiDiag.fromBlocks', `cross of layer '${e.id}'`);
        return { k, c, diag: b.diag, cross: b.cross };
      }),
    );
  }

  /** The persisted state: per layer i, 'diag<i>' and, with a bias, 'cross<i>' (float64, not copied). */
  toState(): RepresentationState {
    const arrays: Record<string, Float64Array> = {};
    this.layerCollection.layers.forEach((e, i) => {
      const b = this.layerBlock(e.id);
      arrays[`diag${i}`] = b.diag;
      if (b.cross) arrays[`cross${i}`] = b.cross;
    });
    return { meta: {}, arrays };
  }

  /** Rebuilds a PMatQuasiDiag from `toState()` on `lc`. */
  static fromState(lc: LayerCollection, state: RepresentationState): PMatQuasiDiag {
    const where = 'PMatQuasiDiag.fromState';
    return PMatQuasiDiag.fromBlocks(lc, lc.layers.map((e, i) => ({ diag: stateArray(state, `diag${i}`, where, e.numel), cross: state.arrays[`cross${i}`] ? stateArray(state, `cross${i}`, where) : null })));
  }

  /** The diagonal plus the weight–bias cross terms of each unit (Ollivier 2015) of `spec` (what `FIM({ representation: PMatQuasiDiag })` calls). */
  static async compute(spec: FisherSpec): Promise<PMatQuasiDiag> {
    const lc = spec.layerCollection;
    const supports = quasiDiagLayers(lc);
    // The diagonal and the cross terms are statistics of the same pass.
    const { value } = await accumulate(spec, jointly({ diag: squaredGradients(lc), cross: weightBiasCross(lc, supports) }));
    const blocks = lc.layers.map((e, i) => {
      const [k, c] = supports[i]!.factorSizes(e.layer);
      return { k, c, diag: value.diag.slice(e.offset, e.offset + e.numel), cross: value.cross[i]! };
    });
    lc.layers.forEach((e, i) => {
      assertFiniteStatistic(blocks[i]!.diag, 'PMatQuasiDiag', `the diagonal of layer '${e.id}'`);
      if (blocks[i]!.cross) assertFiniteStatistic(blocks[i]!.cross!, 'PMatQuasiDiag', `the weight–bias cross terms of layer '${e.id}'`);
    });
    return new PMatQuasiDiag(lc, blocks);
  }

  private get parts(): QuasiDiagBlock[] {
    checkAlive(this.blocks !== null, 'PMatQuasiDiag');
    return this.blocks;
  }

  /** The float64 diagonal and cross terms of one layer, not copied. */
  layerBlock(id: string): {
    /** The layer's diagonal, in its parameter layout. */
    diag: Float64Array;
    /** The weight–bias cross terms [K−1, C] row-major (each weight with its unit's bias); null without a bias. */
    cross: Float64Array | null;
  } {
    return this.parts[this.layerCollection.layers.indexOf(this.layerCollection.get(id))]!;
  }

  trace(): number {
    return this.parts.reduce((s, b) => s + b.diag.reduce((a, x) => a + x, 0), 0);
  }

  /** 'fro' exactly; 2 and −2 from each unit's arrowhead spectrum (bisection on its inertia). */
  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatQuasiDiag.norm');
    if (ord === 'fro') {
      return Math.sqrt(this.parts.reduce((s, b) => s + sumSquares(b.diag) + 2 * (b.cross ? sumSquares(b.cross) : 0), 0));
    }
    // Dropping off-diagonal terms can make the matrix indefinite: singular values are |λ|.
    let max = 0;
    let min = Infinity;
    for (const b of this.parts) {
      for (const { d, u, beta } of units(b)) {
        const n = d.length + 1;
        max = Math.max(max, Math.abs(arrowheadEigenvalue(d, u, beta, 1)), Math.abs(arrowheadEigenvalue(d, u, beta, n)));
        const negatives = countBelow(d, u, beta, 0);
        if (negatives >= 1) min = Math.min(min, Math.abs(arrowheadEigenvalue(d, u, beta, negatives)));
        if (negatives < n) min = Math.min(min, Math.abs(arrowheadEigenvalue(d, u, beta, negatives + 1)));
      }
    }
    return ord === 2 ? max : min;
  }

  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'PMatQuasiDiag.mv');
    return vectorFromHost(this.layerCollection, this.applyHost(vectorToHost(v), (b, x) => multiply(b, x)));
  }

  vTMv(v: PVector): number {
    checkVector(v, this.layerCollection, 'PMatQuasiDiag.vTMv');
    const x = vectorToHost(v);
    const y = this.applyHost(x, (b, s) => multiply(b, s));
    return y.reduce((a, t, i) => a + t * x[i]!, 0);
  }

  getDiag(): tf.Tensor1D {
    const out = new Float32Array(this.layerCollection.numel());
    this.layerCollection.layers.forEach((e, i) => out.set(this.parts[i]!.diag, e.offset));
    return tf.tensor1d(out);
  }

  toTensor(): tf.Tensor2D {
    const d = this.layerCollection.numel();
    const out = new Float32Array(d * d);
    this.layerCollection.layers.forEach((e, i) => {
      const b = this.parts[i]!;
      b.diag.forEach((x, j) => (out[(e.offset + j) * d + e.offset + j] = x));
      if (!b.cross) return;
      for (let k = 0; k < b.k - 1; k++) {
        for (let c = 0; c < b.c; c++) {
          const w = e.offset + k * b.c + c;
          const bias = e.offset + (b.k - 1) * b.c + c;
          out[w * d + bias] = out[bias * d + w] = b.cross[k * b.c + c]!;
        }
      }
    });
    return tf.tensor2d(out, [d, d]);
  }

  /** (M + regul·I)⁻¹ v exactly: per unit, the Schur complement of its arrowhead block. */
  solve(v: PVector, options?: SolveOptions): PVector {
    const regul = checkRegul(options, 'PMatQuasiDiag.solve');
    checkVector(v, this.layerCollection, 'PMatQuasiDiag.solve');
    return vectorFromHost(this.layerCollection, this.applyHost(vectorToHost(v), (b, x) => solveBlock(b, x, regul)));
  }

  /** x·M. */
  scale(x: number): PMatQuasiDiag {
    checkScalar(x, 'PMatQuasiDiag.scale');
    return new PMatQuasiDiag(
      this.layerCollection,
      this.parts.map((b) => ({ ...b, diag: b.diag.map((t) => t * x), cross: b.cross ? b.cross.map((t) => t * x) : null })),
    );
  }

  /** M + other: the diagonals and the weight–bias cross terms add (the sum keeps the structure). */
  add(other: PMatQuasiDiag): PMatQuasiDiag {
    if (!(other instanceof PMatQuasiDiag)) throw new InvalidArgumentError(`PMatQuasiDiag.add: 'other' must be a PMatQuasiDiag, received ${describe(other)}`);
    this.layerCollection.assertSame(other.layerCollection, 'the matrix given to PMatQuasiDiag.add');
    const o = other.parts;
    return new PMatQuasiDiag(
      this.layerCollection,
      this.parts.map((b, i) => ({ ...b, diag: b.diag.map((t, j) => t + o[i]!.diag[j]!), cross: b.cross ? b.cross.map((t, j) => t + o[i]!.cross![j]!) : null })),
    );
  }

  /** Holds no tensor (its arrays live on the host); further use throws. */
  dispose(): void {
    this.blocks = null;
  }

  private applyHost(x: Float64Array, f: (b: QuasiDiagBlock, slice: Float64Array) => Float64Array): Float64Array {
    const out = new Float64Array(x.length);
    this.layerCollection.layers.forEach((e, i) => out.set(f(this.parts[i]!, x.subarray(e.offset, e.offset + e.numel)), e.offset));
    return out;
  }
}

/** The Kronecker supports of the layers, refusing those whose bias is not the last row of [K, C]. */
function quasiDiagLayers(lc: LayerCollection): KroneckerSupport[] {
  const supports = checkKroneckerLayers(lc, 'PMatQuasiDiag');
  lc.layers.forEach((e, i) => {
    const s = supports[i]!;
    if (s.rowFactor === 'gradients' || s.separateBias) {
      throw new UnsupportedLayerError(
        `PMatQuasiDiag needs each output unit's bias as the last row of the layer's [K, C] parameter matrix, which layer '${e.id}' (${e.layer.getClassName()}) does not have ` +
          `(its bias is a separate block); use PMatEKFACBlockDiag or PMatKFAC (Kronecker factors and an exact bias block), PMatDiag, or a layer collection without it`,
      );
    }
  });
  return supports;
}

function sumSquares(a: Float64Array): number {
  return a.reduce((s, x) => s + x * x, 0);
}

/** y = M_l x for one layer in the [K, C] layout (bias = last row). */
function multiply(b: QuasiDiagBlock, x: Float64Array): Float64Array {
  const y = x.map((t, j) => t * b.diag[j]!);
  if (!b.cross) return y;
  const biasRow = (b.k - 1) * b.c;
  for (let k = 0; k < b.k - 1; k++) {
    for (let c = 0; c < b.c; c++) {
      const u = b.cross[k * b.c + c]!;
      y[k * b.c + c]! += u * x[biasRow + c]!;
      y[biasRow + c]! += u * x[k * b.c + c]!;
    }
  }
  return y;
}

/** Arrowhead solve: s_b = (v_b − Σ u v_w/(D+λ)) / (β + λ − Σ u²/(D+λ)), s_w = (v_w − u s_b)/(D+λ). */
function solveBlock(b: QuasiDiagBlock, x: Float64Array, regul: number): Float64Array {
  const out = new Float64Array(x.length);
  const check = (value: number, where: string) => {
    if (!(value > 0)) throw new NotPositiveDefiniteError(`PMatQuasiDiag.solve: ${where} is ${value} (regul = ${regul}); use a regul > 0`);
    return value;
  };
  if (!b.cross) {
    x.forEach((t, j) => (out[j] = t / check(b.diag[j]! + regul, `diagonal entry ${j} + regul`)));
    return out;
  }
  const biasRow = (b.k - 1) * b.c;
  for (let c = 0; c < b.c; c++) {
    let num = x[biasRow + c]!;
    let den = b.diag[biasRow + c]! + regul;
    for (let k = 0; k < b.k - 1; k++) {
      const j = k * b.c + c;
      const dw = check(b.diag[j]! + regul, `weight diagonal entry ${j} + regul`);
      const u = b.cross[k * b.c + c]!;
      num -= (u * x[j]!) / dw;
      den -= (u * u) / dw;
    }
    // The arrowhead may be indefinite (dropped off-diagonal terms): only a zero pivot is fatal.
    if (den === 0 || !Number.isFinite(den)) throw new NotPositiveDefiniteError(`PMatQuasiDiag.solve: unit ${c} is singular (Schur complement ${den}, regul = ${regul}); use another regul`);
    const sb = num / den;
    out[biasRow + c] = sb;
    for (let k = 0; k < b.k - 1; k++) {
      const j = k * b.c + c;
      out[j] = (x[j]! - b.cross[k * b.c + c]! * sb) / (b.diag[j]! + regul);
    }
  }
  return out;
}

/** Every output unit's arrowhead (weights diag D, cross u, bias β); plain 1×1 blocks without bias. */
function* units(b: QuasiDiagBlock): Generator<{ d: Float64Array; u: Float64Array; beta: number }> {
  if (!b.cross) {
    for (const x of b.diag) yield { d: new Float64Array(0), u: new Float64Array(0), beta: x };
    return;
  }
  const biasRow = (b.k - 1) * b.c;
  for (let c = 0; c < b.c; c++) {
    const d = new Float64Array(b.k - 1);
    const u = new Float64Array(b.k - 1);
    for (let k = 0; k < b.k - 1; k++) {
      d[k] = b.diag[k * b.c + c]!;
      u[k] = b.cross[k * b.c + c]!;
    }
    yield { d, u, beta: b.diag[biasRow + c]! };
  }
}

/** Number of eigenvalues of [[diag d, u], [uᵀ, β]] below λ (Sylvester's inertia of its LDLᵀ). */
function countBelow(d: Float64Array, u: Float64Array, beta: number, lambda: number): number {
  let count = 0;
  let schur = beta - lambda;
  for (let k = 0; k < d.length; k++) {
    let p = d[k]! - lambda;
    if (p === 0) p = -1e-300;
    if (p < 0) count++;
    schur -= (u[k]! * u[k]!) / p;
  }
  return count + (schur < 0 ? 1 : 0);
}

/** The index-th smallest eigenvalue (1-based) of [[diag d, u], [uᵀ, β]], by bisection on its inertia. */
export function arrowheadEigenvalue(d: Float64Array, u: Float64Array, beta: number, index: number): number {
  let radius = Math.abs(beta) + u.reduce((a, x) => a + Math.abs(x), 0);
  d.forEach((x, k) => (radius = Math.max(radius, Math.abs(x) + Math.abs(u[k]!))));
  if (!Number.isFinite(radius)) throw new InvalidArgumentError('PMatQuasiDiag.norm: the matrix holds non-finite values');
  let lo = -radius - 1e-300;
  let hi = radius + 1e-300;
  for (let it = 0; it < 200 && hi - lo > 1e-13 * Math.max(radius, 1e-300); it++) {
    const mid = 0.5 * (lo + hi);
    if (countBelow(d, u, beta, mid) >= index) hi = mid;
    else lo = mid;
  }
  return 0.5 * (lo + hi);
}
