/**
 * Centering of the empirical tangent kernel (statistics/tangent-kernel.ts computes K).
 */

/**
 * Centering in place: K^c[o,i,o',j] = ⟨∇f_o(x_i) − μ_o, ∇f_o'(x_j) − μ_o'⟩ with
 * μ_o = (1/n) Σ_i ∇f_o(x_i), i.e. C K C with C = I − 11ᵀ/n on both example axes of every
 * (o, o') block: K_ij − r_i − c_j + m (row means, column means and mean of the block), in
 * float64. The absolute error of each entry is that of K, so the relative accuracy of K^c is
 * that of K times ‖K‖/‖K^c‖.
 */
export function centerKernel(values: Float64Array, outputs: number, n: number): void {
  const size = outputs * n;
  const rowMean = new Float64Array(n);
  const colMean = new Float64Array(n);
  for (let o = 0; o < outputs; o++) {
    for (let p = 0; p < outputs; p++) {
      rowMean.fill(0);
      colMean.fill(0);
      let mean = 0;
      for (let i = 0; i < n; i++) {
        const base = (o * n + i) * size + p * n;
        for (let j = 0; j < n; j++) {
          const k = values[base + j]!;
          rowMean[i]! += k / n;
          colMean[j]! += k / n;
        }
      }
      for (let i = 0; i < n; i++) mean += rowMean[i]! / n;
      for (let i = 0; i < n; i++) {
        const base = (o * n + i) * size + p * n;
        for (let j = 0; j < n; j++) values[base + j]! += mean - rowMean[i]! - colMean[j]!;
      }
    }
  }
}
