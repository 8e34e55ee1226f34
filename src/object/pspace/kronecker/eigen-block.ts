/**
 * One layer block in a Kronecker eigenbasis: M_l = (U_A ⊗ U_G) diag(vec D) (U_A ⊗ U_G)ᵀ with
 * U_A (k×k), U_G (c×c) orthogonal and D (k×c) in the parameter layout [K, C] of CONVENTIONS.md.
 * EKFAC blocks are of this form, and so are the exact functions of KFAC blocks:
 * f(A ⊗ G + λI) = (U_A ⊗ U_G) diag(f(λ_A λ_Gᵀ + λ)) (U_A ⊗ U_G)ᵀ.
 *
 * When U_A is held as its range U_r (k×r, a wide factor decomposed through its rows, see
 * FactorBasis) and the k − r null rows of D share one row δ (c values), which holds for D =
 * f(λ_A λ_Gᵀ) since λ_A = 0 there, the block is used in the implicit form
 *   M_l = (U_r ⊗ U_G) diag(vec D_r) (U_r ⊗ U_G)ᵀ + P_⊥ ⊗ U_G diag(δ) U_Gᵀ,  P_⊥ = I − U_r U_rᵀ,
 * which costs O(k r c) per product instead of O(k² c) and never forms the null-space basis.
 * `uA` materialises U_A (the explicit completion) for consumers that need the basis itself.
 *
 * The block holds float64 host arrays only: solves and spectral functions run on them, and each
 * device product (mv, vTMv, diagonal, dense) uploads float32 copies of U_A (or U_r), U_G and D
 * for its own duration. Resident device copies of U and Uᵀ would be ≈ 2.2 GiB at d ≈ 10⁸
 * (784 → 4096×7 → 10) beside the float64 arrays; an upload costs O(k² + c²) against the
 * product's O(k c (k + c)).
 */
import { tf } from '../../../tf.js';
import { checkAlive } from '../../disposal.js';
import { gemm } from '../../../linalg/index.js';
import { FactorBasis } from './factor-basis.js';
import { sandwich, sandwichT, transposeHost } from './host-matrix.js';

/** The implicit form's pieces: z = k − r null rows, D_r the last r rows of D, δ the shared null row. */
interface ImplicitForm {
  readonly r: number;
  readonly ur: Float64Array;
  readonly dRange: Float64Array;
  readonly dNull: Float64Array;
}

type Device =
  | { kind: 'explicit'; uA: tf.Tensor2D; uAT: tf.Tensor2D; uG: tf.Tensor2D; uGT: tf.Tensor2D; d: tf.Tensor2D }
  | { kind: 'implicit'; ur: tf.Tensor2D; urT: tf.Tensor2D; uG: tf.Tensor2D; uGT: tf.Tensor2D; dRange: tf.Tensor2D; dNull: tf.Tensor2D; nullZero: boolean };

export class EigenBlock {
  readonly k: number;
  readonly c: number;
  readonly basis: FactorBasis;
  readonly uG: Float64Array;
  readonly d: Float64Array;
  private readonly implicit: ImplicitForm | null;
  /** Whether the implicit form's null rows are zero (the P_⊥ term then vanishes). */
  private readonly nullZero: boolean;
  private alive = true;

  /** Takes ownership of the arrays; `uA` is U_A (k×k row-major) or a FactorBasis. */
  constructor(k: number, c: number, uA: Float64Array | FactorBasis, uG: Float64Array, d: Float64Array) {
    this.k = k;
    this.c = c;
    this.basis = uA instanceof FactorBasis ? uA : FactorBasis.explicit(uA, k);
    this.uG = uG;
    this.d = d;
    this.implicit = implicitForm(this.basis, c, d);
    this.nullZero = this.implicit?.dNull.every((x) => x === 0) ?? true;
  }

  /** U_A (k×k row-major, eigenvectors in columns); materialises the null-space basis of an implicit block. */
  get uA(): Float64Array {
    return this.basis.full();
  }

  /** True when the block runs in the implicit form (U_A held as its range). */
  get isImplicit(): boolean {
    return this.implicit !== null;
  }

  /** Float32 device copies of the block's arrays, made in the caller's tidy scope (released with it). */
  private get t(): Device {
    // Every eigenblock belongs to a PMatEKFAC (KFAC's inverses and powers are EKFACs).
    checkAlive(this.alive, 'PMatEKFAC');
    const { k, c } = this;
    const im = this.implicit;
    const g = tf.tensor2d(new Float32Array(this.uG), [c, c]);
    if (im) {
      const ur = tf.tensor2d(new Float32Array(im.ur), [k, im.r]);
      return {
        kind: 'implicit', ur, urT: tf.transpose(ur), uG: g, uGT: tf.transpose(g),
        dRange: tf.tensor2d(new Float32Array(im.dRange), [im.r, c]), dNull: tf.tensor2d(new Float32Array(im.dNull), [1, c]),
        nullZero: this.nullZero,
      };
    }
    const a = tf.tensor2d(new Float32Array(this.basis.full()), [k, k]);
    return { kind: 'explicit', uA: a, uAT: tf.transpose(a), uG: g, uGT: tf.transpose(g), d: tf.tensor2d(new Float32Array(this.d), [k, c]) };
  }

  /** A block with the same eigenbasis and another diagonal (the arrays are shared, read-only). */
  withDiagonal(d: Float64Array): EigenBlock {
    return new EigenBlock(this.k, this.c, this.basis, this.uG, d);
  }

  /** M_l v for the layer's slice v (flat [k·c]). */
  mv(v: tf.Tensor): tf.Tensor1D {
    return tf.tidy(() => {
      const t = this.t;
      const x = v.reshape([this.k, this.c]);
      if (t.kind === 'explicit') {
        const w = tf.mul(tf.matMul(tf.matMul(t.uAT, x), t.uG), t.d);
        return tf.matMul(tf.matMul(t.uA, w), t.uGT).reshape([-1]) as tf.Tensor1D;
      }
      const coords = tf.matMul(t.urT, x); // U_rᵀ V
      let out = tf.matMul(tf.matMul(t.ur, tf.mul(tf.matMul(coords, t.uG), t.dRange)), t.uGT);
      if (!t.nullZero) {
        const nullPart = tf.sub(x, tf.matMul(t.ur, coords)); // P_⊥ V
        out = tf.add(out, tf.matMul(tf.mul(tf.matMul(nullPart, t.uG), t.dNull), t.uGT));
      }
      return out.reshape([-1]) as tf.Tensor1D;
    });
  }

  /** vᵀ M_l v as a scalar tensor. */
  vTMv(v: tf.Tensor): tf.Scalar {
    return tf.tidy(() => {
      const t = this.t;
      const x = v.reshape([this.k, this.c]);
      if (t.kind === 'explicit') return tf.sum(tf.mul(tf.square(tf.matMul(tf.matMul(t.uAT, x), t.uG)), t.d)) as tf.Scalar;
      const coords = tf.matMul(t.urT, x);
      let s = tf.sum(tf.mul(tf.square(tf.matMul(coords, t.uG)), t.dRange));
      if (!t.nullZero) s = tf.add(s, tf.sum(tf.mul(tf.square(tf.matMul(tf.sub(x, tf.matMul(t.ur, coords)), t.uG)), t.dNull)));
      return s as tf.Scalar;
    });
  }

  /** diag(M_l) = vec((U_A∘U_A) D (U_G∘U_G)ᵀ); implicitly diag(P_⊥) = 1 − Σ_j U_r[a, j]². */
  diagonal(): tf.Tensor1D {
    return tf.tidy(() => {
      const t = this.t;
      if (t.kind === 'explicit') return tf.matMul(tf.matMul(tf.square(t.uA), t.d), tf.square(t.uGT)).reshape([-1]) as tf.Tensor1D;
      const ur2 = tf.square(t.ur);
      let out = tf.matMul(tf.matMul(ur2, t.dRange), tf.square(t.uGT));
      if (!t.nullZero) {
        const nullDiag = tf.sub(1, tf.sum(ur2, 1, true)); // [k, 1]
        out = tf.add(out, tf.mul(nullDiag, tf.matMul(t.dNull, tf.square(t.uGT))));
      }
      return out.reshape([-1]) as tf.Tensor1D;
    });
  }

  /** The dense block [k·c, k·c]. */
  dense(): tf.Tensor2D {
    return tf.tidy(() => {
      const t = this.t;
      const { k, c } = this;
      const n = k * c;
      const kron = (a: tf.Tensor2D, b: tf.Tensor2D) => {
        const [p, q] = a.shape;
        return tf.mul(a.reshape([p, 1, q, 1]), b.reshape([1, c, 1, c])).reshape([p * c, q * c]) as tf.Tensor2D;
      };
      if (t.kind === 'explicit') {
        const q = kron(t.uA, t.uG);
        return tf.matMul(tf.mul(q, t.d.reshape([1, n])), tf.transpose(q)) as tf.Tensor2D;
      }
      const q = kron(t.ur, t.uG); // [k·c, r·c]
      let out = tf.matMul(tf.mul(q, t.dRange.reshape([1, -1])), tf.transpose(q));
      if (!t.nullZero) {
        const projector = tf.sub(tf.eye(k), tf.matMul(t.ur, t.urT)) as tf.Tensor2D;
        const g = tf.matMul(tf.mul(t.uG, t.dNull), t.uGT) as tf.Tensor2D;
        out = tf.add(out, kron(projector, g));
      }
      return out as tf.Tensor2D;
    });
  }

  /**
   * U_A (f(D) ∘ (U_Aᵀ V U_G)) U_Gᵀ in float64, for f given per entry of D. In the implicit
   * form f is evaluated once per column on the null rows (they share their value δ), with the
   * index of the first null row.
   */
  applyHost(v: Float64Array, f: (dEntry: number, index: number) => number): Float64Array {
    const im = this.implicit;
    if (!im) {
      const w = sandwichT(this.basis.full(), this.k, v, this.c, this.uG);
      for (let i = 0; i < w.length; i++) w[i] = w[i]! * f(this.d[i]!, i);
      return sandwich(this.basis.full(), this.k, w, this.c, this.uG);
    }
    const { k, c } = this;
    const z = k - im.r;
    const urT = transposeHost(im.ur, k, im.r);
    const coords = gemm(urT, im.r, k, v, c); // U_rᵀ V
    const nullPart = gemm(im.ur, k, im.r, coords, c); // U_r U_rᵀ V, turned into P_⊥ V below
    for (let i = 0; i < nullPart.length; i++) nullPart[i] = v[i]! - nullPart[i]!;
    const uGT = transposeHost(this.uG, c, c);
    const w = gemm(coords, im.r, c, this.uG, c);
    for (let i = 0; i < w.length; i++) w[i] = w[i]! * f(im.dRange[i]!, z * c + i);
    const out = gemm(im.ur, k, im.r, gemm(w, im.r, c, uGT, c), c);
    const fNull = Array.from(im.dNull, (x, j) => f(x, j));
    if (fNull.every((x) => x === fNull[0])) {
      // One value s on every null row (a damped solve: 1/λ): U_G diag(s) U_Gᵀ = s·I, so the
      // term is s·P_⊥V, without the two k×c×c products (2·137 GFlop per layer at k = c = 4,096).
      const s = fNull[0]!;
      if (s !== 0) for (let i = 0; i < out.length; i++) out[i] = out[i]! + s * nullPart[i]!;
    } else {
      const p = gemm(nullPart, k, c, this.uG, c);
      for (let i = 0; i < k; i++) for (let j = 0; j < c; j++) p[i * c + j] = p[i * c + j]! * fNull[j]!;
      const back = gemm(p, k, c, uGT, c);
      for (let i = 0; i < out.length; i++) out[i] = out[i]! + back[i]!;
    }
    return out;
  }

  /** Marks the block disposed (it holds no tensor). */
  dispose(): void {
    this.alive = false;
  }
}

/**
 * The implicit form when the basis holds only its range and the null rows of D (the first
 * k − r) are all equal; null otherwise (the block then materialises U_A).
 */
function implicitForm(basis: FactorBasis, c: number, d: Float64Array): ImplicitForm | null {
  const z = basis.nullity;
  if (z === 0) return null;
  for (let i = 1; i < z; i++) {
    for (let j = 0; j < c; j++) if (d[i * c + j] !== d[j]) return null;
  }
  return { r: basis.rank, ur: basis.range, dRange: d.subarray(z * c), dNull: d.slice(0, c) };
}
