// Forms Q = H_0 H_1 ... H_{r-1} from the Householder vectors left by nn::tridiagonalize, for
// eigen_linalg.cpp (one translation unit).
//
// Why not Eigen's HouseholderSequence: Eigen 3.4 has no WebAssembly SIMD backend, so its
// matrix products run on compiler-vectorised scalar code (about 6-8 GFLOP/s in float64 here).
// This is the same blocked algorithm on the SIMD128 kernels of simd_kernels.hpp (about
// 12 GFLOP/s); Q is about a fifth of the eigensolver's work.
#pragma once
#include <Eigen/Dense>
#include <algorithm>
#include <vector>

#include "blocked_gemm.hpp"
#include "simd_kernels.hpp"
#include "phase_timer.hpp"

namespace nn {

using Eigen::Index;

constexpr Index kReflectorBlock = 32;

// Q (column-major n x n) = H_0 ... H_{r-1}, where H_k = I - tau[k] v_k v_k^T, v_k is zero above
// row k+1, one at row k+1 and column k of `v` below it (the layout of nn::tridiagonalize).
// Backward accumulation in blocks (GVL section 5.1.6): for the block of reflectors k0..k1-1,
// H_k0 ... H_k1-1 = I - Y T Y^T (the compact WY form, Schreiber and Van Loan 1989, with T
// from the recurrence of LAPACK dlarft), and Q <- (I - Y T Y^T) Q is two matrix products on the
// trailing (n-k0-1) x (n-k0-1) block, the only part of Q the block touches.
inline void formHouseholderQ(const double *v, const double *tau, Index n, Index r, double *q) {
  std::fill(q, q + n * n, 0.0);
  for (Index i = 0; i < n; ++i) q[i * n + i] = 1.0;
  std::vector<double> y, w, t;
  const Index blocks = (r + kReflectorBlock - 1) / kReflectorBlock;
  for (Index b = blocks - 1; b >= 0; --b) {
    const Index k0 = b * kReflectorBlock;
    const Index k1 = std::min(r, k0 + kReflectorBlock);
    // Pad the block to an even width with a zero reflector (tau = 0) to keep the kernels simple.
    const Index nb = (k1 - k0 + 1) & ~Index(1);
    const Index m = n - k0 - 1;
    y.assign(m * nb, 0.0);
    for (Index l = 0; l < k1 - k0; ++l) {
      const Index k = k0 + l;
      double *yl = y.data() + l * m;
      yl[l] = 1.0;
      for (Index i = k + 2; i < n; ++i) yl[i - k0 - 1] = v[k * n + i];
    }
    // T (nb x nb, column-major, upper): T_ll = tau_l, T(0:l, l) = -tau_l T(0:l, 0:l) Y^T y_l.
    t.assign(nb * nb, 0.0);
    for (Index l = 0; l < k1 - k0; ++l) {
      const double tl = tau[k0 + l];
      t[l * nb + l] = tl;
      if (tl == 0.0) continue;
      for (Index p = 0; p < l; ++p) {
        double s = 0.0;
        for (Index i = l; i < m; ++i) s += y[p * m + i] * y[l * m + i];
        t[l * nb + p] = -tl * s;
      }
      for (Index p = 0; p < l; ++p) {  // T(0:l, l) <- T(0:l, 0:l) T(0:l, l), upper triangular
        double s = 0.0;
        for (Index c = p; c < l; ++c) s += t[c * nb + p] * t[l * nb + c];
        t[l * nb + p] = s;
      }
    }
    double *qs = q + (k0 + 1) * n + (k0 + 1);
    w.resize(nb * m);
    transposedProduct(y.data(), m, nb, qs, n, w.data());
    // W <- T W, row by row from the top: row p of T W needs rows p.. of W, not yet overwritten.
    for (Index j = 0; j < m; ++j) {
      double *wj = w.data() + j * nb;
      for (Index p = 0; p < nb; ++p) {
        double s = 0.0;
        for (Index c = p; c < nb; ++c) s += t[c * nb + p] * wj[c];
        wj[p] = s;
      }
    }
    subtractProduct(qs, n, m, m, y.data(), m, w.data(), nb);
  }
}


// Y (m x nb, column-major, zero-padded to nb columns), its transpose Yt (nb x m) and T (nb x nb,
// column-major, upper) of the block of reflectors k0..k1-1 from nn::tridiagonalize, with
// H_k0 ... H_k1-1 = I - Y T Y^T acting on rows k0+1.. (compact WY). T follows the recurrence of
// LAPACK dlarft, T(0:l, l) = -tau_l T(0:l, 0:l) (Y^T Y)(0:l, l), with the Gram matrix Y^T Y
// formed by one product on the blocked kernel (nb^2 m flops that would otherwise run as scalar
// dot products).
inline void reflectorBlock(const double *v, const double *tau, Index n, Index k0, Index k1, Index nb,
                           std::vector<double> &y, std::vector<double> &yt, std::vector<double> &t,
                           std::vector<double> &gram) {
  const Index m = n - k0 - 1;
  y.assign(size_t(m) * nb, 0.0);
  for (Index l = 0; l < k1 - k0; ++l) {
    const Index k = k0 + l;
    double *yl = y.data() + l * m;
    yl[l] = 1.0;
    std::copy(v + k * n + k + 2, v + k * n + n, yl + l + 1);
  }
  yt.resize(size_t(nb) * m);
  for (Index i = 0; i < m; ++i) {
    for (Index l = 0; l < nb; ++l) yt[i * nb + l] = y[l * m + i];
  }
  gram.resize(size_t(nb) * nb);
  gemmAssign(nb, nb, m, yt.data(), nb, y.data(), m, gram.data(), nb);
  t.assign(size_t(nb) * nb, 0.0);
  for (Index l = 0; l < k1 - k0; ++l) {
    const double tl = tau[k0 + l];
    t[l * nb + l] = tl;
    if (tl == 0.0) continue;
    for (Index p = 0; p < l; ++p) {  // T(0:l, l) = -tau_l T(0:l, 0:l) G(0:l, l), T upper
      double s = 0.0;
      for (Index c = p; c < l; ++c) s += t[c * nb + p] * gram[l * nb + c];
      t[l * nb + p] = -tl * s;
    }
  }
}

// Reflectors per block of the back-transformation. Each block reads and writes all of Z twice
// (Y^T Z, then Z += Y W), so wider blocks halve that traffic; the cost is the T W product,
// 2 nb^2 n flops per block (2 n^2 nb in all, 6% of the 2 n^3 at nb = 128, n = 2,048).
constexpr Index kBackBlock = 128;

// Z (column-major n x n) <- H_0 ... H_{r-1} Z: the back-transformation of the tridiagonal
// eigenvectors Z to those of A (LAPACK dormtr). The blocks of reflectors are applied last
// first, each as Z[k0+1:, :] += Y ((-T) (Y^T Z[k0+1:, :])), three products on the blocked
// kernel. 2 n^3 flops against 4/3 n^3 for forming Q plus 2 n^3 for the product Q Z.
inline void applyHouseholderQ(const double *v, const double *tau, Index n, Index r, double *z) {
  constexpr Index nb = kBackBlock;
  std::vector<double> y, yt, t, gram, w, tw;
  const Index blocks = (r + nb - 1) / nb;
  for (Index b = blocks - 1; b >= 0; --b) {
    const Index k0 = b * nb;
    const Index k1 = std::min(r, k0 + nb);
    const Index m = n - k0 - 1;
    {
      NN_TIME(kTimeBackT);
      reflectorBlock(v, tau, n, k0, k1, nb, y, yt, t, gram);
      for (double &x : t) x = -x;
    }
    double *zs = z + (k0 + 1);
    w.resize(size_t(nb) * n);
    tw.resize(size_t(nb) * n);
    {
      NN_TIME(kTimeBackGemm);
      gemmAssign(nb, n, m, yt.data(), nb, zs, n, w.data(), nb);
    }
    {
      NN_TIME(kTimeBackTW);
      gemmAssign(nb, n, nb, t.data(), nb, w.data(), nb, tw.data(), nb);
    }
    NN_TIME(kTimeBackGemm);
    gemmAccumulate(m, n, nb, y.data(), m, tw.data(), nb, zs, n);
  }
}

}  // namespace nn
