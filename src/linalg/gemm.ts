/** Dense float64 matrix product, the public front. */
import { activeKernels } from './implementation.js';
import { checkGemmArguments } from './typescript/gemm.js';

/**
 * Computes C = A B for A (m×k) and B (k×n), all row-major float64 (not modified). Returns C
 * (m×n). Uses Eigen's blocked product in WebAssembly once `initLinalg` has loaded it.
 *
 * @example
 * gemm(new Float64Array([1, 2, 3, 4]), 2, 2, new Float64Array([1, 0, 0, 1]), 2); // [1, 2, 3, 4]
 */
export function gemm(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array {
  checkGemmArguments('gemm', a, m, k, b, n);
  if (m === 0 || n === 0 || k === 0) return new Float64Array(m * n);
  return activeKernels().gemm(a, m, k, b, n);
}
