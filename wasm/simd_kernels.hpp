// Register-tiled SIMD128 kernels for the rank-k updates of eigen_linalg.cpp (one translation
// unit). Eigen 3.4 has no WebAssembly SIMD backend, so its products run on compiler-vectorised
// scalar code at about 6-8 GFLOP/s in float64; these reach about 12 GFLOP/s, close to the
// SIMD128 peak without FMA, for the short inner dimensions (k = 32) they are used with.
#pragma once
#include <Eigen/Dense>
#include <wasm_simd128.h>

namespace nn {

using Eigen::Index;

// W (nb x m, column-major, leading dimension nb) = Y^T Q, for Y (m x nb, column-major, leading
// dimension m) and Q (m x m, leading dimension ldq). Dot-product form: both operands are read
// down their contiguous columns; a 2 x 4 tile of W keeps 8 SIMD accumulators in registers.
inline void gemmYtQ(const double *y, Index m, Index nb, const double *q, Index ldq, double *w) {
  Index j = 0;
  for (; j + 3 < m; j += 4) {
    const double *q0 = q + j * ldq, *q1 = q0 + ldq, *q2 = q1 + ldq, *q3 = q2 + ldq;
    for (Index l = 0; l < nb; l += 2) {
      const double *y0 = y + l * m, *y1 = y0 + m;
      v128_t a00 = wasm_f64x2_splat(0), a01 = a00, a02 = a00, a03 = a00;
      v128_t a10 = a00, a11 = a00, a12 = a00, a13 = a00;
      Index i = 0;
      for (; i + 1 < m; i += 2) {
        const v128_t u0 = wasm_v128_load(y0 + i), u1 = wasm_v128_load(y1 + i);
        v128_t x = wasm_v128_load(q0 + i);
        a00 = wasm_f64x2_add(a00, wasm_f64x2_mul(u0, x));
        a10 = wasm_f64x2_add(a10, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load(q1 + i);
        a01 = wasm_f64x2_add(a01, wasm_f64x2_mul(u0, x));
        a11 = wasm_f64x2_add(a11, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load(q2 + i);
        a02 = wasm_f64x2_add(a02, wasm_f64x2_mul(u0, x));
        a12 = wasm_f64x2_add(a12, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load(q3 + i);
        a03 = wasm_f64x2_add(a03, wasm_f64x2_mul(u0, x));
        a13 = wasm_f64x2_add(a13, wasm_f64x2_mul(u1, x));
      }
      auto sum = [](v128_t s) { return wasm_f64x2_extract_lane(s, 0) + wasm_f64x2_extract_lane(s, 1); };
      double s00 = sum(a00), s01 = sum(a01), s02 = sum(a02), s03 = sum(a03);
      double s10 = sum(a10), s11 = sum(a11), s12 = sum(a12), s13 = sum(a13);
      for (; i < m; ++i) {
        s00 += y0[i] * q0[i]; s01 += y0[i] * q1[i]; s02 += y0[i] * q2[i]; s03 += y0[i] * q3[i];
        s10 += y1[i] * q0[i]; s11 += y1[i] * q1[i]; s12 += y1[i] * q2[i]; s13 += y1[i] * q3[i];
      }
      double *wj = w + j * nb + l;
      wj[0] = s00; wj[1] = s10; wj[nb] = s01; wj[nb + 1] = s11;
      wj[2 * nb] = s02; wj[2 * nb + 1] = s12; wj[3 * nb] = s03; wj[3 * nb + 1] = s13;
    }
  }
  for (; j < m; ++j) {
    for (Index l = 0; l < nb; ++l) {
      double s = 0.0;
      for (Index i = 0; i < m; ++i) s += y[l * m + i] * q[j * ldq + i];
      w[j * nb + l] = s;
    }
  }
}

// Q (m x cols, leading dimension ldq) -= Y W, with Y (m x nb, leading dimension m) and W
// (nb x cols, leading dimension nb), all column-major. Axpy form: a 4 x 4
// tile of Q (two SIMD rows by four columns) stays in registers while l runs over the block.
inline void gemmQminusYW(const double *y, Index m, Index nb, const double *w, Index cols, double *q, Index ldq) {
  Index j = 0;
  for (; j + 3 < cols; j += 4) {
    double *q0 = q + j * ldq, *q1 = q0 + ldq, *q2 = q1 + ldq, *q3 = q2 + ldq;
    const double *w0 = w + j * nb, *w1 = w0 + nb, *w2 = w1 + nb, *w3 = w2 + nb;
    Index i = 0;
    for (; i + 3 < m; i += 4) {
      v128_t c00 = wasm_v128_load(q0 + i), c01 = wasm_v128_load(q1 + i);
      v128_t c02 = wasm_v128_load(q2 + i), c03 = wasm_v128_load(q3 + i);
      v128_t c10 = wasm_v128_load(q0 + i + 2), c11 = wasm_v128_load(q1 + i + 2);
      v128_t c12 = wasm_v128_load(q2 + i + 2), c13 = wasm_v128_load(q3 + i + 2);
      for (Index l = 0; l < nb; ++l) {
        const v128_t u0 = wasm_v128_load(y + l * m + i), u1 = wasm_v128_load(y + l * m + i + 2);
        v128_t x = wasm_v128_load64_splat(w0 + l);
        c00 = wasm_f64x2_sub(c00, wasm_f64x2_mul(u0, x));
        c10 = wasm_f64x2_sub(c10, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load64_splat(w1 + l);
        c01 = wasm_f64x2_sub(c01, wasm_f64x2_mul(u0, x));
        c11 = wasm_f64x2_sub(c11, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load64_splat(w2 + l);
        c02 = wasm_f64x2_sub(c02, wasm_f64x2_mul(u0, x));
        c12 = wasm_f64x2_sub(c12, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load64_splat(w3 + l);
        c03 = wasm_f64x2_sub(c03, wasm_f64x2_mul(u0, x));
        c13 = wasm_f64x2_sub(c13, wasm_f64x2_mul(u1, x));
      }
      wasm_v128_store(q0 + i, c00); wasm_v128_store(q1 + i, c01);
      wasm_v128_store(q2 + i, c02); wasm_v128_store(q3 + i, c03);
      wasm_v128_store(q0 + i + 2, c10); wasm_v128_store(q1 + i + 2, c11);
      wasm_v128_store(q2 + i + 2, c12); wasm_v128_store(q3 + i + 2, c13);
    }
    for (; i < m; ++i) {
      for (Index l = 0; l < nb; ++l) {
        const double u = y[l * m + i];
        q0[i] -= u * w0[l]; q1[i] -= u * w1[l]; q2[i] -= u * w2[l]; q3[i] -= u * w3[l];
      }
    }
  }
  for (; j < cols; ++j) {
    for (Index l = 0; l < nb; ++l) {
      const double x = w[j * nb + l];
      for (Index i = 0; i < m; ++i) q[j * ldq + i] -= y[l * m + i] * x;
    }
  }
}

}  // namespace nn
