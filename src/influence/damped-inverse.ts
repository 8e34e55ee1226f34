/**
 * (F + λI)⁻¹ applied to many vectors at once, for every representation the influence functions
 * and the Laplace predictive accept: through the eigendecomposition of a stored matrix
 * (CurvatureSpectrum: exact, no pass over the data), or by conjugate gradient for PMatImplicit,
 * one pass over the data per iteration for all vectors together (each vector its own step
 * sizes, Hestenes & Stiefel 1952).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, NotPositiveDefiniteError } from '../errors.js';
import type { PMatBase } from '../object/pspace/pmat.js';
import { PMatImplicit } from '../object/pspace/implicit.js';
import { PFMapDense } from '../object/map/dense.js';
import { describe } from '../object/arguments.js';
import { CurvatureSpectrum, SPECTRAL_REPRESENTATIONS } from './curvature-spectrum.js';

/** The representations (F + λI)⁻¹ works with. */
export const INVERTIBLE_REPRESENTATIONS = `${SPECTRAL_REPRESENTATIONS} or PMatImplicit`;

/** Conjugate-gradient settings for PMatImplicit. */
export interface ImplicitSolveOptions {
  /** Relative residual tolerance per vector. Default 1e-6. */
  rtol?: number;
  /** Iterations (passes over the data) at most. Default 100. */
  maxIter?: number;
}

export class DampedInverse {
  private readonly spectrum: CurvatureSpectrum | null;
  private readonly implicit: PMatImplicit | null;
  private readonly cg: Required<ImplicitSolveOptions>;

  private constructor(spectrum: CurvatureSpectrum | null, implicit: PMatImplicit | null, cg: Required<ImplicitSolveOptions>) {
    this.spectrum = spectrum;
    this.implicit = implicit;
    this.cg = cg;
  }

  /** For `matrix` (not taken over). Throws InvalidArgumentError naming `where` for another representation. */
  static of(matrix: PMatBase, where: string, cg: ImplicitSolveOptions = {}): DampedInverse {
    const settings = { rtol: cg.rtol ?? 1e-6, maxIter: cg.maxIter ?? 100 };
    if (matrix instanceof PMatImplicit) return new DampedInverse(null, matrix, settings);
    if (!CurvatureSpectrum.supports(matrix)) {
      throw new InvalidArgumentError(`${where}: cannot apply (F + λI)⁻¹ with ${describe(matrix)}; use ${INVERTIBLE_REPRESENTATIONS}`);
    }
    return new DampedInverse(CurvatureSpectrum.of(matrix, where), null, settings);
  }

  /** The spectrum of a stored matrix, or null for PMatImplicit. */
  get eigen(): CurvatureSpectrum | null {
    return this.spectrum;
  }

  /** Rows of (F + damping·I)⁻¹ Vᵀ for V [R, d]: a new [R, d] tensor. */
  async apply(rows: tf.Tensor2D, damping: number): Promise<tf.Tensor2D> {
    if (this.spectrum) return this.spectrum.apply(rows, (x) => 1 / positive(x + damping, damping));
    return this.solveByCG(rows, damping);
  }

  /** v_r (F + damping·I)⁻¹ v_rᵀ for every row of V [R, d]: a new [R] tensor. */
  async quadratic(rows: tf.Tensor2D, damping: number): Promise<tf.Tensor1D> {
    if (this.spectrum) return this.spectrum.quadratic(rows, (x) => 1 / positive(x + damping, damping));
    const x = await this.solveByCG(rows, damping);
    try {
      return tf.tidy(() => tf.sum(tf.mul(x, rows), 1) as tf.Tensor1D);
    } finally {
      x.dispose();
    }
  }

  dispose(): void {
    this.spectrum?.dispose();
  }

  /** Lock-step conjugate gradient: one `mmap` (a pass over the data) per iteration for all rows. */
  private async solveByCG(b: tf.Tensor2D, damping: number): Promise<tf.Tensor2D> {
    const m = this.implicit!;
    const [rows, d] = b.shape;
    const rowDot = (u: tf.Tensor2D, v: tf.Tensor2D) => tf.tidy(() => tf.sum(tf.mul(u, v), 1, true));
    let x = tf.zeros([rows, d]) as tf.Tensor2D;
    let r = b.clone();
    let p = b.clone();
    let rr: tf.Tensor = rowDot(r, r);
    const tol2 = tf.tidy(() => tf.mul(rowDot(b, b), this.cg.rtol ** 2));
    try {
      for (let it = 0; it < this.cg.maxIter; it++) {
        if (tf.tidy(() => tf.all(tf.lessEqual(rr, tol2)).dataSync()[0]) === 1) break;
        const map = new PFMapDense(m.layerCollection, p.reshape([1, rows, d]) as tf.Tensor3D);
        const mp = await m.mmap(map).finally(() => map.dispose());
        const ap = tf.tidy(() => tf.add(mp.data.reshape([rows, d]), tf.mul(p, damping)) as tf.Tensor2D);
        mp.dispose();
        const pap = rowDot(p, ap);
        const active = tf.tidy(() => tf.greater(rr, tol2));
        const bad = tf.tidy(() => tf.any(tf.logicalAnd(active, tf.lessEqual(pap, 0))).dataSync()[0]);
        if (bad === 1) {
          tf.dispose([ap, pap, active]);
          throw new NotPositiveDefiniteError(`conjugate gradient met a direction with pᵀ(F + λI)p ≤ 0 (λ = ${damping}); use a damping > 0`);
        }
        // Converged rows keep their x (step 0).
        const alpha = tf.tidy(() => tf.where(active, tf.div(rr, tf.where(active, pap, tf.onesLike(pap))), tf.zerosLike(rr)));
        const next = tf.tidy(() => {
          const xn = tf.add(x, tf.mul(alpha, p));
          const rn = tf.sub(r, tf.mul(alpha, ap)) as tf.Tensor2D;
          const rrn = rowDot(rn, rn);
          const beta = tf.where(active, tf.div(rrn, tf.where(active, rr, tf.onesLike(rr))), tf.zerosLike(rr));
          return { xn, rn, rrn, pn: tf.add(rn, tf.mul(beta, p)) };
        });
        tf.dispose([x, r, p, rr, ap, pap, active, alpha]);
        x = next.xn as tf.Tensor2D;
        r = next.rn as tf.Tensor2D;
        p = next.pn as tf.Tensor2D;
        rr = next.rrn;
      }
      const out = x;
      x = null as unknown as tf.Tensor2D;
      return out;
    } finally {
      tf.dispose([r, p, rr, tol2]);
      if (x) x.dispose();
    }
  }
}

function positive(x: number, damping: number): number {
  if (!(x > 0)) throw new NotPositiveDefiniteError(`F + λI has an eigenvalue ${x} ≤ 0 (λ = ${damping}); use a damping λ > 0`);
  return x;
}

/** Checks a damping or precision argument: a finite number ≥ 0 (or > 0 when `strict`). */
export function checkNonNegative(value: unknown, name: string, where: string, strict = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (strict && value === 0)) {
    throw new InvalidArgumentError(`${where}: '${name}' must be a finite number ${strict ? '> 0' : '≥ 0'}, received ${typeof value === 'number' ? value : describe(value)}`);
  }
  return value;
}
