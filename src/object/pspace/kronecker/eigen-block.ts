/**
 * One layer block in a Kronecker eigenbasis: M_l = (U_A ⊗ U_G) diag(vec D) (U_A ⊗ U_G)ᵀ with
 * U_A (k×k), U_G (c×c) orthogonal and D (k×c) in the parameter layout [K, C] of CONVENTIONS.md.
 * EKFAC blocks are of this form, and so are the exact functions of KFAC blocks:
 * f(A ⊗ G + λI) = (U_A ⊗ U_G) diag(f(λ_A λ_Gᵀ + λ)) (U_A ⊗ U_G)ᵀ.
 *
 * Host float64 copies serve solves and spectral functions; float32 device copies serve products.
 */
import { tf } from '../../../tf.js';
import { checkAlive } from '../../disposal.js';
import { sandwich, sandwichT } from './host-matrix.js';

export class EigenBlock {
  readonly k: number;
  readonly c: number;
  readonly uA: Float64Array;
  readonly uG: Float64Array;
  readonly d: Float64Array;
  private device: { uA: tf.Tensor2D; uAT: tf.Tensor2D; uG: tf.Tensor2D; uGT: tf.Tensor2D; d: tf.Tensor2D } | null;

  /** Takes ownership of the arrays. */
  constructor(k: number, c: number, uA: Float64Array, uG: Float64Array, d: Float64Array) {
    this.k = k;
    this.c = c;
    this.uA = uA;
    this.uG = uG;
    this.d = d;
    this.device = tf.tidy(() => {
      const a = tf.tensor2d(new Float32Array(uA), [k, k]);
      const g = tf.tensor2d(new Float32Array(uG), [c, c]);
      return { uA: a, uAT: tf.transpose(a), uG: g, uGT: tf.transpose(g), d: tf.tensor2d(new Float32Array(d), [k, c]) };
    });
  }

  private get t() {
    // Every eigenblock belongs to a PMatEKFAC (KFAC's inverses and powers are EKFACs).
    checkAlive(this.device !== null, 'PMatEKFAC');
    return this.device;
  }

  /** A block with the same eigenbasis and another diagonal (the arrays are shared, read-only). */
  withDiagonal(d: Float64Array): EigenBlock {
    return new EigenBlock(this.k, this.c, this.uA, this.uG, d);
  }

  /** U_Aᵀ V U_G for V [k, c] on the device. */
  project(v: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.matMul(tf.matMul(this.t.uAT, v.reshape([this.k, this.c])), this.t.uG));
  }

  /** M_l v for the layer's slice v (flat [k·c]). */
  mv(v: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => {
      const w = tf.mul(this.project(v), this.t.d);
      return tf.matMul(tf.matMul(this.t.uA, w), this.t.uGT).reshape([-1]) as tf.Tensor1D;
    });
  }

  /** vᵀ M_l v as a scalar tensor. */
  vTMv(v: tf.Tensor): tf.Scalar {
    return tf.tidy(() => tf.sum(tf.mul(tf.square(this.project(v)), this.t.d)) as tf.Scalar);
  }

  /** diag(M_l) = vec((U_A∘U_A) D (U_G∘U_G)ᵀ). */
  diagonal(): tf.Tensor1D {
    return tf.tidy(() => tf.matMul(tf.matMul(tf.square(this.t.uA), this.t.d), tf.square(this.t.uGT)).reshape([-1]) as tf.Tensor1D);
  }

  /** The dense block [k·c, k·c]. */
  dense(): tf.Tensor2D {
    return tf.tidy(() => {
      const n = this.k * this.c;
      const q = tf.mul(this.t.uA.reshape([this.k, 1, this.k, 1]), this.t.uG.reshape([1, this.c, 1, this.c])).reshape([n, n]);
      return tf.matMul(tf.mul(q, this.t.d.reshape([1, n])), tf.transpose(q)) as tf.Tensor2D;
    });
  }

  /** U_A (f(D) ∘ (U_Aᵀ V U_G)) U_Gᵀ in float64, for f given per entry of D. */
  applyHost(v: Float64Array, f: (dEntry: number, index: number) => number): Float64Array {
    const w = sandwichT(this.uA, this.k, v, this.c, this.uG);
    for (let i = 0; i < w.length; i++) w[i] = w[i]! * f(this.d[i]!, i);
    return sandwich(this.uA, this.k, w, this.c, this.uG);
  }

  dispose(): void {
    if (this.device) tf.dispose(Object.values(this.device));
    this.device = null;
  }
}
