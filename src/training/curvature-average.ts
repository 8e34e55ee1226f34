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
 * The averages and eigendecompositions are float64 host arrays; the per-step products run on the
 * device in float32 (U_Aᵀ V U_G and back: two small matrix products per layer), from float32
 * copies made once per rebuild, so that a plain step costs a few matrix products.
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { PassSpec } from '../backend/pass.js';
import { eighSym } from '../linalg/index.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC, kfacEigenBlocks } from '../object/pspace/ekfac.js';
import { EigenBlock } from '../object/pspace/kronecker/eigen-block.js';
import { computeKroneckerFactors, type KroneckerFactors } from '../statistics/kronecker-factors.js';
import { kroneckerParts } from '../object/pspace/kronecker/parts.js';

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
  /** Device copies of the preconditioner: per part U_A, U_G and D [k, c] (or the diagonal), and 1/(D + λ) for the last λ. */
  private device: { parts: Array<{ uA: tf.Tensor2D; uG: tf.Tensor2D; d: tf.Tensor2D }>; diag: tf.Tensor1D | null; inverse: tf.Tensor[] | null; damping: number } | null = null;

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
      this.releaseDevice();
      const moments = await this.secondMoments(spec);
      this.basisDiagonal = this.basisDiagonal!.map((d, i) => mix(d, moments[i]!, this.decay));
      this.parts = this.parts!.map((p, i) => ({ ...p, d: this.basisDiagonal![i]! }));
    }
  }

  /** Rebuilds the preconditioner from the current average (ekfac: a new eigenbasis and its diagonal from `spec`'s batch). */
  async refresh(spec: PassSpec): Promise<void> {
    this.releaseDevice();
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
    this.releaseDevice();
    this.basis?.dispose();
    this.basis = new PMatEKFAC(this.layerCollection, blocks.map((b) => new EigenBlock(b.k, b.c, new Float64Array(b.uA), new Float64Array(b.uG), new Float64Array(b.diagonal))), 'kfac', spec);
    this.basisDiagonal = blocks.map((b) => new Float64Array(b.diagonal));
    this.parts = this.basisParts();
  }

  /** Restores the kfac / diag preconditioner snapshot (loaded state). */
  restoreSnapshot(factors: KroneckerFactors[] | null, diagonal: Float64Array | null): void {
    this.releaseDevice();
    this.snapshotFactors = factors;
    this.snapshotDiagonal = diagonal;
    this.parts = factors ? eigenParts(this.layerCollection, factors) : null;
  }

  /** (M + λI)⁻¹ g with M the preconditioner's matrix, on the device (float32); g is [d]. */
  solve(g: tf.Tensor1D, damping: number): tf.Tensor1D {
    const dev = this.onDevice(damping);
    return tf.tidy(() => (this.kind === 'diag' ? tf.mul(g, dev.inverse![0]!) : this.applyParts(g, dev.inverse!))) as tf.Tensor1D;
  }

  /** vᵀMv with M the preconditioner's (undamped) matrix. */
  quadratic(v: tf.Tensor1D): number {
    const dev = this.onDevice(this.device?.damping ?? 0);
    const q = tf.tidy(() => tf.sum(tf.mul(v, this.kind === 'diag' ? tf.mul(v, dev.diag!) : this.applyParts(v, dev.parts.map((p) => p.d)))));
    const out = q.dataSync()[0]!;
    q.dispose();
    return out;
  }

  private applyParts(v: tf.Tensor1D, scales: tf.Tensor[]): tf.Tensor1D {
    const dev = this.device!;
    return tf.concat(
      this.parts!.map((p, i) => {
        const { uA, uG } = dev.parts[i]!;
        const w = tf.mul(tf.matMul(tf.matMul(uA, tf.slice(v, p.offset, p.k * p.c).reshape([p.k, p.c]), true), uG), scales[i]!);
        return tf.matMul(tf.matMul(uA, w), uG, false, true).reshape([-1]);
      }),
    ) as tf.Tensor1D;
  }

  /** The device copies, made at the first use after a rebuild; 1/(D + λ) remade when λ changes. */
  private onDevice(damping: number) {
    if (!this.device) {
      this.device = {
        parts: (this.parts ?? []).map((p) => ({
          uA: tf.tensor2d(new Float32Array(p.uA), [p.k, p.k]),
          uG: tf.tensor2d(new Float32Array(p.uG), [p.c, p.c]),
          d: tf.tensor2d(new Float32Array(p.d), [p.k, p.c]),
        })),
        diag: this.kind === 'diag' ? tf.tensor1d(new Float32Array(this.snapshotDiagonal!)) : null,
        inverse: null,
        damping,
      };
    }
    const dev = this.device!;
    if (!dev.inverse || dev.damping !== damping) {
      if (dev.inverse) tf.dispose(dev.inverse);
      // 1/(D + λ) formed in float64, then rounded once.
      dev.inverse =
        this.kind === 'diag'
          ? [tf.tensor1d(Float32Array.from(this.snapshotDiagonal!, (x) => 1 / (x + damping)))]
          : this.parts!.map((p) => tf.tensor2d(Float32Array.from(p.d, (x) => 1 / (x + damping)), [p.k, p.c]));
      dev.damping = damping;
    }
    return dev;
  }

  private releaseDevice(): void {
    if (!this.device) return;
    tf.dispose(this.device.parts.flatMap((p) => [p.uA, p.uG, p.d]));
    if (this.device.diag) this.device.diag.dispose();
    if (this.device.inverse) tf.dispose(this.device.inverse);
    this.device = null;
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
    this.releaseDevice();
    this.basis?.dispose();
    this.basis = null;
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
