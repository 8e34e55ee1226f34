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
inline void transposedProduct(const double *y, Index m, Index nb, const double *q, Index ldq, double *w) {
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

// C -= Y W for C (rows x cols, leading dimension ldc), Y (rows x k, leading dimension ldy) and
// W (k x cols, leading dimension k), all column-major. A 4 x 4 tile of Y W (two SIMD rows by
// four columns) is accumulated in registers while l runs over k and subtracted from C once,
// so that C is rounded once per call rather than once per term.
inline void subtractProduct(double *c, Index ldc, Index rows, Index cols, const double *y, Index ldy,
                            const double *w, Index k) {
  Index j = 0;
  for (; j + 3 < cols; j += 4) {
    double *c0 = c + j * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
    const double *w0 = w + j * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    Index i = 0;
    for (; i + 3 < rows; i += 4) {
      v128_t a00 = wasm_f64x2_splat(0.0), a01 = a00, a02 = a00, a03 = a00;
      v128_t a10 = a00, a11 = a00, a12 = a00, a13 = a00;
      for (Index l = 0; l < k; ++l) {
        const v128_t u0 = wasm_v128_load(y + l * ldy + i), u1 = wasm_v128_load(y + l * ldy + i + 2);
        v128_t x = wasm_v128_load64_splat(w0 + l);
        a00 = wasm_f64x2_add(a00, wasm_f64x2_mul(u0, x));
        a10 = wasm_f64x2_add(a10, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load64_splat(w1 + l);
        a01 = wasm_f64x2_add(a01, wasm_f64x2_mul(u0, x));
        a11 = wasm_f64x2_add(a11, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load64_splat(w2 + l);
        a02 = wasm_f64x2_add(a02, wasm_f64x2_mul(u0, x));
        a12 = wasm_f64x2_add(a12, wasm_f64x2_mul(u1, x));
        x = wasm_v128_load64_splat(w3 + l);
        a03 = wasm_f64x2_add(a03, wasm_f64x2_mul(u0, x));
        a13 = wasm_f64x2_add(a13, wasm_f64x2_mul(u1, x));
      }
      auto update = [](double *p, v128_t sum) { wasm_v128_store(p, wasm_f64x2_sub(wasm_v128_load(p), sum)); };
      update(c0 + i, a00); update(c1 + i, a01); update(c2 + i, a02); update(c3 + i, a03);
      update(c0 + i + 2, a10); update(c1 + i + 2, a11); update(c2 + i + 2, a12); update(c3 + i + 2, a13);
    }
    for (; i < rows; ++i) {
      double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
      for (Index l = 0; l < k; ++l) {
        const double u = y[l * ldy + i];
        s0 += u * w0[l]; s1 += u * w1[l]; s2 += u * w2[l]; s3 += u * w3[l];
      }
      c0[i] -= s0; c1[i] -= s1; c2[i] -= s2; c3[i] -= s3;
    }
  }
  for (; j < cols; ++j) {
    for (Index i = 0; i < rows; ++i) {
      double s = 0.0;
      for (Index l = 0; l < k; ++l) s += y[l * ldy + i] * w[j * k + l];
      c[j * ldc + i] -= s;
    }
  }
}

}  // namespace nn
