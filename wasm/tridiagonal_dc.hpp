// Divide-and-conquer eigensolver for a symmetric tridiagonal matrix, for eigen_linalg.cpp (one
// translation unit).
//
// Cuppen's method ("A divide and conquer method for the symmetric tridiagonal eigenproblem",
// Numer. Math. 36, 1981) with the deflation of LAPACK dlaed2 and the eigenvectors of Gu and
// Eisenstat ("A divide-and-conquer algorithm for the symmetric tridiagonal eigenproblem", SIAM
// J. Matrix Anal. Appl. 16(1), 1995), as in LAPACK dstedc:
//   T = diag(T1, T2) + rho v v^T with v = e_m-1 + sign(beta) e_m, rho = |beta|;
//   T1 = Q1 D1 Q1^T and T2 = Q2 D2 Q2^T recursively, so that
//   T = diag(Q1, Q2) (D + rho z z^T) diag(Q1, Q2)^T, z = diag(Q1, Q2)^T v;
//   the eigenvalues of D + rho z z^T are the roots of the secular equation
//   f(l) = 1 + rho sum_i z_i^2 / (d_i - l), and its eigenvectors are (D - l I)^-1 z-hat, where
//   z-hat is recomputed from the computed roots (Loewner's formula) so that the vectors are
//   orthogonal to working precision however close the roots are.
// Almost all the work is the product diag(Q1, Q2) U of each merge, a matrix product (blocked
// SIMD kernel), and deflation (entries of z below tolerance, nearly equal d_i) removes columns
// from it; Kronecker factors, whose spectra decay fast, deflate heavily.
#pragma once
#include <Eigen/Dense>
#include <wasm_simd128.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "blocked_gemm.hpp"
#include "phase_timer.hpp"
#include "symmetric_eigen.hpp"

namespace nn {

using Eigen::Index;

// Below this size a subproblem is solved by QR iterations (symmetric_eigen.hpp).
constexpr Index kDcLeaf = 32;

// sum z_i r_i and sum r_i^2 over i in [b, e), r_i = z_i / ((d_i - dOrigin) - t): the two sums
// of the secular function and its derivative on one side of a root, two terms per SIMD step
// (the divisions dominate, and f64x2.div does two for about the cost of one).
inline void secularSums(const double *d, const double *z, Index b, Index e, double dOrigin, double t, double *sum,
                        double *sumSquares) {
  const v128_t o2 = wasm_f64x2_splat(dOrigin), t2 = wasm_f64x2_splat(t);
  v128_t s2 = wasm_f64x2_splat(0.0), q2 = s2;
  Index i = b;
  for (; i + 1 < e; i += 2) {
    const v128_t zi = wasm_v128_load(z + i);
    const v128_t r = wasm_f64x2_div(zi, wasm_f64x2_sub(wasm_f64x2_sub(wasm_v128_load(d + i), o2), t2));
    s2 = wasm_f64x2_add(s2, wasm_f64x2_mul(zi, r));
    q2 = wasm_f64x2_add(q2, wasm_f64x2_mul(r, r));
  }
  double s = wasm_f64x2_extract_lane(s2, 0) + wasm_f64x2_extract_lane(s2, 1);
  double q = wasm_f64x2_extract_lane(q2, 0) + wasm_f64x2_extract_lane(q2, 1);
  for (; i < e; ++i) {
    const double r = z[i] / ((d[i] - dOrigin) - t);
    s += z[i] * r;
    q += r * r;
  }
  *sum = s;
  *sumSquares = q;
}

// The root of f(l) = 1 + rho sum_i z_i^2 / (d_i - l) in (d_j, d_j+1), or in
// (d_k-1, d_k-1 + rho |z|^2] for j = k - 1, for d strictly increasing, z_i != 0 and rho > 0.
// The root is returned as l = d[origin] + tau with origin the nearer pole, so that the
// differences d_i - l = (d_i - d_origin) - tau keep full relative accuracy (LAPACK dlaed4).
// Iterates the "middle way" of Li (LAPACK Working Note 89, 1993): each step models the two
// sums on either side of the root by one pole each, matching value and slope at the current
// point, and takes the model's root; steps leaving the bracket are replaced by bisection.
// Returns false when the iteration does not converge.
__attribute__((noinline)) inline bool secularRoot(const double *d, const double *z, Index k, Index j, double rho,
                                                  double zz, Index *origin, double *tau) {
  const double eps = std::numeric_limits<double>::epsilon();
  const bool last = j == k - 1;
  Index o;
  double lo, hi;  // bracket for tau, relative to d[o]; the root lies strictly inside
  if (last) {
    o = j;
    lo = 0.0;
    hi = rho * zz;
  } else {
    const double gap = d[j + 1] - d[j];
    const double mid = 0.5 * gap;
    // f at the midpoint decides the nearer pole (f increases between the poles).
    double sum, unused;
    secularSums(d, z, 0, k, d[j], mid, &sum, &unused);
    const double f = 1.0 + rho * sum;
    if (f >= 0.0) {
      o = j;
      lo = 0.0;
      hi = mid;
    } else {
      o = j + 1;
      lo = -mid;
      hi = 0.0;
    }
  }
  const Index left = j;                  // the pole just below the root
  const Index right = last ? -1 : j + 1;  // the pole just above it (none for the last root)
  double t = 0.5 * (lo + hi);
  for (int iter = 0; iter < 400; ++iter) {
    double psi, dpsi, phi, dphi;
    secularSums(d, z, 0, left + 1, d[o], t, &psi, &dpsi);
    secularSums(d, z, left + 1, k, d[o], t, &phi, &dphi);
    psi *= rho;
    dpsi *= rho;
    phi *= rho;
    dphi *= rho;
    const double g = 1.0 + psi + phi;
    if (std::abs(g) <= 8.0 * eps * (1.0 + std::abs(psi) + std::abs(phi)) ||
        hi - lo <= 2.0 * eps * std::max(std::abs(lo), std::abs(hi))) {
      *origin = o;
      *tau = t;
      return true;
    }
    if (g < 0.0) lo = t; else hi = t;
    // Model: g(t + eta) ~ c + b1 / (da - eta) + b2 / (db - eta), da, db the gaps to the poles.
    const double da = (d[left] - d[o]) - t;  // < 0
    const double b1 = dpsi * da * da;
    double c = 1.0 + psi - b1 / da + phi;
    double eta;
    bool ok = false;
    if (right < 0) {
      // One pole: c + b1 / (da - eta) = 0, eta = da + b1 / c.
      if (c > 0.0) {
        eta = da + b1 / c;
        ok = true;
      }
    } else {
      const double db = (d[right] - d[o]) - t;  // > 0
      const double b2 = dphi * db * db;
      c -= b2 / db;
      // c eta^2 - B eta + C = 0 with B = c (da + db) + b1 + b2, C = da db g.
      const double bb = c * (da + db) + b1 + b2;
      const double cc = da * db * g;
      const double disc = std::max(bb * bb - 4.0 * c * cc, 0.0);
      const double root = bb + (bb >= 0.0 ? std::sqrt(disc) : -std::sqrt(disc));
      double cand[2] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
      if (root != 0.0) cand[0] = 2.0 * cc / root;
      if (c != 0.0) cand[1] = root / (2.0 * c);
      for (double x : cand) {
        if (std::isfinite(x) && t + x > lo && t + x < hi) {
          eta = x;
          ok = true;
          break;
        }
      }
    }
    double next = ok ? t + eta : 0.5 * (lo + hi);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (next == t) {
      *origin = o;
      *tau = t;
      return true;
    }
    t = next;
  }
  return false;
}

// Workspace of one merge, reused across merges.
struct MergeWork {
  std::vector<double> cols, u, dOrigin, lambda, zhat, gathered, ugathered, values;
  std::vector<Index> order, originOf, rowsOfU;
  std::vector<double> ds, zs, tauOf;
  std::vector<char> top, bottom;
};

// The eigenvectors u_j of D + rho z z^T (columns of w.u, k x k) from the roots in
// w.originOf / w.tauOf, with z recomputed from the roots (Gu and Eisenstat). Every difference
// d_i - lambda_j is formed as (d_i - d_origin(j)) - tau_j, which keeps full relative accuracy
// near the root's pole, and is recomputed where needed rather than stored (k^2 doubles).
// SIMD over pairs of terms: the k^2 divisions dominate. Not inlined: its loops run once per
// merge, and V8 optimises a function only for its later calls.
__attribute__((noinline)) inline void secularVectors(const double *dk, const double *zk, Index k, double rho,
                                                     MergeWork &w) {
  w.dOrigin.resize(k);
  for (Index j = 0; j < k; ++j) w.dOrigin[j] = dk[w.originOf[j]];
  const double *dorg = w.dOrigin.data(), *tau = w.tauOf.data();
  // Loewner: rho zhat_i^2 = (lambda_i - d_i) prod_{j != i} (lambda_j - d_i) / (d_j - d_i), every
  // factor positive by interlacing; sign(zhat_i) = sign(z_i).
  w.zhat.resize(k);
  for (Index i = 0; i < k; ++i) {
    const double di = dk[i];
    const v128_t di2 = wasm_f64x2_splat(di);
    v128_t p2 = wasm_f64x2_splat(1.0);
    double prod = -((di - dorg[i]) - tau[i]) / rho;
    for (const auto [b, e] : {std::pair<Index, Index>{0, i}, std::pair<Index, Index>{i + 1, k}}) {
      Index j = b;
      for (; j + 1 < e; j += 2) {
        const v128_t num = wasm_f64x2_sub(wasm_f64x2_sub(di2, wasm_v128_load(dorg + j)), wasm_v128_load(tau + j));
        p2 = wasm_f64x2_mul(p2, wasm_f64x2_div(num, wasm_f64x2_sub(di2, wasm_v128_load(dk + j))));
      }
      for (; j < e; ++j) prod *= ((di - dorg[j]) - tau[j]) / (di - dk[j]);
    }
    prod *= wasm_f64x2_extract_lane(p2, 0) * wasm_f64x2_extract_lane(p2, 1);
    w.zhat[i] = std::copysign(std::sqrt(std::max(prod, 0.0)), zk[i]);
  }
  // Eigenvectors of D + rho z z^T: u_j = (D - lambda_j I)^-1 zhat, normalised.
  w.u.resize(size_t(k) * k);
  const double *zh = w.zhat.data();
  for (Index j = 0; j < k; ++j) {
    double *uj = w.u.data() + j * k;
    const double dj = dorg[j], tj = tau[j];
    const v128_t dj2 = wasm_f64x2_splat(dj), tj2 = wasm_f64x2_splat(tj);
    v128_t n2 = wasm_f64x2_splat(0.0);
    Index i = 0;
    for (; i + 1 < k; i += 2) {
      const v128_t den = wasm_f64x2_sub(wasm_f64x2_sub(wasm_v128_load(dk + i), dj2), tj2);
      const v128_t x = wasm_f64x2_div(wasm_v128_load(zh + i), den);
      wasm_v128_store(uj + i, x);
      n2 = wasm_f64x2_add(n2, wasm_f64x2_mul(x, x));
    }
    double norm = wasm_f64x2_extract_lane(n2, 0) + wasm_f64x2_extract_lane(n2, 1);
    for (; i < k; ++i) {
      uj[i] = zh[i] / ((dk[i] - dj) - tj);
      norm += uj[i] * uj[i];
    }
    const double inv = 1.0 / std::sqrt(norm);
    const v128_t inv2 = wasm_f64x2_splat(inv);
    i = 0;
    for (; i + 1 < k; i += 2) wasm_v128_store(uj + i, wasm_f64x2_mul(wasm_v128_load(uj + i), inv2));
    for (; i < k; ++i) uj[i] *= inv;
  }
}

// dst (kt x k, column-major) = the rows rowsOf[0..kt) of u (k x k, column-major).
__attribute__((noinline)) inline void gatherRows(const double *u, Index k, const Index *rowsOf, Index kt,
                                                 double *dst) {
  for (Index j = 0; j < k; ++j) {
    const double *uj = u + j * k;
    double *dj = dst + j * kt;
    for (Index c = 0; c < kt; ++c) dj[c] = uj[rowsOf[c]];
  }
}

// Column j of Z (n rows of each of n columns, leading dimension ldz) becomes the former column
// order[j], in place, cycle by cycle through the n-double buffer `spare`.
__attribute__((noinline)) inline void permuteColumns(double *z, Index ldz, Index n, const Index *order,
                                                     double *spare) {
  std::vector<char> done(n, 0);
  for (Index s = 0; s < n; ++s) {
    if (done[s] || order[s] == s) continue;
    std::copy(z + s * ldz, z + s * ldz + n, spare);
    Index j = s;
    for (;;) {
      done[j] = 1;
      const Index next = order[j];
      if (next == s) {
        std::copy(spare, spare + n, z + j * ldz);
        break;
      }
      std::copy(z + next * ldz, z + next * ldz + n, z + j * ldz);
      j = next;
    }
  }
}

// Merges the solved halves [lo, lo+n1) and [lo+n1, hi) of the subproblem [lo, hi): on entry
// d[lo..hi) holds their eigenvalues (each half ascending) and Z[lo:hi, lo:hi] (column-major,
// leading dimension ldz) holds diag(Q1, Q2); rho = |beta| and sign = sign(beta) of the
// coupling. On return d[lo..hi) is ascending and Z[lo:hi, lo:hi] holds the eigenvectors.
inline bool mergeHalves(double *d, double *zmat, Index ldz, Index lo, Index n1, Index n, double rho, double sign,
                        MergeWork &w) {
  const double eps = std::numeric_limits<double>::epsilon();
  NN_TIME(kTimeMergeOther);
  double *zb = zmat + lo * ldz + lo;  // the block's (0, 0)
  // z = diag(Q1, Q2)^T v: the last row of Q1 and sign times the first row of Q2, |z| = sqrt 2.
  std::vector<double> z(n);
  for (Index i = 0; i < n1; ++i) z[i] = zb[i * ldz + (n1 - 1)] / std::sqrt(2.0);
  for (Index i = n1; i < n; ++i) z[i] = sign * zb[i * ldz + n1] / std::sqrt(2.0);
  rho *= 2.0;
  // Sort the poles ascending (merge of two ascending lists).
  {
    std::vector<Index> first(n1), second(n - n1);
    std::iota(first.begin(), first.end(), 0);
    std::iota(second.begin(), second.end(), n1);
    w.order.resize(n);
    std::merge(first.begin(), first.end(), second.begin(), second.end(), w.order.begin(),
               [&](Index x, Index y) { return d[lo + x] < d[lo + y]; });
  }
  // The columns of diag(Q1, Q2) in that order, copied (rotations below mix them).
  w.cols.resize(size_t(n) * n);
  w.ds.resize(n);
  w.zs.resize(n);
  w.top.assign(n, 0);
  w.bottom.assign(n, 0);
  for (Index p = 0; p < n; ++p) {
    const Index src = w.order[p];
    std::copy(zb + src * ldz, zb + src * ldz + n, w.cols.data() + p * n);
    w.ds[p] = d[lo + src];
    w.zs[p] = z[src];
    (src < n1 ? w.top : w.bottom)[p] = 1;
  }
  // Deflation (LAPACK dlaed2): a negligible z_p leaves (d_p, column p) an eigenpair; two poles
  // closer than the tolerance are rotated so that one z vanishes.
  double dmax = 0.0, zmax = 0.0;
  for (Index p = 0; p < n; ++p) {
    dmax = std::max(dmax, std::abs(w.ds[p]));
    zmax = std::max(zmax, std::abs(w.zs[p]));
  }
  const double tol = 8.0 * eps * std::max(dmax, zmax);
  std::vector<Index> kept, deflated;
  kept.reserve(n);
  Index pj = -1;
  for (Index p = 0; p < n; ++p) {
    if (rho * std::abs(w.zs[p]) <= tol) {
      deflated.push_back(p);
      continue;
    }
    if (pj >= 0) {
      double s = w.zs[pj], c = w.zs[p];
      const double r = std::hypot(c, s);
      const double t = w.ds[p] - w.ds[pj];
      c /= r;
      s = -s / r;
      if (std::abs(t * c * s) <= tol) {
        // Rotate columns pj and p: z_pj becomes 0, z_p becomes r.
        w.zs[p] = r;
        w.zs[pj] = 0.0;
        double *x = w.cols.data() + pj * n, *y = w.cols.data() + p * n;
        for (Index i = 0; i < n; ++i) {
          const double xi = x[i], yi = y[i];
          x[i] = c * xi + s * yi;
          y[i] = c * yi - s * xi;
        }
        const char tp = w.top[pj] | w.top[p], bt = w.bottom[pj] | w.bottom[p];
        w.top[pj] = w.top[p] = tp;
        w.bottom[pj] = w.bottom[p] = bt;
        const double dpj = w.ds[pj] * c * c + w.ds[p] * s * s;
        w.ds[p] = w.ds[pj] * s * s + w.ds[p] * c * c;
        w.ds[pj] = dpj;
        deflated.push_back(pj);
        pj = p;
        continue;
      }
      kept.push_back(pj);
    }
    pj = p;
  }
  if (pj >= 0) kept.push_back(pj);
  const Index k = Index(kept.size());

  // Secular equation on the kept poles.
  std::vector<double> dk(k), zk(k);
  {
  NN_TIME(kTimeSecular);
  double zz = 0.0;
  for (Index i = 0; i < k; ++i) {
    dk[i] = w.ds[kept[i]];
    zk[i] = w.zs[kept[i]];
    zz += zk[i] * zk[i];
  }
  for (Index i = 0; i + 1 < k; ++i) {
    if (!(dk[i + 1] > dk[i])) return false;  // equal poles left undeflated: let the caller fall back
  }
  w.originOf.resize(k);
  w.tauOf.resize(k);
  w.lambda.resize(k);
  for (Index j = 0; j < k; ++j) {
    if (!secularRoot(dk.data(), zk.data(), k, j, rho, zz, &w.originOf[j], &w.tauOf[j])) return false;
    w.lambda[j] = dk[w.originOf[j]] + w.tauOf[j];
  }
  secularVectors(dk.data(), zk.data(), k, rho, w);
  }
  // New vectors, written straight into the block's columns [0, k) (its old contents are in
  // w.cols): rows [0, n1) are sums over kept columns with a top part, rows [n1, n) over those
  // with a bottom part (the block structure of diag(Q1, Q2), kept through deflation).
  for (int half = 0; half < 2; ++half) {
    const Index r0 = half == 0 ? 0 : n1, rows = half == 0 ? n1 : n - n1;
    const std::vector<char> &flag = half == 0 ? w.top : w.bottom;
    w.rowsOfU.clear();
    for (Index i = 0; i < k; ++i) {
      if (flag[kept[i]]) w.rowsOfU.push_back(i);
    }
    const Index kt = Index(w.rowsOfU.size());
    if (kt == 0) {
      for (Index j = 0; j < k; ++j) std::fill(zb + j * ldz + r0, zb + j * ldz + r0 + rows, 0.0);
      continue;
    }
    w.gathered.resize(size_t(rows) * kt);
    w.ugathered.resize(size_t(kt) * k);
    for (Index c = 0; c < kt; ++c) {
      const double *src = w.cols.data() + kept[w.rowsOfU[c]] * n + r0;
      std::copy(src, src + rows, w.gathered.data() + c * rows);
    }
    gatherRows(w.u.data(), k, w.rowsOfU.data(), kt, w.ugathered.data());
    NN_TIME(kTimeMergeGemm);
    gemmAssign(rows, k, kt, w.gathered.data(), rows, w.ugathered.data(), kt, zb + r0, ldz);
  }
  // The deflated pairs after them, then all n in ascending order of eigenvalue (stable: a kept
  // pair before a deflated one of equal value), by following the cycles of the permutation
  // with one spare column.
  w.values.resize(n);
  for (Index j = 0; j < k; ++j) w.values[j] = w.lambda[j];
  for (Index q = 0; q < Index(deflated.size()); ++q) {
    const Index p = deflated[q];
    w.values[k + q] = w.ds[p];
    std::copy(w.cols.data() + p * n, w.cols.data() + p * n + n, zb + (k + q) * ldz);
  }
  w.order.resize(n);
  std::iota(w.order.begin(), w.order.end(), 0);
  std::stable_sort(w.order.begin(), w.order.end(), [&](Index x, Index y) { return w.values[x] < w.values[y]; });
  for (Index j = 0; j < n; ++j) d[lo + j] = w.values[w.order[j]];
  permuteColumns(zb, ldz, n, w.order.data(), w.cols.data());
  return true;
}

// Eigenpairs of the subproblem [lo, lo + n) of the tridiagonal (d, e): d[lo..lo+n) ascending on
// return, Z[lo:lo+n, lo:lo+n] its eigenvectors (the rest of those columns must be zero).
inline bool divideAndConquer(double *d, double *e, double *zmat, Index ldz, Index lo, Index n, MergeWork &w) {
  if (n <= kDcLeaf) {
    NN_TIME(kTimeLeaf);
    std::vector<double> q(size_t(n) * n, 0.0);
    for (Index i = 0; i < n; ++i) q[i * n + i] = 1.0;
    std::vector<double> dd(d + lo, d + lo + n), ee(std::max<Index>(n - 1, 1), 0.0);
    for (Index i = 0; i + 1 < n; ++i) ee[i] = e[lo + i];
    if (!tridiagonalEigen(dd.data(), ee.data(), n, q.data())) return false;
    std::vector<Index> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return dd[a] < dd[b]; });
    for (Index j = 0; j < n; ++j) {
      d[lo + j] = dd[order[j]];
      std::copy(q.data() + order[j] * n, q.data() + order[j] * n + n, zmat + (lo + j) * ldz + lo);
    }
    return true;
  }
  const Index n1 = n / 2;
  const double beta = e[lo + n1 - 1];
  const double rho = std::abs(beta), sign = beta >= 0.0 ? 1.0 : -1.0;
  d[lo + n1 - 1] -= rho;
  d[lo + n1] -= rho;
  if (!divideAndConquer(d, e, zmat, ldz, lo, n1, w)) return false;
  if (!divideAndConquer(d, e, zmat, ldz, lo + n1, n - n1, w)) return false;
  return mergeHalves(d, zmat, ldz, lo, n1, n, rho, sign, w);
}

// Eigenvalues (ascending, in d) and eigenvectors (z, column-major n x n) of the tridiagonal
// (d, e) by divide and conquer. Returns false when a secular equation did not converge or
// equal poles were left undeflated; d, e are then clobbered.
inline bool tridiagonalDivideAndConquer(double *d, double *e, Index n, double *z) {
  std::fill(z, z + n * n, 0.0);
  MergeWork w;
  return divideAndConquer(d, e, z, n, 0, n, w);
}

}  // namespace nn
