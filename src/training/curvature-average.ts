/**
 * The curvature state of the natural-gradient optimizer: an exponential moving average of the
 * curvature statistics (Martens & Grosse 2015, §5: F̄ ← ε·F̄ + (1 − ε)·F_batch, the first
 * batch taken as it is) and the damped preconditioner (F̄_snapshot + λI)⁻¹ refreshed on its
 * own schedule.
 *
 * - 'kfac': the Kronecker factors A, G of every layer are averaged; the preconditioner holds
 *   their eigendecompositions, so (A ⊗ G + λI)⁻¹ is exact for any λ (no π-damping).
 * - 'ekfac' (George et al. 2018): the factors are averaged as for KFAC; at each inverse refresh
 *   the eigenbasis of the averaged factors is taken, and the diagonal in that basis is the
 *   average of the per-example second moments (U_Aᵀ∇W U_G)² of each curvature batch, restarted
 *   from the current batch whenever the basis changes.
 * - 'diag': the diagonal Fisher is averaged.
 * Every product and solve runs on float64 host arrays.
 */
import type { LayerCollection } from '../layers/layer-collection.js';
import type { PassSpec } from '../backend/engine.js';
import { eighSym } from '../linalg/index.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC, kfacEigenBlocks } from '../object/pspace/ekfac.js';
import { EigenBlock } from '../object/pspace/kronecker/eigen-block.js';
import { computeKroneckerFactors, kroneckerParts, type KroneckerFactors } from '../object/pspace/kronecker/factors.js';
import { sandwich, sandwichT } from '../object/pspace/kronecker/host-matrix.js';

export type CurvatureKind = 'kfac' | 'ekfac' | 'diag';

/** One block of the preconditioner in a Kronecker eigenbasis: M = (U_A ⊗ U_G) diag(d) (U_A ⊗ U_G)ᵀ on [offset, offset + k·c). */
interface EigenPart {
  offset: number;
  k: number;
  c: number;
  uA: Float64Array;
  uG: Float64Array;
  d: Float64Array;
}

const mix = (old: Float64Array, fresh: Float64Array, decay: number): Float64Array => old.map((x, i) => decay * x + (1 - decay) * fresh[i]!);

export class CurvatureAverage {
  /** Averaged factors (kfac, ekfac) or diagonal (diag); null before the first update. */
  factors: KroneckerFactors[] | null = null;
  diagonal: Float64Array | null = null;
  /** The factors / diagonal the preconditioner was built from (kfac, diag). */
  snapshotFactors: KroneckerFactors[] | null = null;
  snapshotDiagonal: Float64Array | null = null;
  /** ekfac: the current eigenbasis as a PMatEKFAC whose updateDiag gives the batch's second moments. */
  basis: PMatEKFAC | null = null;
  /** ekfac: the averaged diagonal in the current basis, per block. */
  basisDiagonal: Float64Array[] | null = null;
  private parts: EigenPart[] | null = null;

  constructor(
    readonly kind: CurvatureKind,
    readonly layerCollection: LayerCollection,
    readonly decay: number,
  ) {}

  get hasPreconditioner(): boolean {
    return this.parts !== null || this.snapshotDiagonal !== null;
  }

  /** Folds one batch's statistics into the average (ekfac: also the diagonal in the current basis, unless the basis is about to change). */
  async update(spec: PassSpec, basisChangesNext: boolean): Promise<void> {
    if (this.kind === 'diag') {
      const d = await PMatDiag.compute(spec);
      const fresh = new Float64Array(d.values());
      d.dispose();
      this.diagonal = this.diagonal ? mix(this.diagonal, fresh, this.decay) : fresh;
      return;
    }
    const fresh = await computeKroneckerFactors(spec, 'expand', this.kind === 'kfac' ? 'PMatKFAC' : 'PMatEKFAC');
    this.factors = this.factors
      ? this.factors.map((f, i) => {
          const n = fresh[i]!;
          return { k: f.k, c: f.c, a: mix(f.a, n.a, this.decay), g: mix(f.g, n.g, this.decay), ...(f.bias ? { bias: mix(f.bias, n.bias!, this.decay) } : {}) };
        })
      : fresh;
    if (this.kind === 'ekfac' && this.basis && !basisChangesNext) {
      const moments = await this.secondMoments(spec);
      this.basisDiagonal = this.basisDiagonal!.map((d, i) => mix(d, moments[i]!, this.decay));
      this.parts = this.parts!.map((p, i) => ({ ...p, d: this.basisDiagonal![i]! }));
    }
  }

  /** Rebuilds the preconditioner from the current average (ekfac: a new eigenbasis and its diagonal from `spec`'s batch). */
  async refresh(spec: PassSpec): Promise<void> {
    if (this.kind === 'diag') {
      this.snapshotDiagonal = new Float64Array(this.diagonal!);
      return;
    }
    const factors = this.factors!;
    if (this.kind === 'kfac') {
      this.snapshotFactors = factors.map(copyFactors);
      this.parts = eigenParts(this.layerCollection, this.snapshotFactors);
      return;
    }
    this.basis?.dispose();
    this.basis = new PMatEKFAC(this.layerCollection, kfacEigenBlocks(factors), 'kfac', spec);
    this.basisDiagonal = await this.secondMoments(spec);
    this.parts = this.basisParts();
  }

  /** Restores an ekfac basis and its averaged diagonal (loaded state). */
  restoreBasis(blocks: ReadonlyArray<{ k: number; c: number; uA: Float64Array; uG: Float64Array; diagonal: Float64Array }>, spec: PassSpec): void {
    this.basis?.dispose();
    this.basis = new PMatEKFAC(this.layerCollection, blocks.map((b) => new EigenBlock(b.k, b.c, new Float64Array(b.uA), new Float64Array(b.uG), new Float64Array(b.diagonal))), 'kfac', spec);
    this.basisDiagonal = blocks.map((b) => new Float64Array(b.diagonal));
    this.parts = this.basisParts();
  }

  /** Restores the kfac / diag preconditioner snapshot (loaded state). */
  restoreSnapshot(factors: KroneckerFactors[] | null, diagonal: Float64Array | null): void {
    this.snapshotFactors = factors;
    this.snapshotDiagonal = diagonal;
    this.parts = factors ? eigenParts(this.layerCollection, factors) : null;
  }

  /** (M + λI)⁻¹ g with M the preconditioner's matrix, float64. */
  solve(g: Float64Array, damping: number): Float64Array {
    if (this.kind === 'diag') return g.map((x, i) => x / (this.snapshotDiagonal![i]! + damping));
    return this.applyParts(g, (d) => 1 / (d + damping));
  }

  /** vᵀMv with M the preconditioner's (undamped) matrix. */
  quadratic(v: Float64Array): number {
    if (this.kind === 'diag') return v.reduce((s, x, i) => s + this.snapshotDiagonal![i]! * x * x, 0);
    const mv = this.applyParts(v, (d) => d);
    return mv.reduce((s, x, i) => s + x * v[i]!, 0);
  }

  /** The averaged curvature as a new matrix (the caller owns it): PMatKFAC for kfac/ekfac factors, PMatDiag for diag. */
  average(): PMatKFAC | PMatDiag {
    if (this.kind === 'diag') return new PMatDiag(this.layerCollection, new Float64Array(this.diagonal!));
    return new PMatKFAC(this.layerCollection, this.factors!.map(copyFactors));
  }

  /** The preconditioner's matrix (without damping) as a new PMatEKFAC (the caller owns it). */
  preconditioner(): PMatEKFAC | PMatDiag {
    if (this.kind === 'diag') return new PMatDiag(this.layerCollection, new Float64Array(this.snapshotDiagonal!));
    const blocks = this.parts!.map((p) => new EigenBlock(p.k, p.c, p.uA, p.uG, new Float64Array(p.d)));
    return new PMatEKFAC(this.layerCollection, blocks, 'derived', null);
  }

  dispose(): void {
    this.basis?.dispose();
    this.basis = null;
  }

  private applyParts(g: Float64Array, f: (d: number) => number): Float64Array {
    const out = new Float64Array(g.length);
    for (const p of this.parts!) {
      const w = sandwichT(p.uA, p.k, g.subarray(p.offset, p.offset + p.k * p.c), p.c, p.uG);
      for (let i = 0; i < w.length; i++) w[i] = w[i]! * f(p.d[i]!);
      out.set(sandwich(p.uA, p.k, w, p.c, p.uG), p.offset);
    }
    return out;
  }

  private basisParts(): EigenPart[] {
    return this.basis!.eigenBlocks().map((b, i) => ({ offset: b.offset, k: b.k, c: b.c, uA: b.uA, uG: b.uG, d: this.basisDiagonal![i]! }));
  }

  /** The batch's per-example second moments in the current basis, per block (one pass). */
  private async secondMoments(spec: PassSpec): Promise<Float64Array[]> {
    await this.basis!.updateDiag(spec.loader);
    return this.basis!.eigenBlocks().map((b) => new Float64Array(b.diagonal));
  }
}

function copyFactors(f: KroneckerFactors): KroneckerFactors {
  return { k: f.k, c: f.c, a: new Float64Array(f.a), g: new Float64Array(f.g), ...(f.bias ? { bias: new Float64Array(f.bias) } : {}) };
}

/** Eigendecompositions of every Kronecker part (a separate bias block as B ⊗ [1]), eigenvalues clamped at 0 (the factors are PSD). */
function eigenParts(lc: LayerCollection, factors: KroneckerFactors[]): EigenPart[] {
  return kroneckerParts(factors, lc.layers.map((e) => e.offset)).map((p) => {
    const a = eighSym(p.a, p.k);
    const g = eighSym(p.g, p.c);
    const d = new Float64Array(p.k * p.c);
    for (let i = 0; i < p.k; i++) for (let j = 0; j < p.c; j++) d[i * p.c + j] = Math.max(a.values[i]!, 0) * Math.max(g.values[j]!, 0);
    return { offset: p.offset, k: p.k, c: p.c, uA: a.vectors, uG: g.vectors, d };
  });
}
