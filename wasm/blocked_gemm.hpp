// Cache-blocked general matrix product on the SIMD128 kernel of simd_kernels.hpp, for
// eigen_linalg.cpp (one translation unit).
//
// subtractProduct runs at about the SIMD128 peak while its operands sit in cache; on large
// operands it streams them from memory once per 4 columns. Here the product is cut into
// blocks as in Goto and van de Geijn ("Anatomy of high-performance matrix multiplication",
// ACM TOMS 34(3), 2008): a kc x nc panel of B is packed once (negated, so that the kernel's
// C -= Y W computes C += A B), and an mc x kc block of A, packed contiguous, stays in L2 while
// the kernel sweeps every column of the panel.
#pragma once
#include <Eigen/Dense>
#include <algorithm>
#include <vector>

#include "simd_kernels.hpp"

namespace nn {

using Eigen::Index;

constexpr Index kGemmKc = 256;  // inner dimension per block: A block mc x kc = 128 KB at mc = 64
constexpr Index kGemmMc = 64;
constexpr Index kGemmNc = 1024;

// C (m x n, column-major, ldc) += A (m x k, column-major, lda) B (k x n, column-major, ldb).
inline void gemmAccumulate(Index m, Index n, Index k, const double *a, Index lda, const double *b, Index ldb,
                           double *c, Index ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  std::vector<double> bp(size_t(std::min(k, kGemmKc)) * size_t(std::min(n, kGemmNc)));
  std::vector<double> ap(size_t(std::min(m, kGemmMc)) * size_t(std::min(k, kGemmKc)));
  for (Index jc = 0; jc < n; jc += kGemmNc) {
    const Index nc = std::min(kGemmNc, n - jc);
    for (Index pc = 0; pc < k; pc += kGemmKc) {
      const Index kc = std::min(kGemmKc, k - pc);
      for (Index j = 0; j < nc; ++j) {
        const double *src = b + (jc + j) * ldb + pc;
        double *dst = bp.data() + j * kc;
        for (Index l = 0; l < kc; ++l) dst[l] = -src[l];
      }
      for (Index ic = 0; ic < m; ic += kGemmMc) {
        const Index mc = std::min(kGemmMc, m - ic);
        for (Index l = 0; l < kc; ++l) {
          const double *src = a + (pc + l) * lda + ic;
          std::copy(src, src + mc, ap.data() + l * mc);
        }
        subtractProduct(c + jc * ldc + ic, ldc, mc, nc, ap.data(), mc, bp.data(), kc);
      }
    }
  }
}

// C (m x n, column-major, ldc) = A B.
inline void gemmAssign(Index m, Index n, Index k, const double *a, Index lda, const double *b, Index ldb, double *c,
                       Index ldc) {
  for (Index j = 0; j < n; ++j) std::fill(c + j * ldc, c + j * ldc + m, 0.0);
  gemmAccumulate(m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace nn
