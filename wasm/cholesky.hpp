// Blocked Cholesky factorisation for eigen_linalg.cpp (one translation unit).
//
// Why not Eigen's LLT: its trailing update runs on compiler-vectorised scalar code in
// WebAssembly. This is the right-looking blocked algorithm (GVL algorithm 4.2.10) on row-major
// storage, whose trailing update A22 -= L21 L21^T runs on the SIMD kernel of simd_kernels.hpp.
#pragma once
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <vector>

#include "simd_kernels.hpp"

namespace nn {

using Eigen::Index;

constexpr Index kCholeskyBlock = 32;

// Factors the row-major symmetric n x n `a` (lower triangle read) into L L^T in place: on
// success the lower triangle holds L, the strict upper triangle is zero, and the result is -1.
// Otherwise the result is the first pivot k that is not positive and *pivot its value
// a_kk - sum_{j<k} l_kj^2 (as computed; NaN only after an overflow).
inline Index choleskyInPlace(double *a, Index n, double *pivot) {
  std::vector<double> y, w;
  for (Index k0 = 0; k0 < n; k0 += kCholeskyBlock) {
    const Index kb = std::min(kCholeskyBlock, n - k0);
    // Diagonal block, row by row (Cholesky-Banachiewicz): earlier blocks are already applied.
    for (Index i = k0; i < k0 + kb; ++i) {
      double *ri = a + i * n;
      for (Index j = k0; j <= i; ++j) {
        const double *rj = a + j * n;
        double s = ri[j];
        for (Index p = k0; p < j; ++p) s -= ri[p] * rj[p];
        if (j < i) {
          ri[j] = s / rj[j];
        } else if (s > 0.0) {
          ri[i] = std::sqrt(s);
        } else {
          *pivot = s;
          return i;
        }
      }
    }
    const Index m = n - k0 - kb;
    if (m == 0) break;
    // Panel L21 = A21 L11^-T: each row below the block is a forward substitution against L11.
    for (Index i = k0 + kb; i < n; ++i) {
      double *ri = a + i * n;
      for (Index j = k0; j < k0 + kb; ++j) {
        const double *rj = a + j * n;
        double s = ri[j];
        for (Index p = k0; p < j; ++p) s -= ri[p] * rj[p];
        ri[j] = s / rj[j];
      }
    }
    // A22 -= L21 L21^T on the lower triangle. The row-major lower triangle of A22 is the upper
    // triangle of the column-major view C (leading dimension n), and C(p, q) -= sum_l
    // L21(p, l) L21(q, l): Y = L21 packed column-major (m x kb), W = L21^T packed (kb x m).
    y.resize(m * kb);
    w.resize(kb * m);
    for (Index r = 0; r < m; ++r) {
      const double *row = a + (k0 + kb + r) * n + k0;
      for (Index l = 0; l < kb; ++l) y[l * m + r] = row[l];
      std::copy(row, row + kb, w.data() + r * kb);
    }
    double *c = a + (k0 + kb) * n + (k0 + kb);
    // Column panels of C, each down to its diagonal only (the upper triangle of C).
    for (Index q0 = 0; q0 < m; q0 += kCholeskyBlock) {
      const Index qb = std::min(kCholeskyBlock, m - q0);
      subtractProduct(c + q0 * n, n, q0 + qb, qb, y.data(), m, w.data() + q0 * kb, kb);
    }
  }
  for (Index i = 0; i < n; ++i) std::fill(a + i * n + i + 1, a + (i + 1) * n, 0.0);
  for (Index i = 0; i < n; ++i) {
    if (!std::isfinite(a[i * n + i])) {  // only an overflow gets here: report it as a pivot
      *pivot = a[i * n + i];
      return i;
    }
  }
  return -1;
}

}  // namespace nn
