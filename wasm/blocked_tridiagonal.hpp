// Blocked Householder tridiagonalisation (LAPACK dsytrd / dlatrd, lower storage), for
// eigen_linalg.cpp (one translation unit).
//
// Why blocked: the unblocked reduction (nn::tridiagonalize) reads and writes the whole
// trailing triangle at every step, 2 n^3 / 3 loads and as many stores, which is bound by memory
// bandwidth once the matrix leaves the cache (n >= 1024 here). Here a panel of kTridiagBlock
// steps only reads the trailing triangle (one symmetric matrix-vector product per step,
// corrected by the panel's pending reflectors), and the panel's rank-2 nb update
// A -= V W^T + W V^T is applied once, as a matrix product on the blocked SIMD kernel
// (Golub and Van Loan, Matrix Computations, 4th ed., section 8.3.4; Dongarra, Sorensen and
// Hammarling, J. Comput. Appl. Math. 27, 1989).
#pragma once
#include <Eigen/Dense>
#include <wasm_simd128.h>
#include <algorithm>
#include <cmath>
#include <vector>

#include "blocked_gemm.hpp"
#include "phase_timer.hpp"

namespace nn {

using Eigen::Index;

constexpr Index kTridiagBlock = 32;
// Column width of the trailing update blocks: the update touches the lower triangle and the
// diagonal blocks only.
constexpr Index kTridiagUpdateWidth = 128;

// y[s:n) = A(s:n, s:n) v[s:n) for the symmetric A whose lower triangle is stored
// (column-major n x n): each entry is read once and serves both its triangle positions.
// Four columns at a time, so that each load and store of y and each load of v serves four
// matrix entries.
__attribute__((noinline)) inline void symmetricProductLower(const double *a, Index n, Index s, const double *v,
                                                            double *y) {
  std::fill(y + s, y + n, 0.0);
  Index c = s;
  for (; c + 3 < n; c += 4) {
    const double *c0 = a + c * n, *c1 = c0 + n, *c2 = c1 + n, *c3 = c2 + n;
    const double v0 = v[c], v1 = v[c + 1], v2 = v[c + 2], v3 = v[c + 3];
    // The 4 x 4 diagonal block (lower part, mirrored).
    double s0 = c0[c] * v0 + c0[c + 1] * v1 + c0[c + 2] * v2 + c0[c + 3] * v3;
    double s1 = c0[c + 1] * v0 + c1[c + 1] * v1 + c1[c + 2] * v2 + c1[c + 3] * v3;
    double s2 = c0[c + 2] * v0 + c1[c + 2] * v1 + c2[c + 2] * v2 + c2[c + 3] * v3;
    double s3 = c0[c + 3] * v0 + c1[c + 3] * v1 + c2[c + 3] * v2 + c3[c + 3] * v3;
    const v128_t w0 = wasm_f64x2_splat(v0), w1 = wasm_f64x2_splat(v1), w2 = wasm_f64x2_splat(v2),
                 w3 = wasm_f64x2_splat(v3);
    v128_t a0 = wasm_f64x2_splat(0.0), a1 = a0, a2 = a0, a3 = a0;
    Index i = c + 4;
    for (; i + 1 < n; i += 2) {
      const v128_t x0 = wasm_v128_load(c0 + i), x1 = wasm_v128_load(c1 + i), x2 = wasm_v128_load(c2 + i),
                   x3 = wasm_v128_load(c3 + i);
      const v128_t vi = wasm_v128_load(v + i);
      v128_t yi = wasm_v128_load(y + i);
      yi = wasm_f64x2_add(yi, wasm_f64x2_add(wasm_f64x2_add(wasm_f64x2_mul(x0, w0), wasm_f64x2_mul(x1, w1)),
                                             wasm_f64x2_add(wasm_f64x2_mul(x2, w2), wasm_f64x2_mul(x3, w3))));
      wasm_v128_store(y + i, yi);
      a0 = wasm_f64x2_add(a0, wasm_f64x2_mul(x0, vi));
      a1 = wasm_f64x2_add(a1, wasm_f64x2_mul(x1, vi));
      a2 = wasm_f64x2_add(a2, wasm_f64x2_mul(x2, vi));
      a3 = wasm_f64x2_add(a3, wasm_f64x2_mul(x3, vi));
    }
    for (; i < n; ++i) {
      y[i] += c0[i] * v0 + c1[i] * v1 + c2[i] * v2 + c3[i] * v3;
      s0 += c0[i] * v[i];
      s1 += c1[i] * v[i];
      s2 += c2[i] * v[i];
      s3 += c3[i] * v[i];
    }
    auto lanes = [](v128_t x) { return wasm_f64x2_extract_lane(x, 0) + wasm_f64x2_extract_lane(x, 1); };
    y[c] += s0 + lanes(a0);
    y[c + 1] += s1 + lanes(a1);
    y[c + 2] += s2 + lanes(a2);
    y[c + 3] += s3 + lanes(a3);
  }
  for (; c < n; ++c) {
    const double *col = a + c * n;
    double acc = col[c] * v[c];
    for (Index i = c + 1; i < n; ++i) {
      y[i] += col[i] * v[c];
      acc += col[i] * v[i];
    }
    y[c] += acc;
  }
}

// x[s:n) -= sum_{p < count} (V_p[s:n) alpha_p + W_p[s:n) beta_p), V_p = v + p ld, W_p = w + p ld:
// the panel's pending rank-2 corrections of a column or of A v. Not inlined, so that V8
// optimises it after its first calls (the caller runs once per reduction).
__attribute__((noinline)) inline void subtractPanelTerms(double *x, Index s, Index n, const double *v,
                                                         const double *w, Index ld, Index count,
                                                         const double *alpha, const double *beta) {
  for (Index p = 0; p < count; ++p) {
    const double *vc = v + p * ld, *wc = w + p * ld;
    const v128_t a2 = wasm_f64x2_splat(alpha[p]), b2 = wasm_f64x2_splat(beta[p]);
    Index r = s;
    for (; r + 1 < n; r += 2) {
      const v128_t t = wasm_f64x2_add(wasm_f64x2_mul(wasm_v128_load(vc + r), a2), wasm_f64x2_mul(wasm_v128_load(wc + r), b2));
      wasm_v128_store(x + r, wasm_f64x2_sub(wasm_v128_load(x + r), t));
    }
    for (; r < n; ++r) x[r] -= vc[r] * alpha[p] + wc[r] * beta[p];
  }
}

// sw_p = W_p[s:n) . u[s:n) and sv_p = V_p[s:n) . u[s:n) for p < count.
__attribute__((noinline)) inline void panelDots(const double *v, const double *w, Index ld, Index count, Index s,
                                                Index n, const double *u, double *sw, double *sv) {
  for (Index p = 0; p < count; ++p) {
    const double *vc = v + p * ld, *wc = w + p * ld;
    v128_t aw = wasm_f64x2_splat(0.0), av = aw;
    Index r = s;
    for (; r + 1 < n; r += 2) {
      const v128_t ur = wasm_v128_load(u + r);
      aw = wasm_f64x2_add(aw, wasm_f64x2_mul(wasm_v128_load(wc + r), ur));
      av = wasm_f64x2_add(av, wasm_f64x2_mul(wasm_v128_load(vc + r), ur));
    }
    double tw = wasm_f64x2_extract_lane(aw, 0) + wasm_f64x2_extract_lane(aw, 1);
    double tv = wasm_f64x2_extract_lane(av, 0) + wasm_f64x2_extract_lane(av, 1);
    for (; r < n; ++r) {
      tw += wc[r] * u[r];
      tv += vc[r] * u[r];
    }
    sw[p] = tw;
    sv[p] = tv;
  }
}

// Householder tridiagonalisation A = Q T Q^T of the symmetric column-major `a` (lower triangle
// used), with the output layout of nn::tridiagonalize: d, e hold T, column k of `a` holds the
// essential part of v_k from row k+2 down (v_k[k+1] = 1), tau[k] its coefficient,
// H_k = I - tau_k v_k v_k^T.
inline void tridiagonalizeBlocked(double *a, Index n, double *d, double *e, double *tau) {
  const Index nb = kTridiagBlock;
  std::vector<double> vp(size_t(n) * nb), wp(size_t(n) * nb), y(n), left, right;
  std::vector<double> coefW(nb), coefV(nb);
  for (Index k0 = 0; k0 < n; k0 += nb) {
    const Index k1 = std::min(n, k0 + nb);
    std::fill(vp.begin(), vp.end(), 0.0);
    std::fill(wp.begin(), wp.end(), 0.0);
    for (Index j = k0; j < k1; ++j) {
      const Index i = j - k0;  // reflectors 0..i-1 of the panel are pending
      double *cj = a + j * n;
      // Column j of the current matrix: A(j:n, j) -= V(j:n, :) W(j, :)^T + W(j:n, :) V(j, :)^T.
      NN_TIME(kTimePanel);
      for (Index p = 0; p < i; ++p) {
        coefW[p] = wp[p * n + j];
        coefV[p] = vp[p * n + j];
      }
      subtractPanelTerms(cj, j, n, vp.data(), wp.data(), n, i, coefW.data(), coefV.data());
      d[j] = cj[j];
      if (j == n - 1) break;
      // Reflector H x = beta e_1 for x = A(j+1:n, j).
      const double alpha = cj[j + 1];
      double sigma = 0.0;
      for (Index r = j + 2; r < n; ++r) sigma += cj[r] * cj[r];
      double *v = vp.data() + i * n;
      double t = 0.0;
      if (sigma == 0.0) {
        e[j] = alpha;
        for (Index r = j + 2; r < n; ++r) cj[r] = 0.0;
      } else {
        const double norm = std::sqrt(alpha * alpha + sigma);
        const double beta = alpha <= 0.0 ? norm : -norm;
        t = (beta - alpha) / beta;
        const double scale = 1.0 / (alpha - beta);
        for (Index r = j + 2; r < n; ++r) cj[r] *= scale;
        e[j] = beta;
        v[j + 1] = 1.0;
        for (Index r = j + 2; r < n; ++r) v[r] = cj[r];
      }
      tau[j] = t;
      if (t == 0.0) continue;  // H = I: v and w stay zero
      // w = tau (A_j v - V (W^T v) - W (V^T v)) - (tau^2 / 2) (.. ^T v) v, A_j the trailing block
      // of the matrix at the start of the panel.
      {
        NN_TIME(kTimeSymv);
        symmetricProductLower(a, n, j + 1, v, y.data());
      }
      panelDots(vp.data(), wp.data(), n, i, j + 1, n, v, coefW.data(), coefV.data());
      subtractPanelTerms(y.data(), j + 1, n, vp.data(), wp.data(), n, i, coefW.data(), coefV.data());
      double *w = wp.data() + i * n;
      double yv = 0.0;
      for (Index r = j + 1; r < n; ++r) {
        w[r] = t * y[r];
        yv += w[r] * v[r];
      }
      const double half = -0.5 * t * yv;
      for (Index r = j + 1; r < n; ++r) w[r] += half * v[r];
    }
    if (k1 >= n) break;
    // Trailing update A(k1:n, k1:n) -= [V W] [W V]^T, on the lower triangle by column blocks.
    NN_TIME(kTimeRank2k);
    const Index m = n - k1, panel = k1 - k0;
    left.resize(size_t(m) * 2 * panel);
    for (Index p = 0; p < panel; ++p) {
      std::copy(vp.data() + p * n + k1, vp.data() + p * n + n, left.data() + p * m);
      std::copy(wp.data() + p * n + k1, wp.data() + p * n + n, left.data() + (panel + p) * m);
    }
    right.resize(size_t(2 * panel) * m);  // [W V]^T negated, 2 panel x m column-major
    for (Index c = 0; c < m; ++c) {
      for (Index p = 0; p < panel; ++p) {
        right[c * 2 * panel + p] = -wp[p * n + k1 + c];
        right[c * 2 * panel + panel + p] = -vp[p * n + k1 + c];
      }
    }
    for (Index c0 = 0; c0 < m; c0 += kTridiagUpdateWidth) {
      const Index width = std::min(kTridiagUpdateWidth, m - c0);
      gemmAccumulate(m - c0, width, 2 * panel, left.data() + c0, m, right.data() + c0 * 2 * panel, 2 * panel,
                     a + (k1 + c0) * n + (k1 + c0), n);
    }
  }
}

}  // namespace nn
