/**
 * Shared fixtures of the spectral tests: a small MLP (d = 74) on seeded data, float64 dense
 * references, and host-side checks of eigenpairs against them.
 */
import { tf } from '../../src/tf.js';
import { LayerCollection, PVector, FVector } from '../../src/index.js';
import { eighSym } from '../../src/linalg/index.js';

/** Eigenvalues of a dense symmetric float64 matrix, ascending. */
export function eigenvalues(M: ArrayLike<number>, d: number): Float64Array {
  return eighSym(Float64Array.from(M), d).values;
}

/** The spectral norm of a symmetric matrix from its eigenvalues. */
export function spectralNorm(values: Float64Array): number {
  return Math.max(Math.abs(values[0]!), Math.abs(values[values.length - 1]!));
}

/** ‖M v − λ v‖ in float64 for the dense row-major M (d×d). */
export function residual(M: ArrayLike<number>, d: number, v: Float32Array | Float64Array, lambda: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) {
    let x = -lambda * v[i]!;
    for (let j = 0; j < d; j++) x += M[i * d + j]! * v[j]!;
    s += x * x;
  }
  return Math.sqrt(s);
}

export function vectorValues(v: PVector | FVector): Float32Array {
  return v.data.dataSync() as Float32Array;
}

/** A symmetric d×d matrix U diag(λ) Uᵀ with a seeded random orthogonal U. */
export function withSpectrum(lambda: ArrayLike<number>, seed = 1): Float64Array {
  const d = lambda.length;
  let s = seed;
  const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647 - 0.5;
  const B = Float64Array.from({ length: d * d }, rnd);
  const U = eighSym(Float64Array.from({ length: d * d }, (_, k) => B[k]! + B[(k % d) * d + Math.floor(k / d)]!), d).vectors;
  const M = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let x = 0;
      for (let t = 0; t < d; t++) x += U[i * d + t]! * lambda[t]! * U[j * d + t]!;
      M[i * d + j] = M[j * d + i] = x;
    }
  }
  return M;
}

/** A collection of exactly d parameters: one Dense layer in → out with bias (d = (in + 1)·out). */
export function collectionOfSize(inputs: number, outputs: number): { model: tf.Sequential; lc: LayerCollection } {
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [inputs], units: outputs })] });
  return { model, lc: LayerCollection.fromModel(model) };
}
