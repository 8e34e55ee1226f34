// Symmetric tridiagonal eigensolver and Householder tridiagonalisation for eigen_linalg.cpp
// (one translation unit; see the comment at the top of eigen_linalg.cpp for the design).
#pragma once
#include <Eigen/Dense>
#include <wasm_simd128.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace nn {

using Eigen::Index;


// Rows of Q per panel. 16 rows x n columns of doubles is 128 KB at n = 1024 (L2-resident),
// and 16 doubles are 8 SIMD registers, so a running column can stay in registers.
constexpr int kPanel = 16;
// Rotations recorded before they are replayed on Q; bounds the extra memory (16 bytes each).
constexpr size_t kRotationChunk = size_t(1) << 18;

struct Sweep {
  int32_t start;   // first column pair (start, start+1)
  int32_t length;  // number of consecutive rotations (start..start+length-1)
  size_t offset;   // index of its first (c, s) pair in the chunk
};

struct RotationLog {
  std::vector<double> cs;  // interleaved c, s
  std::vector<Sweep> sweeps;
};

// Replays the recorded sweeps on Q (column-major n x n), kPanel rows at a time. Each panel is
// copied to a contiguous buffer P with P[k*kPanel + t] = Q(r + t, k): column k of the panel is
// then kPanel contiguous doubles, and the column carried from one rotation to the next stays
// in registers. A rotation acts on columns (k, k+1) as [q_k, q_k+1] <- [c q_k - s q_k+1, s q_k + c q_k+1].
inline void replayRotations(double *q, Index n, const RotationLog &log, double *panel) {
  for (Index r = 0; r < n; r += kPanel) {
    const Index rows = std::min<Index>(kPanel, n - r);
    for (Index k = 0; k < n; ++k) {
      double *dst = panel + k * kPanel;
      const double *src = q + k * n + r;
      for (int t = 0; t < kPanel; ++t) dst[t] = t < rows ? src[t] : 0.0;
    }
    for (const Sweep &sw : log.sweeps) {
      const double *cs = log.cs.data() + 2 * sw.offset;
      double *pk = panel + Index(sw.start) * kPanel;
      double carry[kPanel];
      for (int t = 0; t < kPanel; ++t) carry[t] = pk[t];
      for (int32_t i = 0; i < sw.length; ++i) {
        const double c = cs[2 * i], s = cs[2 * i + 1];
        double *next = pk + kPanel;
        for (int t = 0; t < kPanel; ++t) {
          const double x = carry[t], y = next[t];
          pk[t] = c * x - s * y;
          carry[t] = s * x + c * y;
        }
        pk = next;
      }
      for (int t = 0; t < kPanel; ++t) pk[t] = carry[t];
    }
    for (Index k = 0; k < n; ++k) {
      const double *src = panel + k * kPanel;
      double *dst = q + k * n + r;
      for (Index t = 0; t < rows; ++t) dst[t] = src[t];
    }
  }
}

// Wilkinson shift: the eigenvalue of the trailing 2x2 block [[d[m-1], e[m-1]], [e[m-1], d[m]]]
// closer to d[m] (Parlett, The Symmetric Eigenvalue Problem, section 8.9), written with hypot
// so that neither td^2 nor e^2 can overflow or underflow.
inline double wilkinsonShift(const double *d, const double *e, Index m) {
  const double td = 0.5 * (d[m - 1] - d[m]);
  const double em = e[m - 1];
  if (td == 0.0) return d[m] - std::abs(em);
  const double h = std::hypot(td, em);
  const double denom = td + (td > 0 ? h : -h);
  return d[m] - (em / denom) * em;
}

// Implicit symmetric QR step with shift mu on rows lo..hi of the tridiagonal (d, e), chasing
// the bulge down (Golub and Van Loan, Matrix Computations, 4th ed., algorithm 8.3.2). The
// rotation G_k = [[c, s], [-s, c]] in plane (k, k+1) is applied as T <- G_k^T T G_k and, when
// a log is given, recorded, so that the eigenvectors are Q G_1 G_2 ... after all sweeps.
inline void qrSweep(double *d, double *e, Index lo, Index hi, double mu, RotationLog *log) {
  double x = d[lo] - mu;
  double z = e[lo];
  const size_t offset = log ? log->cs.size() / 2 : 0;
  for (Index k = lo; k < hi; ++k) {
    const double r = std::hypot(x, z);
    double c = 1.0, s = 0.0;
    if (r != 0.0) { c = x / r; s = -z / r; }
    if (k > lo) e[k - 1] = r;  // the bulge is annihilated into e[k-1]
    const double a = d[k], b = e[k], cc = d[k + 1];
    const double cs2 = c * s, c2 = c * c, s2 = s * s;
    d[k] = a * c2 - 2.0 * b * cs2 + cc * s2;
    d[k + 1] = a * s2 + 2.0 * b * cs2 + cc * c2;
    e[k] = (a - cc) * cs2 + b * (c2 - s2);
    if (log) {
      log->cs.push_back(c);
      log->cs.push_back(s);
    }
    if (k + 1 < hi) {
      z = -s * e[k + 1];
      e[k + 1] *= c;
    }
    x = e[k];
  }
  if (log) log->sweeps.push_back(Sweep{int32_t(lo), int32_t(hi - lo), offset});
}

// The value in `sorted` closest to mu.
inline double nearest(const std::vector<double> &sorted, double mu) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), mu);
  if (it == sorted.end()) return sorted.back();
  if (it != sorted.begin() && mu - *(it - 1) < *it - mu) return *(it - 1);
  return *it;
}

// QR iterations on the tridiagonal (d, e) until it is diagonal; d then holds the eigenvalues
// (unsorted). Deflation is the normwise test of EISPACK tql2, |e_i| <= eps ||T||: the
// Householder reduction already perturbs A by eps ||A||, so a stricter, relative test (LAPACK
// dsteqr) only costs iterations. Each sweep is shifted by the Wilkinson shift, or, given the
// eigenvalues from a first pass, by the eigenvalue nearest to it: an exact eigenvalue of the
// block deflates it in one sweep in exact arithmetic, which in floating point cuts the
// rotations by about a quarter ("perfect shifts", Parlett, The Symmetric Eigenvalue Problem,
// section 8.13). Shifts only affect speed, never the backward stability of the rotations.
// With q, the rotations are replayed on Q (column-major n x n) to form the eigenvectors.
// Returns false after 30 n sweeps without convergence (the budget of LAPACK dsteqr).
inline bool tridiagonalQR(double *d, double *e, Index n, const std::vector<double> *shifts, double *q) {
  double normT = 0.0;
  for (Index i = 0; i < n; ++i) {
    normT = std::max(normT, std::abs(d[i]) + (i > 0 ? std::abs(e[i - 1]) : 0.0) + (i + 1 < n ? std::abs(e[i]) : 0.0));
  }
  const double tol = std::numeric_limits<double>::epsilon() * normT;
  RotationLog log;
  std::vector<double> panel;
  if (q) {
    log.cs.reserve(2 * kRotationChunk + 2 * n);
    panel.resize(size_t(n) * kPanel);
  }
  Index hi = n - 1;
  Index sweeps = 0;
  Index snappedAt = -1;  // hi of the last sweep shifted by a known eigenvalue
  while (hi > 0) {
    if (std::abs(e[hi - 1]) <= tol) {
      e[hi - 1] = 0.0;
      --hi;
      continue;
    }
    Index lo = hi - 1;  // start of the trailing unreduced block lo..hi
    while (lo > 0 && std::abs(e[lo - 1]) > tol) --lo;
    if (lo > 0) e[lo - 1] = 0.0;
    if (++sweeps > 30 * n) return false;
    double shift = wilkinsonShift(d, e, hi);
    // The eigenvalue of the trailing 2x2 block (the Wilkinson shift) lies within |e[hi-2]| of
    // an eigenvalue of the block (Weyl), so a known eigenvalue that close is at least as good
    // a shift. A farther one may belong to another block, and a fixed shift that is no
    // eigenvalue of this block could stall; after a snapped sweep that did not deflate, the
    // next sweep uses Wilkinson's shift, which always converges (Wilkinson 1968).
    const bool retry = snappedAt == hi;
    snappedAt = -1;
    if (shifts && hi - lo >= 2 && !retry) {
      const double candidate = nearest(*shifts, shift);
      if (std::abs(candidate - shift) <= std::abs(e[hi - 2])) {
        shift = candidate;
        snappedAt = hi;
      }
    }
    qrSweep(d, e, lo, hi, shift, q ? &log : nullptr);
    if (q && log.cs.size() / 2 >= kRotationChunk) {
      replayRotations(q, n, log, panel.data());
      log.cs.clear();
      log.sweeps.clear();
    }
  }
  if (q && !log.sweeps.empty()) replayRotations(q, n, log, panel.data());
  return true;
}

// Eigenvalues and eigenvectors of the tridiagonal (d, e): a cheap O(n^2) pass for the
// eigenvalues alone, then the pass that records rotations, shifted by those eigenvalues.
inline bool tridiagonalEigen(double *d, double *e, Index n, double *q) {
  std::vector<double> values(d, d + n), offdiagonal(e, e + std::max<Index>(n - 1, 0));
  if (!tridiagonalQR(values.data(), offdiagonal.data(), n, nullptr, nullptr)) return false;
  std::sort(values.begin(), values.end());
  return tridiagonalQR(d, e, n, &values, q);
}

// Householder tridiagonalisation A = Q T Q^T of the symmetric n x n column-major `a`, using its
// lower triangle (GVL algorithm 8.3.1). Step k reflects column k below the diagonal onto e_1
// with H = I - tau v v^T and updates the trailing block B <- H B H = B - v w^T - w v^T, with
// p = tau B v and w = p - (tau/2)(p^T v) v (GVL eq. 8.3.3).
//
// Why not Eigen's Tridiagonalization: it makes two passes over the trailing block per step
// (the product B v, then the rank-2 update), each bound by memory bandwidth once the matrix
// leaves the cache. Here the rank-2 update of step k-1 is applied lazily, in the same pass that
// computes B v for step k, so each entry is loaded and stored once per step; the pass is
// written with SIMD128 intrinsics because its dot-product reduction would otherwise stay
// scalar (the compiler may not reassociate it).
//
// On return d, e hold T, column k of `a` holds the essential part of v_k from row k+2 down
// (Eigen's HouseholderSequence layout with shift 1) and tau[k] its coefficient.
inline void tridiagonalize(double *a, Index n, double *d, double *e, double *tau) {
  std::vector<double> vPrev(n, 0.0), wPrev(n, 0.0), v(n, 0.0), p(n, 0.0);
  for (Index k = 0; k < n; ++k) {
    double *ck = a + k * n;
    const double vk = vPrev[k], wk = wPrev[k];
    for (Index i = k; i < n; ++i) ck[i] -= vPrev[i] * wk + wPrev[i] * vk;
    d[k] = ck[k];
    if (k == n - 1) break;

    // v, tau, beta with H x = beta e_1, x = ck[k+1..n-1], beta = -sign(x_0) ||x||.
    std::fill(v.begin(), v.begin() + k + 1, 0.0);
    const double alpha = ck[k + 1];
    double sigma = 0.0;
    for (Index i = k + 2; i < n; ++i) sigma += ck[i] * ck[i];
    double t = 0.0;
    if (sigma == 0.0) {
      e[k] = alpha;  // already reduced: H = I
      std::fill(v.begin() + k + 1, v.end(), 0.0);
    } else {
      const double norm = std::sqrt(alpha * alpha + sigma);
      const double beta = alpha <= 0.0 ? norm : -norm;
      t = (beta - alpha) / beta;
      const double scale = 1.0 / (alpha - beta);
      v[k + 1] = 1.0;
      for (Index i = k + 2; i < n; ++i) v[i] = ck[i] * scale;
      e[k] = beta;
    }
    tau[k] = t;
    for (Index i = k + 2; i < n; ++i) ck[i] = v[i];

    // Fused pass over the trailing lower triangle, column by column (contiguous).
    std::fill(p.begin() + k + 1, p.end(), 0.0);
    const double *vp = vPrev.data(), *wp = wPrev.data(), *vv = v.data();
    double *pp = p.data();
    for (Index j = k + 1; j < n; ++j) {
      double *cj = a + j * n;
      const double vpj = vp[j], wpj = wp[j], vj = vv[j];
      double b = cj[j] - 2.0 * vpj * wpj;
      cj[j] = b;
      double acc = b * vj;
      const v128_t vpj2 = wasm_f64x2_splat(vpj), wpj2 = wasm_f64x2_splat(wpj), vj2 = wasm_f64x2_splat(vj);
      v128_t acc2 = wasm_f64x2_splat(0.0);
      Index i = j + 1;
      for (; i + 1 < n; i += 2) {
        v128_t bb = wasm_v128_load(cj + i);
        bb = wasm_f64x2_sub(bb, wasm_f64x2_mul(wasm_v128_load(vp + i), wpj2));
        bb = wasm_f64x2_sub(bb, wasm_f64x2_mul(wasm_v128_load(wp + i), vpj2));
        wasm_v128_store(cj + i, bb);
        acc2 = wasm_f64x2_add(acc2, wasm_f64x2_mul(bb, wasm_v128_load(vv + i)));
        wasm_v128_store(pp + i, wasm_f64x2_add(wasm_v128_load(pp + i), wasm_f64x2_mul(bb, vj2)));
      }
      for (; i < n; ++i) {
        b = cj[i] - vp[i] * wpj - wp[i] * vpj;
        cj[i] = b;
        acc += b * vv[i];
        pp[i] += b * vj;
      }
      pp[j] += acc + wasm_f64x2_extract_lane(acc2, 0) + wasm_f64x2_extract_lane(acc2, 1);
    }
    // w = tau p - (tau^2 / 2)(p^T v) v becomes the pending update, with v.
    double pv = 0.0;
    for (Index i = k + 1; i < n; ++i) pv += p[i] * v[i];
    const double half = 0.5 * t * t * pv;
    std::fill(p.begin(), p.begin() + k + 1, 0.0);
    for (Index i = k + 1; i < n; ++i) p[i] = t * p[i] - half * v[i];
    std::swap(vPrev, v);
    std::swap(wPrev, p);
  }
}

}  // namespace nn
