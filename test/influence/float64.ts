/**
 * Float64 references for the influence and Laplace tests: brute-force per-example loss
 * gradients (tf.variableGrads through tfjs-layers' own forward, one example at a time) and a
 * plain Gaussian-elimination solve, independent of the library's engine and linear algebra.
 */
import { tf } from '../../src/tf.js';
import type { LayerCollection } from '../../src/layers/layer-collection.js';
import { flatGradient } from '../support/reference.js';

/** ∇θ ℓ(x_i, y_i) per example: cross-entropy on logits, or ‖f − y‖²/(2σ²) for regression. */
export function perExampleLossGradients(
  model: tf.LayersModel,
  lc: LayerCollection,
  batches: ReadonlyArray<{ xs: tf.Tensor; ys: tf.Tensor }>,
  variant: 'classif_logits' | 'regression' = 'classif_logits',
  sigma2 = 1,
): Float64Array[] {
  const out: Float64Array[] = [];
  for (const { xs, ys } of batches) {
    const n = xs.shape[0]!;
    for (let i = 0; i < n; i++) {
      out.push(
        flatGradient(lc, () =>
          tf.tidy(() => {
            const x = tf.slice(xs, [i], [1]);
            const f = (model.apply(x, { training: false }) as tf.Tensor).reshape([1, -1]);
            if (variant === 'regression') return tf.div(tf.sum(tf.square(tf.sub(f, tf.slice(ys, [i], [1]).reshape(f.shape)))), 2 * sigma2) as tf.Scalar;
            const y = tf.slice(ys, [i], [1]).reshape([1]);
            return tf.neg(tf.sum(tf.mul(tf.oneHot(tf.cast(y, 'int32'), f.shape[1]!), tf.logSoftmax(f)))) as tf.Scalar;
          }),
        ),
      );
    }
  }
  return out;
}

/** Solves A X = B (A n×n row-major, B n×m row-major) by Gaussian elimination with partial pivoting. */
export function solveDense(a: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  const A = Float64Array.from(a);
  const X = Float64Array.from(b);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r * n + col]!) > Math.abs(A[piv * n + col]!)) piv = r;
    if (piv !== col) {
      for (let k = 0; k < n; k++) [A[col * n + k], A[piv * n + k]] = [A[piv * n + k]!, A[col * n + k]!];
      for (let k = 0; k < m; k++) [X[col * m + k], X[piv * m + k]] = [X[piv * m + k]!, X[col * m + k]!];
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = A[r * n + col]! / A[col * n + col]!;
      if (f === 0) continue;
      for (let k = col; k < n; k++) A[r * n + k]! -= f * A[col * n + k]!;
      for (let k = 0; k < m; k++) X[r * m + k]! -= f * X[col * m + k]!;
    }
  }
  for (let r = 0; r < n; r++) for (let k = 0; k < m; k++) X[r * m + k]! /= A[r * n + r]!;
  return X;
}

/** Log-determinant of a symmetric positive definite matrix (Gaussian elimination, no pivoting). */
export function logdetSPD(a: Float64Array, n: number): number {
  const A = Float64Array.from(a);
  let s = 0;
  for (let col = 0; col < n; col++) {
    const p = A[col * n + col]!;
    s += Math.log(p);
    for (let r = col + 1; r < n; r++) {
      const f = A[r * n + col]! / p;
      for (let k = col; k < n; k++) A[r * n + k]! -= f * A[col * n + k]!;
    }
  }
  return s;
}

/** gqᵀ (M + λI)⁻¹ gt for all pairs, M d×d float64: [nq][nt]. */
export function influenceReference(m: Float64Array, d: number, damping: number, queries: Float64Array[], train: Float64Array[]): number[][] {
  const a = Float64Array.from(m);
  for (let i = 0; i < d; i++) a[i * d + i]! += damping;
  const nt = train.length;
  const b = new Float64Array(d * nt);
  train.forEach((g, t) => g.forEach((v, k) => (b[k * nt + t] = v)));
  const x = solveDense(a, d, b, nt);
  return queries.map((q) => Array.from({ length: nt }, (_, t) => q.reduce((s, v, k) => s + v * x[k * nt + t]!, 0)));
}

/** max |a − b| / max |b| over all entries. */
export function relativeMaxError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}
