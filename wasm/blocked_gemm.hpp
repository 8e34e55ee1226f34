// Cache-blocked general matrix product on a SIMD128 register tile, for eigen_linalg.cpp (one
// translation unit).
//
// The product is cut into blocks as in Goto and van de Geijn ("Anatomy of high-performance
// matrix multiplication", ACM TOMS 34(3), 2008): a kc x nc panel of B is packed once into
// micro-panels of kNr columns (row l of a micro-panel is kNr contiguous doubles), an mc x kc
// block of A is packed into micro-panels of kMr rows (column l is kMr contiguous doubles) and
// stays in L2, and the register tile sweeps it with both operands read as one contiguous stream
// each. Without the packing in micro-panel order, a tile reads A with a stride of mc doubles
// per step of l, which is what limited the former kernel (nn::subtractProduct on a block packed
// column by column) to mc = 64: the stride of a larger block touches a new page at every step.
// With the packing, mc grows as kc shrinks (the block stays at 256 KB), so that the thin
// updates of the reduction and the back-transformation (kc = 64) sweep C in column runs of
// 512 rows, which the hardware prefetcher follows, rather than 64.
//
// Register tile: 4 x 4 of C in 8 f64x2 accumulators. SIMD128 has no fused multiply-add, so a
// step of l is 8 multiplies and 8 adds for 2 + 4 loads; V8 keeps the tile, two A registers, the
// broadcast B entry and one product in 12 of its 15 allocatable xmm registers (a 4 x 6 tile
// would need 16 and spill).
//
// The macro kernel is a separate, non-inlined function called once per block: V8 runs a
// WebAssembly function in its baseline compiler until the function has used its tiering
// budget, and only later calls get the optimised code, so a kernel inlined into a function that
// is called once (the eigensolver's phases) would run unoptimised for the whole first call.
#pragma once
#include <Eigen/Dense>
#include <wasm_simd128.h>
#include <algorithm>
#include <vector>

#include "gemm_parallel.hpp"
#include "simd_kernels.hpp"

namespace nn {

using Eigen::Index;

constexpr Index kGemmMr = 4;
constexpr Index kGemmNr = 4;
constexpr Index kGemmKc = 256;
// Doubles of the packed A block: 32K doubles = 256 KB, a quarter of the 1 MB L2 of the
// machines measured (AMD Zen 4/5), so that the B micro-panel and C lines do not evict it.
constexpr Index kGemmABlock = 32768;
constexpr Index kGemmNc = 1024;

// Packs the mc x kc block of A (column-major, lda) into micro-panels of kGemmMr rows,
// zero-padded: ap[(i / kMr) * kMr * kc + l * kMr + i % kMr] = A(i, l).
inline void gemmPackA(const double *a, Index lda, Index mc, Index kc, double *ap) {
  for (Index i0 = 0; i0 < mc; i0 += kGemmMr) {
    double *dst = ap + i0 * kc;
    const Index rows = std::min(kGemmMr, mc - i0);
    if (rows == kGemmMr) {
      for (Index l = 0; l < kc; ++l) {
        const double *src = a + l * lda + i0;
        wasm_v128_store(dst + l * kGemmMr, wasm_v128_load(src));
        wasm_v128_store(dst + l * kGemmMr + 2, wasm_v128_load(src + 2));
      }
    } else {
      for (Index l = 0; l < kc; ++l) {
        const double *src = a + l * lda + i0;
        for (Index t = 0; t < kGemmMr; ++t) dst[l * kGemmMr + t] = t < rows ? src[t] : 0.0;
      }
    }
  }
}

// Packs the kc x nc panel of B (column-major, ldb) into micro-panels of kGemmNr columns,
// zero-padded: bp[(j / kNr) * kNr * kc + l * kNr + j % kNr] = B(l, j).
inline void gemmPackB(const double *b, Index ldb, Index kc, Index nc, double *bp) {
  for (Index j0 = 0; j0 < nc; j0 += kGemmNr) {
    double *dst = bp + j0 * kc;
    const Index cols = std::min(kGemmNr, nc - j0);
    if (cols == kGemmNr) {
      const double *b0 = b + j0 * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
      for (Index l = 0; l < kc; ++l) {
        double *d = dst + l * kGemmNr;
        d[0] = b0[l];
        d[1] = b1[l];
        d[2] = b2[l];
        d[3] = b3[l];
      }
    } else {
      for (Index l = 0; l < kc; ++l) {
        for (Index t = 0; t < kGemmNr; ++t) dst[l * kGemmNr + t] = t < cols ? b[(j0 + t) * ldb + l] : 0.0;
      }
    }
  }
}

// C (mc x nc, column-major, ldc) += Ap Bp for a packed block of A and panel of B.
__attribute__((noinline)) inline void gemmMacroKernel(Index mc, Index nc, Index kc, const double *ap,
                                                      const double *bp, double *c, Index ldc) {
  for (Index j0 = 0; j0 < nc; j0 += kGemmNr) {
    const double *bpanel = bp + j0 * kc;
    const Index cols = std::min(kGemmNr, nc - j0);
    for (Index i0 = 0; i0 < mc; i0 += kGemmMr) {
      const double *apanel = ap + i0 * kc;
      v128_t c00 = wasm_f64x2_splat(0.0), c01 = c00, c02 = c00, c03 = c00;
      v128_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
      const double *pa = apanel, *pb = bpanel;
      for (Index l = 0; l < kc; ++l, pa += kGemmMr, pb += kGemmNr) {
        const v128_t a0 = wasm_v128_load(pa), a1 = wasm_v128_load(pa + 2);
        v128_t x = wasm_v128_load64_splat(pb);
        c00 = wasm_f64x2_add(c00, wasm_f64x2_mul(a0, x));
        c10 = wasm_f64x2_add(c10, wasm_f64x2_mul(a1, x));
        x = wasm_v128_load64_splat(pb + 1);
        c01 = wasm_f64x2_add(c01, wasm_f64x2_mul(a0, x));
        c11 = wasm_f64x2_add(c11, wasm_f64x2_mul(a1, x));
        x = wasm_v128_load64_splat(pb + 2);
        c02 = wasm_f64x2_add(c02, wasm_f64x2_mul(a0, x));
        c12 = wasm_f64x2_add(c12, wasm_f64x2_mul(a1, x));
        x = wasm_v128_load64_splat(pb + 3);
        c03 = wasm_f64x2_add(c03, wasm_f64x2_mul(a0, x));
        c13 = wasm_f64x2_add(c13, wasm_f64x2_mul(a1, x));
      }
      const Index rows = std::min(kGemmMr, mc - i0);
      double *ct = c + j0 * ldc + i0;
      if (rows == kGemmMr && cols == kGemmNr) {
        auto add = [](double *p, v128_t s) { wasm_v128_store(p, wasm_f64x2_add(wasm_v128_load(p), s)); };
        add(ct, c00);
        add(ct + 2, c10);
        add(ct + ldc, c01);
        add(ct + ldc + 2, c11);
        add(ct + 2 * ldc, c02);
        add(ct + 2 * ldc + 2, c12);
        add(ct + 3 * ldc, c03);
        add(ct + 3 * ldc + 2, c13);
      } else {
        double tile[kGemmMr * kGemmNr];
        wasm_v128_store(tile, c00);
        wasm_v128_store(tile + 2, c10);
        wasm_v128_store(tile + 4, c01);
        wasm_v128_store(tile + 6, c11);
        wasm_v128_store(tile + 8, c02);
        wasm_v128_store(tile + 10, c12);
        wasm_v128_store(tile + 12, c03);
        wasm_v128_store(tile + 14, c13);
        for (Index jj = 0; jj < cols; ++jj) {
          for (Index ii = 0; ii < rows; ++ii) ct[jj * ldc + ii] += tile[jj * kGemmMr + ii];
        }
      }
    }
  }
}

// C (m x n, column-major, ldc) += A (m x k, column-major, lda) B (k x n, column-major, ldb), on
// this thread.
__attribute__((noinline)) inline void gemmAccumulateHere(Index m, Index n, Index k, const double *a, Index lda,
                                                     const double *b, Index ldb, double *c, Index ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  const Index kcMax = std::min(k, kGemmKc);
  // mc: the packed A block fills kGemmABlock doubles, in whole micro-panels.
  const Index mcMax = std::max(kGemmMr, (kGemmABlock / kcMax) / kGemmMr * kGemmMr);
  const auto roundUp = [](Index x, Index r) { return (x + r - 1) / r * r; };
  std::vector<double> bp(size_t(kcMax) * size_t(roundUp(std::min(n, kGemmNc), kGemmNr)));
  std::vector<double> ap(size_t(kcMax) * size_t(roundUp(std::min(m, mcMax), kGemmMr)));
  for (Index jc = 0; jc < n; jc += kGemmNc) {
    const Index nc = std::min(kGemmNc, n - jc);
    for (Index pc = 0; pc < k; pc += kGemmKc) {
      const Index kc = std::min(kGemmKc, k - pc);
      gemmPackB(b + jc * ldb + pc, ldb, kc, nc, bp.data());
      for (Index ic = 0; ic < m; ic += mcMax) {
        const Index mc = std::min(mcMax, m - ic);
        gemmPackA(a + pc * lda + ic, lda, mc, kc, ap.data());
        gemmMacroKernel(mc, nc, kc, ap.data(), bp.data(), c + jc * ldc + ic, ldc);
      }
    }
  }
}

// Whether a product is offered to the helper threads (nn_gemm_parallel): at least
// NN_GEMM_PARALLEL_FLOPS flops (2mnk), below which waking the helpers costs more than they gain,
// and at least NN_GEMM_PARALLEL_INTENSITY flops per double copied to the other memory and back
// (A, B, C, and C once more when accumulating): the thin rank-64 updates of the reduction (about
// 51) ran slower on two threads than on one, because of those copies, the back-transformation's
// products (over 120) and the merges' (n/3 at size n) ran 1.4-1.7x faster (measured in
// docs/performance.md, "Float64 eigh on both cores").
inline bool gemmOffered(Index m, Index n, Index k, bool accumulate) {
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const double copied = double(m) * double(k) + double(k) * double(n) + double(m) * double(n) * (accumulate ? 2.0 : 1.0);
  return flops >= NN_GEMM_PARALLEL_FLOPS && flops >= NN_GEMM_PARALLEL_INTENSITY * copied;
}

// C (m x n, column-major, ldc) += A B: on the helper threads when the product is offered and the
// loader has helpers, else here. Both give the same bits (the same blocks of depth kGemmKc,
// summed in the same order; see gemm_parallel.hpp).
inline void gemmAccumulate(Index m, Index n, Index k, const double *a, Index lda, const double *b, Index ldb, double *c,
                           Index ldc) {
  if (gemmOffered(m, n, k, true) && nn_gemm_parallel(int(m), int(n), int(k), a, int(lda), b, int(ldb), c, int(ldc), 1) != 0) {
    return;
  }
  gemmAccumulateHere(m, n, k, a, lda, b, ldb, c, ldc);
}

// C (m x n, column-major, ldc) = A B (C is zeroed, then A B added: 0 + s, as nn_dgemm does).
inline void gemmAssign(Index m, Index n, Index k, const double *a, Index lda, const double *b, Index ldb, double *c,
                       Index ldc) {
  if (gemmOffered(m, n, k, false) && nn_gemm_parallel(int(m), int(n), int(k), a, int(lda), b, int(ldb), c, int(ldc), 0) != 0) {
    return;
  }
  for (Index j = 0; j < n; ++j) std::fill(c + j * ldc, c + j * ldc + m, 0.0);
  gemmAccumulateHere(m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace nn
