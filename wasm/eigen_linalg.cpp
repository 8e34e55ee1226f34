// Float64 dense linear algebra for nngeometry, compiled to wasm32 with SIMD128 (see build.sh).
//
// Eigen 3.4 provides the containers; the kernels are written here.
//
// Every entry point takes pointers into this module's linear memory (allocated with nn_malloc)
// and row-major matrices, the layout of the TypeScript side. A symmetric matrix is its own
// transpose, so a row-major symmetric input can be mapped as column-major without a copy.
//
// Why the eigensolver is not Eigen's `SelfAdjointEigenSolver` (0.91-0.94 s at n = 1024 on the
// development machine, against 0.63 s for this one): Eigen 3.4 has no WebAssembly SIMD backend,
// so its matrix kernels run as compiler-vectorised scalar code. The three phases are replaced:
//   1. tridiagonalisation: one fused SIMD pass per step instead of two (symmetric_eigen.hpp),
//      213 -> 148 ms;
//   2. Q: blocked compact-WY accumulation with SIMD kernels (householder_q.hpp), 250 -> 117 ms;
//   3. QR iterations: a first, cheap pass computes the eigenvalues, which then serve as
//      near-perfect shifts, and deflation uses the normwise test of EISPACK tql2; together they
//      need about 25% fewer rotations. Rotations are recorded and replayed on cache-resident
//      panels of Q (Van Zee, van de Geijn and Quintana-Orti, "Restructuring the tridiagonal and
//      bidiagonal QR algorithms for performance", ACM TOMS 40(3), 2014), which runs at the
//      SIMD128 peak without FMA (about 13 GFLOP/s) whatever the size of Q. ~450 -> 350 ms.
// Cholesky and the triangular solves are blocked on the same SIMD kernel (cholesky.hpp,
// triangular_solve.hpp), and so is the general product (blocked_gemm.hpp).
#include <Eigen/Dense>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "cholesky.hpp"
#include "householder_q.hpp"
#include "symmetric_eigen.hpp"
#include "blocked_tridiagonal.hpp"
#include "tridiagonal_dc.hpp"
#include "triangular_solve.hpp"

using Eigen::Index;
using MatrixCM = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using MatrixRM = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapCM = Eigen::Map<MatrixCM>;
using MapRM = Eigen::Map<MatrixRM>;

#define NN_EXPORT(name) extern "C" __attribute__((export_name(#name)))

NN_EXPORT(nn_malloc) void *nn_malloc(uint32_t bytes) { return std::malloc(bytes); }
NN_EXPORT(nn_free) void nn_free(void *ptr) { std::free(ptr); }

namespace {

// The helpers below are not inlined: each runs on one column and is called n times, so V8
// optimises it after its first calls, whereas a loop inlined into a function called once per
// decomposition would run in V8's baseline tier for the whole call.

// dst[i * stride] = src[i] for i < n (a column into a row-major matrix).
__attribute__((noinline)) void scatterColumn(const double *src, int n, double *dst, int stride) {
  for (int i = 0; i < n; ++i) dst[size_t(i) * stride] = src[i];
}

// max |x_i| over i < n.
__attribute__((noinline)) double maxAbs(const double *x, int n) {
  double m = 0.0;
  for (int i = 0; i < n; ++i) m = std::max(m, std::abs(x[i]));
  return m;
}

// x_i /= s for i < n.
__attribute__((noinline)) void divideBy(double *x, int n, double s) {
  for (int i = 0; i < n; ++i) x[i] /= s;
}

// Writes the eigenpairs (d, q) sorted ascending into w (times scale) and v (row-major).
void writeSorted(const double *d, const MatrixCM &q, int n, double scale, double *w, double *v) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return d[i] < d[j]; });
  for (int j = 0; j < n; ++j) {
    w[j] = d[order[j]] * scale;
    scatterColumn(q.data() + size_t(order[j]) * n, n, v + j, n);
  }
}

// Scales A (column-major view of the row-major input) to max |a_ij| = 1 as LAPACK dsyev does,
// so that no intermediate over- or underflows; returns the scale, 0 for the zero matrix (whose
// decomposition is then written).
double scaleInput(MapCM &A, int n, double *w, double *v) {
  double scale = 0.0;
  for (int j = 0; j < n; ++j) scale = std::max(scale, maxAbs(A.data() + size_t(j) * n, n));
  if (scale == 0.0) {
    std::fill(w, w + n, 0.0);
    MapRM(v, n, n).setIdentity();
    return 0.0;
  }
  for (int j = 0; j < n; ++j) divideBy(A.data() + size_t(j) * n, n, scale);
  return scale;
}

// QR route: Householder tridiagonalisation, explicit Q, shifted QR iterations on Q.
int eighQR(double *a, int n, double *w, double *v) {
  MapCM A(a, n, n);
  const double scale = scaleInput(A, n, w, v);
  if (scale == 0.0) return 0;
  Eigen::VectorXd d(n), e(n), tau(n);
  nn::tridiagonalize(a, n, d.data(), e.data(), tau.data());
  MatrixCM q(n, n);
  nn::formHouseholderQ(a, tau.data(), n, std::max(n - 2, 0), q.data());
  if (!nn::tridiagonalEigen(d.data(), e.data(), n, q.data())) return 1;
  writeSorted(d.data(), q, n, scale, w, v);
  return 0;
}

}  // namespace

// Symmetric eigen-decomposition A = V diag(w) V^T. `a` is row-major n x n and is overwritten;
// it is read as column-major, whose lower triangle is the row-major upper triangle (the one the
// TypeScript implementation reads too). On success w holds the eigenvalues in ascending order
// and v (row-major) holds the eigenvector of w[j] in column j.
//
// Householder tridiagonalisation, divide and conquer on the tridiagonal (tridiagonal_dc.hpp),
// then the back-transformation of its eigenvectors by the blocked reflectors (LAPACK dsyevd's
// route). Should divide and conquer fail (a secular equation that does not converge, or equal
// poles left undeflated, neither seen in the tests), the tridiagonal is solved again by the QR
// iterations of nn_eigh_qr. Returns 0 on success, 1 when the QR iterations did not converge.
static int lastEighRoute = 0;

// The route the last nn_eigh took: 0 divide and conquer, 1 the QR fallback (for the tests).
NN_EXPORT(nn_eigh_route) int nn_eigh_route() { return lastEighRoute; }

NN_EXPORT(nn_eigh) int nn_eigh(double *a, int n, double *w, double *v) {
  lastEighRoute = 0;
  MapCM A(a, n, n);
  const double scale = scaleInput(A, n, w, v);
  if (scale == 0.0) return 0;
  Eigen::VectorXd d(n), e(n), tau(n);
  nn::tridiagonalizeBlocked(a, n, d.data(), e.data(), tau.data());
  const Eigen::VectorXd d0 = d, e0 = e;
  MatrixCM z(n, n);
  if (nn::tridiagonalDivideAndConquer(d.data(), e.data(), n, z.data())) {
    nn::applyHouseholderQ(a, tau.data(), n, std::max(n - 2, 0), z.data());
  } else {
    lastEighRoute = 1;
    d = d0;
    e = e0;
    nn::formHouseholderQ(a, tau.data(), n, std::max(n - 2, 0), z.data());
    if (!nn::tridiagonalEigen(d.data(), e.data(), n, z.data())) return 1;
  }
  writeSorted(d.data(), z, n, scale, w, v);
  return 0;
}

// The same decomposition by the QR route alone (the solver before divide and conquer), kept
// as the reference the tests compare with. Same contract as nn_eigh.
NN_EXPORT(nn_eigh_qr) int nn_eigh_qr(double *a, int n, double *w, double *v) { return eighQR(a, n, w, v); }

// Cholesky factorisation A = L L^T. On entry `a` holds the row-major symmetric matrix (its
// lower triangle is read); on
// success it holds L row-major with zeros above the diagonal and the result is -1. On failure
// the result is the index k of the first pivot that is not positive and *pivot receives its
// value a_kk - sum_{j<k} l_kj^2.
NN_EXPORT(nn_llt) int nn_llt(double *a, int n, double *pivot) {
  return int(nn::choleskyInPlace(a, n, pivot));
}

// Solves L X = B in place (B row-major n x nrhs), L row-major lower triangular.
NN_EXPORT(nn_trsm_lower) void nn_trsm_lower(const double *l, int n, double *b, int nrhs) {
  nn::solveLowerInPlace(l, n, b, nrhs);
}

// Solves L^T X = B in place (B row-major n x nrhs), L row-major lower triangular.
NN_EXPORT(nn_trsm_lower_t) void nn_trsm_lower_t(const double *l, int n, double *b, int nrhs) {
  nn::solveLowerTransposedInPlace(l, n, b, nrhs);
}

// Solves L L^T X = B in place given the Cholesky factor L (row-major lower).
NN_EXPORT(nn_llt_solve) void nn_llt_solve(const double *l, int n, double *b, int nrhs) {
  nn_trsm_lower(l, n, b, nrhs);
  nn_trsm_lower_t(l, n, b, nrhs);
}

// C = A B with A row-major m x k, B row-major k x n, C row-major m x n: as column-major
// matrices, C^T = B^T A^T, on the blocked SIMD kernel (blocked_gemm.hpp; about twice the speed
// of Eigen's product, which has no WebAssembly SIMD backend).
NN_EXPORT(nn_gemm) void nn_gemm(const double *a, int m, int k, const double *b, int n, double *c) {
  nn::gemmAssign(n, m, k, b, n, a, k, c, n);
}

#ifdef NN_PHASE_TIMERS
// Milliseconds per slot of phase_timer.hpp since the last reset (profiling builds only).
NN_EXPORT(nn_phase_totals) double *nn_phase_totals() { return nn::phaseTotals; }
NN_EXPORT(nn_phase_reset) void nn_phase_reset() { std::fill(nn::phaseTotals, nn::phaseTotals + nn::kPhaseSlots, 0.0); }
#endif

#ifdef NN_PHASE_EXPORTS
// Phases of nn_eigh, exported separately for profiling builds only.
NN_EXPORT(nn_phase_tridiag) void nn_phase_tridiag(double *a, int n, double *d, double *e, double *tau) {
  nn::tridiagonalize(a, n, d, e, tau);
}
NN_EXPORT(nn_phase_tridiag_blocked) void nn_phase_tridiag_blocked(double *a, int n, double *d, double *e, double *tau) {
  nn::tridiagonalizeBlocked(a, n, d, e, tau);
}
NN_EXPORT(nn_phase_dc) int nn_phase_dc(double *d, double *e, int n, double *z) {
  return nn::tridiagonalDivideAndConquer(d, e, n, z) ? 0 : 1;
}
NN_EXPORT(nn_phase_qr) int nn_phase_qr(double *d, double *e, int n, double *z) {
  std::fill(z, z + size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i) z[size_t(i) * n + i] = 1.0;
  return nn::tridiagonalEigen(d, e, n, z) ? 0 : 1;
}
NN_EXPORT(nn_phase_back) void nn_phase_back(const double *a, const double *tau, int n, double *z) {
  nn::applyHouseholderQ(a, tau, n, std::max(n - 2, 0), z);
}
NN_EXPORT(nn_phase_formq) void nn_phase_formq(const double *a, const double *tau, int n, double *q) {
  nn::formHouseholderQ(a, tau, n, std::max(n - 2, 0), q);
}
NN_EXPORT(nn_phase_gemm) void nn_phase_gemm(const double *a, const double *b, int n, double *c) {
  nn::gemmAssign(n, n, n, a, n, b, n, c, n);
}
#endif
