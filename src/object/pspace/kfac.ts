/**
 * PMatKFAC (Martens & Grosse 2015; Grosse & Martens 2016 for convolutions): per layer
 * M_l = A ⊗ G in the parameter layout [K, C] of CONVENTIONS.md, with
 *   A = (1/n) Σᵢ x̃ᵢx̃ᵢᵀ (input factor, inputs augmented by 1 for the bias),
 *   G = (1/n) Σᵢ Σ_o gᵢₒgᵢₒᵀ (output factor, pre-activation gradients of the square-root outputs).
 * Shared positions (convolutions, Dense on sequences): 'expand' (default) sums A and averages G
 * over the S positions, 'reduce' averages the inputs and sums the gradients over positions first
 * (Eschenhagen et al. 2023); with inputs and gradients constant over positions the exact block
 * is S·(A ⊗ G) for 'expand' and A ⊗ G for 'reduce'.
 *
 * A wide factor built from few rows is held as its rows R only (`factorsFromRows`): A = RᵀR
 * for m ≤ K/4 input rows, G = R_GᵀR_G for m ≤ C stacked output-cotangent rows. Trace, norms,
 * diagonal, products, the eigendecomposition (through the m×m Gram matrix), save/load and
 * merges work from R, never forming the K×K A or the C×C G.
 *
 * Damping is exact: solve/inv/pow/logdet treat A ⊗ G + λI through the factors'
 * eigendecompositions (computed once, in float64, and reused). The classic π-damped
 * approximation (A + π√λ I) ⊗ (G + √λ/π I) is available only as `damping: 'pi'`.
 *
 * Conv2DTranspose: A is the row factor over the kernel rows (kh, kw, cout), from the output
 * gradient, and G the column factor over the input channels; its bias is a separate exact block
 * B (`KroneckerFactors.bias`), handled everywhere as the Kronecker block B ⊗ [1] (exactly damped).
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError, NotPositiveDefiniteError } from '../../errors.js';
import { checkAlive } from '../disposal.js';
import type { KfacType } from '../../layers/layer-kind.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { cholesky, choleskySolve, gemm } from '../../linalg/index.js';
import { PVector } from '../pvector.js';
import { checkFiniteValues, checkLayerCollection, checkOptions, describe } from '../arguments.js';
import { computeFiniteFactors } from '../../statistics/finiteness.js';
import { vectorFromHost, vectorToHost } from './host-vectors.js';
import { type FisherSpec, type NormOrder, type PMat, type Representation, type SolveOptions, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import { type RepresentationState, metaChoice, stateArray } from './state.js';
import { PMatEKFAC } from './ekfac.js';
import { blockDiagonal, checkKfacType, powerOf } from './kronecker/helpers.js';
import { EigenBlock } from './kronecker/eigen-block.js';
import { factorEigen } from './kronecker/factor-eigen.js';
import type { FactorBasis } from './kronecker/factor-basis.js';
import { type FactorsOrRows, type KroneckerFactors, factorOf, factorRowsOf, factorWidth, factorsFromRows, holdsFactor } from '../../statistics/kronecker-factors.js';
import { type FactorSide, gramOfRows, gramOfRowsOnDevice, rowsDiagonal } from '../../statistics/factor-rows.js';
import { biasSize, kroneckerParts, type KroneckerPart } from './kronecker/parts.js';
import { addIdentity, frobeniusSquaredHost, traceHost, transposeHost } from './kronecker/host-matrix.js';

/** Options of `PMatKFAC.with`. */
export interface KFACOptions {
  /** Shared-position convention (see the class documentation). Default 'expand'. */
  kfacType?: KfacType;
}

export interface KFACSolveOptions extends SolveOptions {
  /**
   * 'exact' (default): (A ⊗ G + regul·I)⁻¹ exactly. 'pi': the π-damped approximation
   * (A + π√regul·I)⁻¹ ⊗ (G + √regul/π·I)⁻¹ with π² = (tr A / K)/(tr G / C) — NOT the inverse of
   * the damped matrix (it adds cross terms of order √regul); offered for compatibility.
   */
  damping?: 'exact' | 'pi';
}

/** The eigenpairs of one layer's factors, ascending eigenvalues, eigenvectors in columns. */
export interface KroneckerEigen {
  /** The layer's id. */
  id: string;
  /** Eigenvalues of the input factor A (k, ascending). */
  eigenvaluesA: Float64Array;
  /** Eigenvectors of A, k×k row-major, one per column. */
  eigenvectorsA: Float64Array;
  /** Eigenvalues of the output factor G (c, ascending). */
  eigenvaluesG: Float64Array;
  /** Eigenvectors of G, c×c row-major, one per column. */
  eigenvectorsG: Float64Array;
  /** The separate bias block's eigenpairs (Conv2DTranspose with a bias). */
  bias?: {
    /** Eigenvalues of the bias block B (c, ascending). */
    eigenvalues: Float64Array;
    /** Eigenvectors of B, c×c row-major, one per column. */
    eigenvectors: Float64Array;
  };
}

export class PMatKFAC implements PMat {
  /** The name in saved files and messages: 'PMatKFAC'. */
  static readonly representationName = 'PMatKFAC';
  readonly layerCollection: LayerCollection;
  /** How weight sharing enters the factors: 'expand' (default) or 'reduce' (Eschenhagen et al. 2023). */
  readonly kfacType: KfacType;
  private readonly hostFactors: KroneckerFactors[];
  /** The diagonal blocks in parameter order: one per layer, plus one per separate bias. */
  private readonly hostParts: KroneckerPart[];
  /**
   * Whether the matrix is alive. The factors live in float64 on the host only; mv and toTensor
   * upload one part's float32 factors at a time, for the duration of the operation (resident
   * device copies would be 0.9 GB at d ≈ 10⁸ beside the 1.9 GB of float64 factors).
   */
  private alive = true;
  private eigen: Array<{ lA: Float64Array; uA: FactorBasis; lG: Float64Array; uG: Float64Array }> | null = null;

  /** Wraps float64 factors (taken over); `computed` skips the finite-value scan of factors the library just accumulated. */
  constructor(lc: LayerCollection, factors: KroneckerFactors[], kfacType: KfacType = 'expand', computed = false) {
    checkLayerCollection(lc, 'PMatKFAC');
    if (!Array.isArray(factors)) throw new InvalidArgumentError(`PMatKFAC: 'factors' must be an array of { k, c, a, g }, received ${describe(factors)}`);
    kfacType = checkKfacType(kfacType, 'PMatKFAC');
    if (factors.length !== lc.layers.length) throw new InvalidArgumentError(`PMatKFAC: expected ${lc.layers.length} factor pairs, received ${factors.length}`);
    lc.layers.forEach((e, i) => {
      const f = factors[i]!;
      // A factor held as its rows (factorsFromRows) is checked through them, without forming it.
      const isObject = f !== null && typeof f === 'object';
      const held = { a: isObject && holdsFactor(f, 'a'), g: isObject && holdsFactor(f, 'g') };
      if (!isObject || (held.a && !(f.a instanceof Float64Array)) || (held.g && !(f.g instanceof Float64Array))) {
        throw new InvalidArgumentError(`PMatKFAC: factors of layer '${e.id}' must be Float64Arrays a and g`);
      }
      if (f.bias !== undefined && !(f.bias instanceof Float64Array)) throw new InvalidArgumentError(`PMatKFAC: the bias block of layer '${e.id}' must be a Float64Array, received ${describe(f.bias)}`);
      for (const side of SIDES) {
        const rows = factorRowsOf(f, side);
        const n = factorWidth(f, side);
        if (rows !== undefined && !(rows instanceof Float64Array && rows.length > 0 && Number.isInteger(n) && n > 0 && rows.length % n === 0)) {
          const name = side.toUpperCase();
          throw new InvalidArgumentError(`PMatKFAC: the rows '${side}Rows' of layer '${e.id}' must be a Float64Array of m×${n} values (${name} = RᵀR), received ${describe(rows)}; leave them out to use ${name} alone`);
        }
      }
      const cb = biasSize(f);
      if (f.k * f.c + cb !== e.numel || (held.a && f.a.length !== f.k * f.k) || (held.g && f.g.length !== f.c * f.c) || (f.bias && f.bias.length !== cb * cb)) {
        throw new InvalidArgumentError(`PMatKFAC: factors of layer '${e.id}' (${f.k}×${f.k}, ${f.c}×${f.c}${f.bias ? `, bias ${f.bias.length} values` : ''}) do not match its ${e.numel} parameters`);
      }
      if (computed) return;
      for (const side of SIDES) {
        const name = side.toUpperCase();
        if (held[side]) checkFiniteValues(side === 'a' ? f.a : f.g, 'PMatKFAC', `${name} of layer '${e.id}'`);
        const rows = factorRowsOf(f, side);
        if (rows) checkFiniteValues(rows, 'PMatKFAC', `the rows of ${name} of layer '${e.id}'`);
      }
      if (f.bias) checkFiniteValues(f.bias, 'PMatKFAC', `the bias block of layer '${e.id}'`);
    });
    this.layerCollection = lc;
    this.kfacType = kfacType;
    this.hostFactors = factors;
    this.hostParts = kroneckerParts(factors, lc.layers.map((e) => e.offset));
  }

  /** A representation with options, e.g. `representation: PMatKFAC.with({ kfacType: 'reduce' })`. */
  static with(options: KFACOptions): Representation<PMatKFAC> {
    const kfacType = checkKfacType(checkOptions(options, ['kfacType'], 'PMatKFAC.with').kfacType, 'PMatKFAC.with');
    return { representationName: 'PMatKFAC', compute: async (spec) => new PMatKFAC(spec.layerCollection, await computeFiniteFactors(spec, kfacType, 'PMatKFAC'), kfacType, true) };
  }

  /**
   * The persisted state: kfacType and, per layer i, 'a<i>' (or, for an A held as its rows, the
   * rows 'ar<i>', m×k), 'g<i>' (or the rows 'gr<i>', m×c) and a separate bias block 'b<i>'
   * (float64, not copied).
   */
  toState(): RepresentationState {
    const arrays: Record<string, Float64Array> = {};
    this.layerCollection.layers.forEach((e, i) => {
      const f = this.layerFactors(e.id);
      for (const side of SIDES) {
        if (holdsFactor(f, side)) arrays[`${side}${i}`] = side === 'a' ? f.a : f.g;
        else arrays[`${side}r${i}`] = factorRowsOf(f, side)!;
      }
      if (f.bias) arrays[`b${i}`] = f.bias;
    });
    return { meta: { kfacType: this.kfacType }, arrays };
  }

  /** Rebuilds a PMatKFAC from `toState()` on `lc`: factor sizes must be those of each layer's Kronecker support. */
  static fromState(lc: LayerCollection, state: RepresentationState): PMatKFAC {
    const where = 'PMatKFAC.fromState';
    const kfacType = metaChoice(state.meta, 'kfacType', ['expand', 'reduce'] as const, where);
    const factors = lc.layers.map((e, i): KroneckerFactors => {
      const support = e.kind.kronecker;
      if (!support) throw new InvalidArgumentError(`${where}: layer '${e.id}' (${e.kind.name}) has no Kronecker factors`);
      const [k, c] = support.factorSizes(e.layer);
      // Each factor as its n×n array 'a<i>'/'g<i>', or as its rows 'ar<i>'/'gr<i>' (m×n, m > 0).
      const side = (s: FactorSide, n: number) => {
        const rows = state.arrays[`${s}r${i}`] !== undefined && state.arrays[`${s}${i}`] === undefined;
        if (!rows) return { dense: stateArray(state, `${s}${i}`, where, n * n) };
        const r = stateArray(state, `${s}r${i}`, where);
        if (r.length === 0 || r.length % n !== 0) throw new InvalidArgumentError(`${where}: array '${s}r${i}' has ${r.length} values, expected a positive multiple of ${n} (rows of ${s.toUpperCase()})`);
        return { rows: r };
      };
      const a = side('a', k);
      const g = side('g', c);
      const bias = state.arrays[`b${i}`] ? { bias: stateArray(state, `b${i}`, where) } : {};
      if (a.dense && g.dense) return { k, c, a: a.dense, g: g.dense, ...bias };
      return factorsFromRows({ k, c, ...bias, ...(a.rows ? { aRows: a.rows } : { a: a.dense! }), ...(g.rows ? { gRows: g.rows } : { g: g.dense! }) });
    });
    return new PMatKFAC(lc, factors, kfacType);
  }

  /** The blocks A ⊗ G per layer (Martens & Grosse 2015; CONVENTIONS.md, "Kronecker factors") of `spec` (what `FIM({ representation: PMatKFAC })` calls). */
  static async compute(spec: FisherSpec): Promise<PMatKFAC> {
    return new PMatKFAC(spec.layerCollection, await computeFiniteFactors(spec, 'expand', 'PMatKFAC'), 'expand', true);
  }

  /** The float64 factors; throws DisposedError once disposed. */
  private get factors(): KroneckerFactors[] {
    checkAlive(this.alive, 'PMatKFAC');
    return this.hostFactors;
  }

  /** The diagonal blocks (layers and separate biases); throws DisposedError once disposed. */
  private get parts(): KroneckerPart[] {
    checkAlive(this.alive, 'PMatKFAC');
    return this.hostParts;
  }

  /**
   * The float64 factors of one layer, not copied. A wide factor may be held as its rows only
   * (`aRows`, A = RᵀR; `gRows`, G = R_GᵀR_G): reading `a` (or `g`) then forms the factor and
   * keeps it (G on the device, float32 rank updates summed in float64).
   */
  layerFactors(id: string): KroneckerFactors {
    return this.factors[this.layerCollection.layers.indexOf(this.layerCollection.get(id))]!;
  }

  /** Per-layer eigendecompositions of A and G (float64, computed once). */
  eigendecomposition(): KroneckerEigen[] {
    const eigen = this.eigenOf();
    let p = 0;
    return this.layerCollection.layers.map((e, i) => {
      const x = eigen[p++]!;
      const out: KroneckerEigen = { id: e.id, eigenvaluesA: x.lA, eigenvectorsA: x.uA.full(), eigenvaluesG: x.lG, eigenvectorsG: x.uG };
      if (this.factors[i]!.bias) {
        const b = eigen[p++]!;
        out.bias = { eigenvalues: b.lA, eigenvectors: b.uA.full() };
      }
      return out;
    });
  }

  /** Per part (`parts` order). */
  private eigenOf() {
    checkAlive(this.alive, 'PMatKFAC');
    this.eigen ??= this.parts.map((f) => {
      const a = factorEigen(() => f.a, f.k, f.aRows);
      // G's basis is used explicitly (U_G in every product): a thin one is completed here; past
      // the Gram route, G held as rows is formed on the device for the solver alone (not kept).
      const g = factorEigen(() => denseOf(f, 'g'), f.c, rowsOf(f, 'g') ?? undefined);
      return { lA: a.values.map((x) => Math.max(x, 0)), uA: a.basis, lG: g.values.map((x) => Math.max(x, 0)), uG: g.vectors };
    });
    return this.eigen;
  }

  /** Σ_l tr(A) tr(G) (+ tr(B) for a separate bias). */
  trace(): number {
    return this.parts.reduce((s, f) => s + traceOf(f, 'a') * traceOf(f, 'g'), 0);
  }

  /** 'fro': √Σ‖A‖²‖G‖²; 2: max λ_max(A)λ_max(G); −2: min λ_min(A)λ_min(G). */
  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatKFAC.norm');
    if (ord === 'fro') return Math.sqrt(this.parts.reduce((s, f) => s + frobeniusSquaredOf(f, 'a') * frobeniusSquaredOf(f, 'g'), 0));
    const ext = this.eigenOf().map((x) => ({ max: x.lA[x.lA.length - 1]! * x.lG[x.lG.length - 1]!, min: x.lA[0]! * x.lG[0]! }));
    return ord === 2 ? ext.reduce((a, x) => Math.max(a, x.max), 0) : ext.reduce((a, x) => Math.min(a, x.min), Infinity);
  }

  /** (A ⊗ G) vec(V) = vec(A V G) per layer. */
  mv(v: PVector): PVector {
    checkVector(v, this.layerCollection, 'PMatKFAC.mv');
    const data = v.data;
    const out = tf.tidy(() =>
      tf.concat(
        this.parts.map((f) =>
          tf.tidy(() => {
            const x = tf.slice(data, [f.offset], [f.k * f.c]).reshape([f.k, f.c]) as tf.Tensor2D;
            return timesG(f, timesA(f, x)).reshape([-1]);
          }),
        ),
      ),
    );
    return PVector.adopt(this.layerCollection, out as tf.Tensor1D);
  }

  vTMv(v: PVector): number {
    checkVector(v, this.layerCollection, 'PMatKFAC.vTMv');
    const mv = this.mv(v);
    try {
      return mv.dot(v);
    } finally {
      mv.dispose();
    }
  }

  /** diag(A) ⊗ diag(G) per layer. */
  getDiag(): tf.Tensor1D {
    const out = new Float32Array(this.layerCollection.numel());
    for (const f of this.parts) {
      const dA = diagonalOf(f, 'a');
      const dG = diagonalOf(f, 'g');
      for (let r = 0; r < f.k; r++) for (let s = 0; s < f.c; s++) out[f.offset + r * f.c + s] = dA[r]! * dG[s]!;
    }
    return tf.tensor1d(out);
  }

  toTensor(): tf.Tensor2D {
    return tf.tidy(() =>
      blockDiagonal(
        this.parts.map((f) => {
          const { a, g } = deviceFactors(f);
          return tf.mul(a.reshape([f.k, 1, f.k, 1]), g.reshape([1, f.c, 1, f.c])).reshape([f.k * f.c, f.k * f.c]) as tf.Tensor2D;
        }),
      ),
    );
  }

  /** (A ⊗ G + regul·I)⁻¹ v exactly (or π-damped on request), in float64. */
  solve(v: PVector, options?: KFACSolveOptions): PVector {
    const regul = checkRegul(options, 'PMatKFAC.solve', ['regul', 'damping']);
    checkVector(v, this.layerCollection, 'PMatKFAC.solve');
    if (checkDamping(options?.damping) === 'pi') {
      const x = vectorToHost(v);
      for (const f of this.parts) {
        const { a, g } = piDamped(f, regul);
        // A⁻¹ V G⁻¹ = A⁻¹ (G⁻¹ Vᵀ)ᵀ with both factors symmetric.
        const y = choleskySolve(cholesky(a, f.k), f.k, x.slice(f.offset, f.offset + f.k * f.c), f.c);
        const z = choleskySolve(cholesky(g, f.c), f.c, transposeHost(y, f.k, f.c), f.k);
        x.set(transposeHost(z, f.c, f.k), f.offset);
      }
      return vectorFromHost(this.layerCollection, x);
    }
    // A ⊗ G + regul·I in eigen-form, solved in float64 (a float32 product with the inverse
    // would lose the small-eigenvalue directions at high condition numbers), one part at a
    // time: only one part's diagonal and float64 slice of v (k·c values, 128 MiB at
    // k = c = 4,096) are alive at once, not a float64 copy of the whole vector (0.77 GiB at d ≈ 10⁸).
    const source = v.data.dataSync();
    const out = new Float32Array(source.length);
    this.parts.forEach((f, i) => {
      const block = this.eigenBlock(i, (e) => e + regul);
      const x = Float64Array.from(source.subarray(f.offset, f.offset + f.k * f.c));
      out.set(block.applyHost(x, (d) => 1 / checkInvertible(d, regul)), f.offset);
    });
    return PVector.adopt(this.layerCollection, tf.tensor1d(out));
  }

  /**
   * (A ⊗ G + regul·I)⁻¹. Exactly, it is not a Kronecker product but is diagonal in the
   * Kronecker eigenbasis: returned as a PMatEKFAC. With `damping: 'pi'`, the π-damped
   * approximation (A + π√λ I)⁻¹ ⊗ (G + √λ/π I)⁻¹ as a PMatKFAC.
   */
  inv(options?: KFACSolveOptions): PMatEKFAC | PMatKFAC {
    const regul = checkRegul(options, 'PMatKFAC.inv', ['regul', 'damping']);
    if (checkDamping(options?.damping) === 'pi') {
      const inverted = this.factors.map((f): KroneckerFactors => {
        const { a, g } = piDamped({ k: f.k, c: f.c, a: factorOf(f, 'a'), g: factorOf(f, 'g'), offset: 0, exact: false }, regul);
        const cb = biasSize(f);
        return { k: f.k, c: f.c, a: inverse(a, f.k), g: inverse(g, f.c), ...(f.bias ? { bias: inverse(addIdentity(f.bias, cb, regul), cb) } : {}) };
      });
      return new PMatKFAC(this.layerCollection, inverted, this.kfacType);
    }
    return this.spectralFunction((x) => powerOf(x + regul, -1, regul));
  }

  /** (A ⊗ G + regul·I)^p for real p, exact, as a PMatEKFAC. */
  pow(p: number, options?: SolveOptions): PMatEKFAC {
    checkScalar(p, 'PMatKFAC.pow');
    const regul = checkRegul(options, 'PMatKFAC.pow');
    return this.spectralFunction((x) => powerOf(x + regul, p, regul));
  }

  /** log det(A ⊗ G + regul·I) = Σ_l Σ_{a,b} log(λ_A,a λ_G,b + regul); −Infinity when singular. */
  logdet(options?: SolveOptions): number {
    const regul = checkRegul(options, 'PMatKFAC.logdet');
    let s = 0;
    for (const x of this.eigenOf()) for (const la of x.lA) for (const lg of x.lG) s += Math.log(la * lg + regul);
    return s;
  }

  /** (A A') ⊗ (G G') per layer: the product of two KFAC matrices on the same collection. */
  mm(other: PMatKFAC): PMatKFAC {
    if (!(other instanceof PMatKFAC)) throw new InvalidArgumentError(`PMatKFAC.mm: 'other' must be a PMatKFAC, received ${describe(other)}`);
    this.layerCollection.assertSame(other.layerCollection, 'the matrix given to PMatKFAC.mm');
    return new PMatKFAC(
      this.layerCollection,
      this.factors.map((f, i) => {
        const o = other.factors[i]!;
        const cb = biasSize(f);
        return { k: f.k, c: f.c, a: gemm(factorOf(f, 'a'), f.k, f.k, factorOf(o, 'a'), f.k), g: gemm(factorOf(f, 'g'), f.c, f.c, factorOf(o, 'g'), f.c), ...(f.bias && o.bias ? { bias: gemm(f.bias, cb, cb, o.bias, cb) } : {}) };
      }),
      this.kfacType,
    );
  }

  /** x·M (x ≥ 0 scales G — rows R_G by √x when G is held as its rows — and a separate bias block). */
  scale(x: number): PMatKFAC {
    checkScalar(x, 'PMatKFAC.scale');
    // A negative x would make G indefinite, which the factor eigendecompositions (clamped at 0,
    // as the factors of a Fisher are PSD) would silently turn into wrong norms and solves.
    if (x < 0) throw new InvalidArgumentError(`PMatKFAC.scale: 'x' must be ≥ 0 (the factors stay positive semi-definite), received ${x}; convert with toTensor() first`);
    return new PMatKFAC(
      this.layerCollection,
      this.factors.map((f) => {
        const bias = f.bias ? { bias: f.bias.map((v) => v * x) } : {};
        if (holdsFactor(f, 'a') && holdsFactor(f, 'g') && !f.gRows) return { ...f, g: f.g.map((v) => v * x), ...bias };
        const root = Math.sqrt(x);
        const gRows = f.gRows ? { gRows: f.gRows.map((v) => v * root) } : {};
        const a = holdsFactor(f, 'a') ? { a: f.a, ...(f.aRows ? { aRows: f.aRows } : {}) } : { aRows: f.aRows! };
        const g = holdsFactor(f, 'g') ? { g: f.g.map((v) => v * x), ...gRows } : (gRows as { gRows: Float64Array });
        return factorsFromRows({ k: f.k, c: f.c, ...a, ...g, ...bias } as FactorsOrRows);
      }),
      this.kfacType,
    );
  }

  dispose(): void {
    this.alive = false;
    this.eigen = null;
  }

  /** f(A ⊗ G) = (U_A ⊗ U_G) diag(f(λ_A λ_Gᵀ)) (U_A ⊗ U_G)ᵀ per part (f(B) for a separate bias), as a PMatEKFAC. */
  private spectralFunction(f: (eigenvalue: number) => number): PMatEKFAC {
    const blocks = this.parts.map((_, i) => this.eigenBlock(i, f));
    return new PMatEKFAC(this.layerCollection, blocks, 'derived', null, this.kfacType);
  }

  /** Part i's f(A ⊗ G) as an eigenblock: diagonal f(λ_A λ_Gᵀ) on the eigenbases (shared, not copied). */
  private eigenBlock(i: number, f: (eigenvalue: number) => number): EigenBlock {
    const x = this.eigenOf()[i]!;
    const { k, c } = this.parts[i]!;
    const d = new Float64Array(k * c);
    for (let r = 0; r < k; r++) for (let q = 0; q < c; q++) d[r * c + q] = f(x.lA[r]! * x.lG[q]!);
    return new EigenBlock(k, c, x.uA, x.uG, d);
  }
}

const SIDES = ['a', 'g'] as const;

/** A part's factors as float32 device tensors (inside the caller's tidy scope); each formed from its rows (RᵀR) when it has them. */
function deviceFactors(f: KroneckerPart): { a: tf.Tensor2D; g: tf.Tensor2D } {
  const device = (side: FactorSide) => {
    const rows = rowsOf(f, side);
    const n = factorWidth(f, side);
    if (!rows) return tf.tensor2d(new Float32Array(side === 'a' ? f.a : f.g), [n, n]);
    return tf.tidy(() => {
      const r = tf.tensor2d(new Float32Array(rows), [rows.length / n, n]);
      return tf.matMul(r, r, true, false) as tf.Tensor2D;
    });
  };
  return { a: device('a'), g: device('g') };
}

/**
 * R (m×n) of a part's factor on `side` when it is used through its rows: a wide factor with
 * rows, as computed by the library (F = RᵀR is then never formed by the algebra here: 8 MiB of
 * rows against a 128 MiB A at k = 4,097, m = 256).
 */
function rowsOf(f: KroneckerPart, side: FactorSide): Float64Array | null {
  return f.exact ? null : (factorRowsOf(f, side) ?? null);
}

/** The rows R of `side` as a float32 device tensor [m, n] (inside the caller's tidy scope). */
function deviceRows(rows: Float64Array, n: number): tf.Tensor2D {
  return tf.tensor2d(new Float32Array(rows), [rows.length / n, n]);
}

/** A X on the device for X [k, c]: Rᵀ(R X) when A is held as its rows (2mkc flops instead of k²c). */
function timesA(f: KroneckerPart, x: tf.Tensor2D): tf.Tensor2D {
  const rows = rowsOf(f, 'a');
  if (!rows) return tf.matMul(tf.tensor2d(new Float32Array(f.a), [f.k, f.k]), x);
  const r = deviceRows(rows, f.k);
  return tf.matMul(r, tf.matMul(r, x), true, false);
}

/** X G on the device for X [k, c]: (X R_Gᵀ) R_G when G is held as its rows (2mkc flops instead of kc²). */
function timesG(f: KroneckerPart, x: tf.Tensor2D): tf.Tensor2D {
  const rows = rowsOf(f, 'g');
  if (!rows) return tf.matMul(x, tf.tensor2d(new Float32Array(f.g), [f.c, f.c]));
  const r = deviceRows(rows, f.c);
  return tf.matMul(tf.matMul(x, r, false, true), r);
}

/** tr F of `side` (‖R‖²_F from rows). */
function traceOf(f: KroneckerPart, side: FactorSide): number {
  const rows = rowsOf(f, side);
  if (rows) return frobeniusSquaredHost(rows);
  return side === 'a' ? traceHost(f.a, f.k) : traceHost(f.g, f.c);
}

/** ‖F‖²_F of `side` (‖RRᵀ‖²_F from rows: the m×m Gram matrix has F's non-zero spectrum). */
function frobeniusSquaredOf(f: KroneckerPart, side: FactorSide): number {
  const rows = rowsOf(f, side);
  if (!rows) return frobeniusSquaredHost(side === 'a' ? f.a : f.g);
  const n = factorWidth(f, side);
  const m = rows.length / n;
  return frobeniusSquaredHost(gemm(rows, m, n, transposeHost(rows, m, n), m));
}

/** diag F of `side` (column sums of R∘R from rows). */
function diagonalOf(f: KroneckerPart, side: FactorSide): Float64Array {
  const rows = rowsOf(f, side);
  const n = factorWidth(f, side);
  if (rows) return rowsDiagonal(rows, n);
  const x = side === 'a' ? f.a : f.g;
  return Float64Array.from({ length: n }, (_, i) => x[i * n + i]!);
}

/** F of `side` as an n×n array, formed from its rows for the caller alone when it has them (G on the device). */
function denseOf(f: KroneckerPart, side: FactorSide): Float64Array {
  const rows = rowsOf(f, side);
  if (!rows) return side === 'a' ? f.a : f.g;
  return side === 'a' ? gramOfRows(rows, f.k) : gramOfRowsOnDevice(rows, f.c);
}

/** An eigenvalue of A ⊗ G + regul·I, refused when it is not positive (a singular matrix without damping). */
function checkInvertible(x: number, regul: number): number {
  if (!(x > 0)) throw new NotPositiveDefiniteError(`PMatKFAC.solve: an eigenvalue + regul is ${x} (regul = ${regul}); use a regul > 0 to invert a singular matrix`);
  return x;
}

function checkDamping(d: unknown): 'exact' | 'pi' {
  if (d === undefined || d === 'exact' || d === 'pi') return d ?? 'exact';
  throw new InvalidArgumentError(`'damping' must be 'exact' or 'pi', received ${JSON.stringify(d)}`);
}

/** The π-damped factors A + π√λ I, G + √λ/π I; a separate bias block is damped exactly (B + λI). */
function piDamped(f: KroneckerPart, regul: number): { a: Float64Array; g: Float64Array } {
  if (f.exact) return { a: addIdentity(f.a, f.k, regul), g: f.g };
  const trA = traceOf(f, 'a') / f.k;
  const trG = traceOf(f, 'g') / f.c;
  const pi = trA > 0 && trG > 0 ? Math.sqrt(trA / trG) : 1;
  const root = Math.sqrt(regul);
  return { a: addIdentity(denseOf(f, 'a'), f.k, pi * root), g: addIdentity(denseOf(f, 'g'), f.c, root / pi) };
}

function inverse(a: Float64Array, n: number): Float64Array {
  const eye = new Float64Array(n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  return choleskySolve(cholesky(a, n), n, eye, n);
}
