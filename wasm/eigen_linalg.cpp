// Float64 dense linear algebra for nngeometry, built from Eigen 3.4 for wasm32 (see build.sh).
//
// Every entry point takes pointers into this module's linear memory (allocated with nn_malloc)
// and row-major matrices, the layout of the TypeScript side. A symmetric matrix is its own
// transpose, so a row-major symmetric input can be mapped as column-major without a copy.
//
// Why the eigensolver is not just `SelfAdjointEigenSolver`: that solver forms Q with unblocked
// Householder updates and then applies every Givens rotation of the QR iterations to two
// full columns of Q, streaming all of Q (8 MB at n = 1024) once per sweep. Here Q is formed with
// Eigen's blocked Householder product, the QR iterations only record their rotations, and the
// rotations are replayed on cache-resident panels of Q (the restructuring of Van Zee, van de
// Geijn and Quintana-Ortí, "Restructuring the tridiagonal and bidiagonal QR algorithms for
// performance", ACM TOMS 40(3), 2014). This is about twice as fast at n = 1024.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <vector>

using Eigen::Index;
using MatrixCM = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using MatrixRM = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapCM = Eigen::Map<MatrixCM>;
using MapRM = Eigen::Map<MatrixRM>;
using ConstMapRM = Eigen::Map<const MatrixRM>;

#define NN_EXPORT(name) extern "C" __attribute__((export_name(#name)))

NN_EXPORT(nn_malloc) void *nn_malloc(uint32_t bytes) { return std::malloc(bytes); }
NN_EXPORT(nn_free) void nn_free(void *ptr) { std::free(ptr); }

namespace {

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
void replayRotations(double *q, Index n, const RotationLog &log, double *panel) {
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
double wilkinsonShift(const double *d, const double *e, Index m) {
  const double td = 0.5 * (d[m - 1] - d[m]);
  const double em = e[m - 1];
  if (td == 0.0) return d[m] - std::abs(em);
  const double h = std::hypot(td, em);
  const double denom = td + (td > 0 ? h : -h);
  return d[m] - (em / denom) * em;
}

// Implicit symmetric QR step with Wilkinson shift on rows lo..hi of the tridiagonal (d, e),
// chasing the bulge down (Golub and Van Loan, Matrix Computations, 4th ed., algorithm 8.3.2).
// The rotation G_k = [[c, s], [-s, c]] in plane (k, k+1) is applied as T <- G_k^T T G_k and
// appended to the log, so that eigenvectors are Q G_lo ... G_hi-1 after all sweeps.
void qrSweep(double *d, double *e, Index lo, Index hi, RotationLog &log) {
  const double mu = wilkinsonShift(d, e, hi);
  double x = d[lo] - mu;
  double z = e[lo];
  const size_t offset = log.cs.size() / 2;
  Index k = lo;
  for (; k < hi; ++k) {
    const double r = std::hypot(x, z);
    double c = 1.0, s = 0.0;
    if (r != 0.0) { c = x / r; s = -z / r; }
    if (k > lo) e[k - 1] = r;  // the bulge is annihilated into e[k-1]
    const double a = d[k], b = e[k], cc = d[k + 1];
    const double cs2 = c * s, c2 = c * c, s2 = s * s;
    d[k] = a * c2 - 2.0 * b * cs2 + cc * s2;
    d[k + 1] = a * s2 + 2.0 * b * cs2 + cc * c2;
    e[k] = (a - cc) * cs2 + b * (c2 - s2);
    log.cs.push_back(c);
    log.cs.push_back(s);
    if (k + 1 < hi) {
      z = -s * e[k + 1];
      e[k + 1] *= c;
    }
    x = e[k];
  }
  log.sweeps.push_back(Sweep{int32_t(lo), int32_t(hi - lo), offset});
}

// Eigen-decomposition of the tridiagonal (d, e) with eigenvectors accumulated into q.
// Deflation uses the relative test of LAPACK dsteqr: e_i^2 <= eps^2 |d_i d_i+1| + safmin.
// Returns false when some eigenvalue needs more than 30 iterations on average.
bool tridiagonalQR(double *d, double *e, double *q, Index n) {
  const double eps = std::numeric_limits<double>::epsilon();
  const double eps2 = eps * eps;
  const double safmin = std::numeric_limits<double>::min();
  RotationLog log;
  log.cs.reserve(2 * kRotationChunk + 2 * n);
  std::vector<double> panel(size_t(n) * kPanel);
  Index hi = n - 1;
  Index iterations = 0;
  const Index maxIterations = 30 * n;
  while (hi > 0) {
    // find the trailing unreduced block lo..hi
    if (e[hi - 1] * e[hi - 1] <= eps2 * std::abs(d[hi - 1] * d[hi]) + safmin) {
      e[hi - 1] = 0.0;
      --hi;
      continue;
    }
    Index lo = hi - 1;
    while (lo > 0 && !(e[lo - 1] * e[lo - 1] <= eps2 * std::abs(d[lo - 1] * d[lo]) + safmin)) --lo;
    if (lo > 0) e[lo - 1] = 0.0;
    if (++iterations > maxIterations) return false;
    qrSweep(d, e, lo, hi, log);
    if (log.cs.size() / 2 >= kRotationChunk) {
      replayRotations(q, n, log, panel.data());
      log.cs.clear();
      log.sweeps.clear();
    }
  }
  if (!log.sweeps.empty()) replayRotations(q, n, log, panel.data());
  return true;
}

}  // namespace

// Symmetric eigen-decomposition A = V diag(w) V^T. `a` is row-major n x n (only its symmetry
// is used, so it may be read as column-major) and is overwritten. On success w holds the
// eigenvalues in ascending order and v (row-major) holds the eigenvector of w[j] in column j.
// Returns 0 on success, 1 when the QR iterations did not converge.
NN_EXPORT(nn_eigh) int nn_eigh(double *a, int n, double *w, double *v) {
  MapCM A(a, n, n);
  // Scale to max |a_ij| = 1 as LAPACK dsyev does, so that no intermediate over- or underflows.
  const double scale = A.cwiseAbs().maxCoeff();
  if (scale == 0.0) {
    std::fill(w, w + n, 0.0);
    MapRM(v, n, n).setIdentity();
    return 0;
  }
  A /= scale;
  Eigen::Tridiagonalization<MatrixCM> tri(A);
  Eigen::VectorXd d = tri.diagonal();
  Eigen::VectorXd e(std::max(n - 1, 0));
  if (n > 1) e = tri.subDiagonal();
  MatrixCM q = tri.matrixQ();  // a fresh destination takes Eigen's blocked (WY) path
  if (!tridiagonalQR(d.data(), e.data(), q.data(), n)) return 1;
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return d[i] < d[j]; });
  MapRM V(v, n, n);
  for (int j = 0; j < n; ++j) {
    w[j] = d[order[j]] * scale;
    V.col(j) = q.col(order[j]);
  }
  return 0;
}

// Cholesky factorisation A = L L^T. On entry `a` holds the row-major symmetric matrix; on
// success it holds L row-major with zeros above the diagonal and the result is -1. On failure
// the result is the index k of the first pivot that is not positive and *pivot receives its
// value a_kk - sum_{j<k} l_kj^2.
NN_EXPORT(nn_llt) int nn_llt(double *a, int n, double *pivot) {
  // Column-major view of the row-major buffer: it is A (symmetric). Factoring its upper
  // triangle as A = U^T U leaves U column-major, which is L = U^T row-major, in place.
  MapCM A(a, n, n);
  Eigen::VectorXd diag = A.diagonal();
  const Index k = Eigen::internal::llt_inplace<double, Eigen::Upper>::blocked(A);
  MapRM L(a, n, n);
  if (k >= 0) {
    *pivot = diag[k] - L.row(k).head(k).squaredNorm();
    return int(k);
  }
  for (Index i = 0; i < n; ++i) {
    if (!std::isfinite(L(i, i))) {  // x <= 0 lets NaN through; it only comes from overflow
      *pivot = L(i, i);
      return int(i);
    }
  }
  L.triangularView<Eigen::StrictlyUpper>().setZero();
  return -1;
}

// Solves L X = B in place (B row-major n x nrhs), L row-major lower triangular.
NN_EXPORT(nn_trsm_lower) void nn_trsm_lower(const double *l, int n, double *b, int nrhs) {
  Eigen::Map<const MatrixRM> L(l, n, n);
  MapRM B(b, n, nrhs);
  L.triangularView<Eigen::Lower>().solveInPlace(B);
}

// Solves L^T X = B in place (B row-major n x nrhs), L row-major lower triangular.
NN_EXPORT(nn_trsm_lower_t) void nn_trsm_lower_t(const double *l, int n, double *b, int nrhs) {
  Eigen::Map<const MatrixRM> L(l, n, n);
  MapRM B(b, n, nrhs);
  L.transpose().triangularView<Eigen::Upper>().solveInPlace(B);
}

// Solves L L^T X = B in place given the Cholesky factor L (row-major lower).
NN_EXPORT(nn_llt_solve) void nn_llt_solve(const double *l, int n, double *b, int nrhs) {
  nn_trsm_lower(l, n, b, nrhs);
  nn_trsm_lower_t(l, n, b, nrhs);
}

// C = A B with A row-major m x k, B row-major k x n, C row-major m x n.
NN_EXPORT(nn_gemm) void nn_gemm(const double *a, int m, int k, const double *b, int n, double *c) {
  Eigen::Map<const MatrixRM> A(a, m, k), B(b, k, n);
  MapRM C(c, m, n);
  C.noalias() = A * B;
}
