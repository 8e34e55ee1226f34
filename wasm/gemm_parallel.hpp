// The one import of the eigensolver module: its large products, run on the helper threads of
// the SIMD module (wasm/simd_kernels.c, nn_dgemm) by the loader (src/linalg/wasm/loader.ts and
// src/backend/kernels/simd/gemm_f64.ts).
//
// This module links wasi-libc and libc++, which are not built for a shared memory, so it cannot
// run threads of its own. The loader copies the operands of a product into the shared memory of
// the threaded SIMD module, whose kernel performs the same operations in the same order as
// gemmAccumulateHere (blocked_gemm.hpp), split between threads by columns or rows of C only,
// and copies C back: the bits do not depend on where the product ran.
#pragma once

// C (m x n, column-major, ldc) (+)= A (m x k, lda) B (k x n, ldb) on the helper threads; returns
// 1 when done, 0 (C untouched) when the loader has no helper threads for it, and the caller then
// runs the product itself. accumulate 0: C = A B.
extern "C" __attribute__((import_module("env"), import_name("nn_gemm_parallel"))) int nn_gemm_parallel(
    int m, int n, int k, const double *a, int lda, const double *b, int ldb, double *c, int ldc, int accumulate);

// The products offered to nn_gemm_parallel (gemmOffered in blocked_gemm.hpp): at least this
// many flops (2mnk), and at least this many flops per double copied.
#ifndef NN_GEMM_PARALLEL_FLOPS
#define NN_GEMM_PARALLEL_FLOPS 16e6
#endif
#ifndef NN_GEMM_PARALLEL_INTENSITY
#define NN_GEMM_PARALLEL_INTENSITY 80.0
#endif
