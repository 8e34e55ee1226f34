/**
 * Conjugate gradient for (M + λI) x = b with M symmetric positive semi-definite, given only the
 * product v ↦ M v (Hestenes & Stiefel 1952). Stops when ‖r‖ ≤ max(rtol·‖b‖, atol).
 */
import { tf } from '../tf.js';
import { DisposedError, InvalidArgumentError, NotPositiveDefiniteError } from '../errors.js';
import { checkOptions, describe } from '../object/arguments.js';
import { PVector } from '../object/pvector.js';

/** Options of the conjugate-gradient solver (`conjugateGradient`, matrix-free `solve`). */
export interface CGOptions {
  /** Damping λ ≥ 0. Default 0. */
  regul?: number;
  /** Relative tolerance on the residual norm. Default 1e-6. */
  rtol?: number;
  /** Absolute tolerance on the residual norm. Default 0. */
  atol?: number;
  /** Maximum number of iterations (each costs one product). Default 10·d capped at 1000. */
  maxIter?: number;
}

/** The solution of `conjugateGradient` with its convergence record. */
export interface CGResult {
  /** The approximate solution x of (M + λI) x = b (the caller disposes it). */
  x: PVector;
  /** Products v ↦ M v spent. */
  iterations: number;
  /** The final residual norm ‖b − (M + λI) x‖ (recursively updated). */
  residualNorm: number;
  /** Whether ‖r‖ ≤ max(rtol·‖b‖, atol) was reached within `maxIter` iterations. */
  converged: boolean;
}

/**
 * Solves (M + λI) x = b by conjugate gradient (Hestenes & Stiefel 1952) from the product
 * v ↦ M v alone, M symmetric positive semi-definite: each step x ← x + α p with
 * α = rᵀr / pᵀ(M + λI)p. Throws NotPositiveDefiniteError when a curvature pᵀ(M + λI)p ≤ 0.
 *
 * @example
 * ```ts
 * const F = await FIM({ model, loader, representation: PMatImplicit });
 * const { x, converged } = await conjugateGradient((v) => F.mv(v), g, { regul: 1e-3 });
 * ```
 */
export async function conjugateGradient(
  mv: (v: PVector) => Promise<PVector>,
  b: PVector,
  options: CGOptions = {},
): Promise<CGResult> {
  if (typeof mv !== 'function') throw new InvalidArgumentError(`conjugateGradient: 'mv' must be a function v => Promise<M v>, received ${describe(mv)}`);
  if (!(b instanceof PVector)) throw new InvalidArgumentError(`conjugateGradient: 'b' must be a PVector, received ${describe(b)}`);
  if (b.isDisposed) throw new DisposedError(`conjugateGradient: the PVector 'b' has been disposed`);
  const o = checkOptions(options, ['regul', 'rtol', 'atol', 'maxIter'], 'conjugate gradient') as CGOptions;
  const regul = o.regul ?? 0;
  const rtol = o.rtol ?? 1e-6;
  const atol = o.atol ?? 0;
  const d = b.layerCollection.numel();
  const maxIter = o.maxIter ?? Math.min(10 * d, 1000);
  for (const [name, v] of [['regul', regul], ['rtol', rtol], ['atol', atol]] as const) {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new InvalidArgumentError(`conjugate gradient: '${name}' must be a finite number ≥ 0, received ${describe(v)}`);
  }
  if (!(Number.isInteger(maxIter) && maxIter >= 1)) throw new InvalidArgumentError(`conjugate gradient: 'maxIter' must be an integer ≥ 1, received ${describe(maxIter)}`);
  const tol = Math.max(rtol * b.norm(), atol);
  let x = PVector.zeros(b.layerCollection);
  let r = b.clone();
  let p = b.clone();
  let rr = r.dot(r);
  let it = 0;
  try {
    while (Math.sqrt(rr) > tol && it < maxIter) {
      const mp = await mv(p);
      const ap = PVector.adopt(b.layerCollection, tf.tidy(() => tf.add(mp.data, tf.mul(p.data, regul)) as tf.Tensor1D));
      mp.dispose();
      const pap = p.dot(ap);
      if (!(pap > 0)) {
        ap.dispose();
        throw new NotPositiveDefiniteError(`conjugate gradient met a direction with pᵀ(M + λI)p = ${pap} ≤ 0; use a regul > 0`);
      }
      const alpha = rr / pap;
      const xNext = PVector.adopt(b.layerCollection, tf.tidy(() => tf.add(x.data, tf.mul(p.data, alpha)) as tf.Tensor1D));
      const rNext = PVector.adopt(b.layerCollection, tf.tidy(() => tf.sub(r.data, tf.mul(ap.data, alpha)) as tf.Tensor1D));
      ap.dispose();
      x.dispose();
      r.dispose();
      x = xNext;
      r = rNext;
      const rrNext = r.dot(r);
      const beta = rrNext / rr;
      rr = rrNext;
      const pNext = PVector.adopt(b.layerCollection, tf.tidy(() => tf.add(r.data, tf.mul(p.data, beta)) as tf.Tensor1D));
      p.dispose();
      p = pNext;
      it++;
    }
    return { x, iterations: it, residualNorm: Math.sqrt(rr), converged: Math.sqrt(rr) <= tol };
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    r.dispose();
    p.dispose();
  }
}
