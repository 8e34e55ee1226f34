// Triangular solves with many right-hand sides for eigen_linalg.cpp (one translation unit):
// L X = B and L^T X = B, L row-major lower triangular n x n, B row-major n x nrhs, in place.
//
// Why not Eigen's triangular solve: like its products it runs on compiler-vectorised scalar
// code in WebAssembly (about 6.5 GFLOP/s here). These are blocked right-looking solves: a
// small triangular solve on a block of nb rows of X, then the rows still to be solved are
// updated by a rank-nb product on the SIMD kernel of simd_kernels.hpp.
#pragma once
#include <Eigen/Dense>
#include <algorithm>
#include <vector>

#include "simd_kernels.hpp"

namespace nn {

using Eigen::Index;

constexpr Index kSolveBlock = 32;

// Row-major B (n x nrhs) is column-major B^T (nrhs x n), so "rows I0.. of B" is a column
// block of B^T with leading dimension nrhs, which is what subtractProduct updates:
// B^T[:, J] -= X^T[:, I] W, with W (ib x |J|) packed contiguously from L.

// Solves L X = B in place.
inline void solveLowerInPlace(const double *l, Index n, double *b, Index nrhs) {
  std::vector<double> w;
  for (Index i0 = 0; i0 < n; i0 += kSolveBlock) {
    const Index ib = std::min(kSolveBlock, n - i0);
    for (Index i = i0; i < i0 + ib; ++i) {  // forward substitution inside the block
      double *xi = b + i * nrhs;
      for (Index j = i0; j < i; ++j) {
        const double f = l[i * n + j];
        const double *xj = b + j * nrhs;
        for (Index c = 0; c < nrhs; ++c) xi[c] -= f * xj[c];
      }
      const double inv = 1.0 / l[i * n + i];
      for (Index c = 0; c < nrhs; ++c) xi[c] *= inv;
    }
    const Index rest = n - i0 - ib;
    if (rest == 0) break;
    // B[i0+ib.., :] -= L[i0+ib.., i0..i0+ib) X[i0..i0+ib, :]; W(l, j) = L[i0+ib+j][i0+l].
    w.resize(ib * rest);
    for (Index j = 0; j < rest; ++j) {
      const double *row = l + (i0 + ib + j) * n + i0;
      std::copy(row, row + ib, w.data() + j * ib);
    }
    subtractProduct(b + (i0 + ib) * nrhs, nrhs, nrhs, rest, b + i0 * nrhs, nrhs, w.data(), ib);
  }
}

// Solves L^T X = B in place.
inline void solveLowerTransposedInPlace(const double *l, Index n, double *b, Index nrhs) {
  std::vector<double> w;
  const Index blocks = (n + kSolveBlock - 1) / kSolveBlock;
  for (Index blk = blocks - 1; blk >= 0; --blk) {
    const Index i0 = blk * kSolveBlock;
    const Index ib = std::min(kSolveBlock, n - i0);
    for (Index i = i0 + ib - 1; i >= i0; --i) {  // back substitution inside the block
      double *xi = b + i * nrhs;
      const double inv = 1.0 / l[i * n + i];
      for (Index c = 0; c < nrhs; ++c) xi[c] *= inv;
      for (Index j = i0; j < i; ++j) {  // row i of L is contiguous: right-looking
        const double f = l[i * n + j];
        double *xj = b + j * nrhs;
        for (Index c = 0; c < nrhs; ++c) xj[c] -= f * xi[c];
      }
    }
    if (i0 == 0) break;
    // B[0..i0, :] -= L[i0..i0+ib, 0..i0)^T X[i0..i0+ib, :]; W(l, j) = L[i0+l][j].
    w.resize(ib * i0);
    for (Index lb = 0; lb < ib; ++lb) {
      const double *row = l + (i0 + lb) * n;
      for (Index j = 0; j < i0; ++j) w[j * ib + lb] = row[j];
    }
    subtractProduct(b, nrhs, nrhs, i0, b + i0 * nrhs, nrhs, w.data(), ib);
  }
}

}  // namespace nn
