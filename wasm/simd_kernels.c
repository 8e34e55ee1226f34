// nngeometry's float32 WebAssembly SIMD128 kernels for the tfjs wasm backend (built by
// wasm/build-simd.sh into wasm/simd_kernels.wasm and src/backend/kernels/simd/simd-module.generated.ts).
//
// No libc, no imports, no static data: every function works on byte offsets into the module's own
// exported, growable memory, laid out by the JS loader (src/backend/kernels/simd/module.ts) from
// __heap_base on. All matrices are row-major float32.
//
// - im2col / col2im for NHWC 2-D convolutions (strides, explicit padding, dilations), in the
//   patch layout P [M, K] and its transpose Pᵀ [K, M] (M = N·OH·OW output pixels,
//   K = FH·FW·C taps), and the scatter-add adjoint;
// - an f32 GEMM C (+)= A·B with B packed in panels of 8 columns and a 4×8 register tile
//   (8 f32x4 accumulators, separate mul and add: baseline SIMD128 has no FMA);
// - the symmetric rank-k update C += XᵀX (upper-triangle tiles only, then mirrored);
// - the fused convolution gradients dW = Pᵀ·dy and dx = col2im(dy·Wᵀ), which run im2col / col2im on
//   cache-sized chunks of output pixels and never materialise the whole patch matrix.
//
// Threads: the heavy kernels take (chunk, chunks, slot) and compute only chunk `chunk` of `chunks`
// disjoint pieces of their output (columns, rows or examples) in the work slot of the thread
// that runs it (work + slot·work floats, laid out by the caller); threads take chunks from a
// shared counter, so a thread that the OS stalls delays one chunk, not half the work. Every
// output value is computed by one chunk with the same operations in the same order whatever the
// number of chunks, so results are bit-identical for any number of threads. The filter gradient
// sums over pixels: its chunks are blocks of pixels fixed by the geometry alone, whose partial
// sums are added in block order (nn_add_partials). The same source builds a single-thread module
// (own memory) and a threaded one (imported shared memory, exported __stack_pointer so each
// thread gets its own stack).
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// Convolution geometry, written by the loader as 15 int32 values.
typedef struct {
  int32_t n, h, w, c;     // input NHWC
  int32_t oh, ow;         // output height, width
  int32_t fh, fw;         // filter height, width
  int32_t sh, sw;         // strides
  int32_t dh, dw;         // dilations
  int32_t top, left;      // padding before the first row / column
  int32_t co;             // output channels
} Geom;

static void copy_f32(float *restrict dst, const float *restrict src, int32_t n) {
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  for (; i < n; i++) dst[i] = src[i];
}

static void zero_f32(float *dst, int32_t n) {
  const v128_t z = wasm_f32x4_splat(0.0f);
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, z);
  for (; i < n; i++) dst[i] = 0.0f;
}

static void add_f32(float *restrict dst, const float *restrict src, int32_t n) {
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
  for (; i < n; i++) dst[i] += src[i];
}

// Chunk `part` of `parts` contiguous ranges of [0, n) in whole units of `unit` (the last may be short).
static void part_range(int32_t n, int32_t unit, int32_t part, int32_t parts, int32_t *lo, int32_t *hi) {
  const int64_t units = (n + unit - 1) / unit;
  const int64_t u0 = units * part / parts, u1 = units * (part + 1) / parts;
  *lo = u0 * unit < n ? (int32_t)(u0 * unit) : n;
  *hi = u1 * unit < n ? (int32_t)(u1 * unit) : n;
}

EXPORT(nn_zero) void nn_zero(float *dst, int32_t n) { zero_f32(dst, n); }

// ---------------------------------------------------------------------------------------------
// im2col / col2im

// Rows [m0, m1) of the patch matrix P [M, K] into out [(m1 - m0), K]; zero where a tap reads padding.
EXPORT(nn_im2col_mk) void nn_im2col_mk(const float *x, const Geom *g, int32_t m0, int32_t m1, float *out) {
  const int32_t C = g->c, W = g->w, H = g->h, OW = g->ow, OH = g->oh, FW = g->fw, FH = g->fh;
  const int32_t rowLen = FW * C;
  int32_t ow = m0 % OW, t = m0 / OW, oh = t % OH, b = t / OH;
  for (int32_t m = m0; m < m1; m++) {
    const float *xb = x + (int64_t)b * H * W * C;
    for (int32_t kr = 0; kr < FH; kr++, out += rowLen) {
      const int32_t ih = oh * g->sh - g->top + kr * g->dh;
      if (ih < 0 || ih >= H) { zero_f32(out, rowLen); continue; }
      const float *xr = xb + (int64_t)ih * W * C;
      int32_t iw = ow * g->sw - g->left;
      if (g->dw == 1 && iw >= 0 && iw + FW <= W) {
        copy_f32(out, xr + iw * C, rowLen);  // the whole filter row is inside: one contiguous run
        continue;
      }
      for (int32_t kc = 0; kc < FW; kc++, iw += g->dw) {
        if (iw < 0 || iw >= W) zero_f32(out + kc * C, C);
        else copy_f32(out + kc * C, xr + iw * C, C);
      }
    }
    if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; b++; } }
  }
}

// Pᵀ [K, M] into out: row k = (kr·FW + kc)·C + c, written in contiguous runs of OW pixels.
EXPORT(nn_im2col_km) void nn_im2col_km(const float *x, const Geom *g, float *out) {
  const int32_t C = g->c, W = g->w, H = g->h, OW = g->ow, OH = g->oh, N = g->n;
  const int64_t M = (int64_t)N * OH * OW;
  for (int32_t kr = 0; kr < g->fh; kr++) {
    for (int32_t kc = 0; kc < g->fw; kc++) {
      float *tap = out + (int64_t)(kr * g->fw + kc) * C * M;
      // Output columns [lo, hi) read inside the input for this tap.
      int32_t lo = 0, hi = OW;
      for (int32_t ow = 0; ow < OW; ow++) {
        const int32_t iw = ow * g->sw - g->left + kc * g->dw;
        if (iw < 0) lo = ow + 1;
        else if (iw >= W && hi == OW) hi = ow;
      }
      if (hi < lo) hi = lo;
      int64_t m = 0;
      for (int32_t b = 0; b < N; b++) {
        for (int32_t oh = 0; oh < OH; oh++, m += OW) {
          const int32_t ih = oh * g->sh - g->top + kr * g->dh;
          if (ih < 0 || ih >= H) {
            for (int32_t c = 0; c < C; c++) zero_f32(tap + c * M + m, OW);
            continue;
          }
          const float *xr = x + ((int64_t)(b * H + ih) * W) * C;
          const int32_t step = g->sw * C;
          const float *x0 = xr + (int64_t)(lo * g->sw - g->left + kc * g->dw) * C;
          for (int32_t c = 0; c < C; c++) {
            float *o = tap + c * M + m;
            for (int32_t ow = 0; ow < lo; ow++) o[ow] = 0.0f;
            const float *xs = x0 + c;
            for (int32_t ow = lo; ow < hi; ow++, xs += step) o[ow] = *xs;
            for (int32_t ow = hi; ow < OW; ow++) o[ow] = 0.0f;
          }
        }
      }
    }
  }
}

// Adds rows [m0, m1) of the columns matrix cols [(m1 - m0), K] (layout of P) onto the NHWC dx.
EXPORT(nn_col2im_add) void nn_col2im_add(const float *cols, const Geom *g, int32_t m0, int32_t m1, float *dx) {
  const int32_t C = g->c, W = g->w, H = g->h, OW = g->ow, OH = g->oh, FW = g->fw, FH = g->fh;
  int32_t ow = m0 % OW, t = m0 / OW, oh = t % OH, b = t / OH;
  for (int32_t m = m0; m < m1; m++) {
    float *xb = dx + (int64_t)b * H * W * C;
    for (int32_t kr = 0; kr < FH; kr++, cols += FW * C) {
      const int32_t ih = oh * g->sh - g->top + kr * g->dh;
      if (ih < 0 || ih >= H) continue;
      float *xr = xb + (int64_t)ih * W * C;
      int32_t iw = ow * g->sw - g->left;
      if (g->dw == 1 && iw >= 0 && iw + FW <= W) {
        add_f32(xr + iw * C, cols, FW * C);
        continue;
      }
      for (int32_t kc = 0; kc < FW; kc++, iw += g->dw) {
        if (iw >= 0 && iw < W) add_f32(xr + iw * C, cols + kc * C, C);
      }
    }
    if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; b++; } }
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM building blocks

// Packs columns [0, n) of the kc rows of b (leading dimension ldb) into panels of 8 columns:
// panel j holds b[p][8j .. 8j+8) for p in [0, kc) contiguously, zero-padded past n.
static void pack_panels(const float *b, int32_t ldb, int32_t kc, int32_t n, float *out) {
  for (int32_t j = 0; j < n; j += 8, out += kc * 8) {
    const int32_t w = n - j < 8 ? n - j : 8;
    const float *src = b + j;
    float *dst = out;
    if (w == 8) {
      for (int32_t p = 0; p < kc; p++, src += ldb, dst += 8) {
        wasm_v128_store(dst, wasm_v128_load(src));
        wasm_v128_store(dst + 4, wasm_v128_load(src + 4));
      }
    } else {
      for (int32_t p = 0; p < kc; p++, src += ldb, dst += 8) {
        int32_t t = 0;
        for (; t < w; t++) dst[t] = src[t];
        for (; t < 8; t++) dst[t] = 0.0f;
      }
    }
  }
}

// Packs columns [0, n) of Bᵀ-stored rows: B(p, j) = b[j·ldb + p] for p in [0, kc), into panels of 8
// columns as pack_panels does (zero-padded past n).
static void pack_transposed_panels_ld(const float *b, int32_t ldb, int32_t kc, int32_t n, float *out) {
  for (int32_t j = 0; j < n; j += 8, out += kc * 8) {
    const int32_t w = n - j < 8 ? n - j : 8;
    for (int32_t t = 0; t < w; t++) {
      const float *src = b + (int64_t)(j + t) * ldb;
      for (int32_t p = 0; p < kc; p++) out[p * 8 + t] = src[p];
    }
    for (int32_t t = w; t < 8; t++) {
      for (int32_t p = 0; p < kc; p++) out[p * 8 + t] = 0.0f;
    }
  }
}

// Packs Wᵀ for W [K, CO] (row-major) into panels of 8 columns of Wᵀ [CO, K].
static void pack_transposed_panels(const float *w, int32_t K, int32_t CO, float *out) {
  for (int32_t j = 0; j < K; j += 8, out += CO * 8) {
    for (int32_t p = 0; p < CO; p++) {
      for (int32_t t = 0; t < 8; t++) out[p * 8 + t] = j + t < K ? w[(j + t) * CO + p] : 0.0f;
    }
  }
}

// Stores the 4×8 tile (c00..c31 as in tile4x8) into min(rows, 4) × min(cols, 8) values of c.
#define STORE_TILE()                                                                                           \
  do {                                                                                                         \
    if (rows >= 4 && cols >= 8) {                                                                              \
      float *r0 = c, *r1 = c + ldc, *r2 = r1 + ldc, *r3 = r2 + ldc;                                            \
      if (accumulate) {                                                                                        \
        c00 = wasm_f32x4_add(c00, wasm_v128_load(r0)); c01 = wasm_f32x4_add(c01, wasm_v128_load(r0 + 4));      \
        c10 = wasm_f32x4_add(c10, wasm_v128_load(r1)); c11 = wasm_f32x4_add(c11, wasm_v128_load(r1 + 4));      \
        c20 = wasm_f32x4_add(c20, wasm_v128_load(r2)); c21 = wasm_f32x4_add(c21, wasm_v128_load(r2 + 4));      \
        c30 = wasm_f32x4_add(c30, wasm_v128_load(r3)); c31 = wasm_f32x4_add(c31, wasm_v128_load(r3 + 4));      \
      }                                                                                                        \
      wasm_v128_store(r0, c00); wasm_v128_store(r0 + 4, c01);                                                  \
      wasm_v128_store(r1, c10); wasm_v128_store(r1 + 4, c11);                                                  \
      wasm_v128_store(r2, c20); wasm_v128_store(r2 + 4, c21);                                                  \
      wasm_v128_store(r3, c30); wasm_v128_store(r3 + 4, c31);                                                  \
    } else {                                                                                                   \
      float t[32];                                                                                             \
      wasm_v128_store(t, c00); wasm_v128_store(t + 4, c01);                                                    \
      wasm_v128_store(t + 8, c10); wasm_v128_store(t + 12, c11);                                               \
      wasm_v128_store(t + 16, c20); wasm_v128_store(t + 20, c21);                                              \
      wasm_v128_store(t + 24, c30); wasm_v128_store(t + 28, c31);                                              \
      const int32_t nr = rows < 4 ? rows : 4, nc = cols < 8 ? cols : 8;                                        \
      for (int32_t r = 0; r < nr; r++) {                                                                       \
        for (int32_t j = 0; j < nc; j++) c[r * ldc + j] = (accumulate ? c[r * ldc + j] : 0.0f) + t[r * 8 + j]; \
      }                                                                                                        \
    }                                                                                                          \
  } while (0)

#define FMA_ROW(x, r)                                  \
  c##r##0 = wasm_f32x4_add(c##r##0, wasm_f32x4_mul(x, b0)); \
  c##r##1 = wasm_f32x4_add(c##r##1, wasm_f32x4_mul(x, b1))

// The 4×8 register tile: T[r][0..8) = Σ_p A(r, p)·B(p, 0..8) over p in [0, kc), where
// A(r, p) = a[p·asp + r·asi] and B(p, ·) is row p of a packed panel. Rows past `rows` repeat row
// 0 (their results are discarded). Stores min(rows, 4) × min(cols, 8) values into c (leading
// dimension ldc), added to what is there when accumulate is set.
static inline void tile4x8(int32_t kc, const float *a, int32_t asp, int32_t asi, const float *b,
                           float *c, int32_t ldc, int32_t rows, int32_t cols, int32_t accumulate) {
  v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00;
  v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const float *a0 = a;
  const float *a1 = a + (rows > 1 ? asi : 0);
  const float *a2 = a + (rows > 2 ? 2 * asi : 0);
  const float *a3 = a + (rows > 3 ? 3 * asi : 0);
  for (int32_t p = 0; p < kc; p++) {
    const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
    b += 8;
    v128_t x = wasm_v128_load32_splat(a0);
    FMA_ROW(x, 0);
    x = wasm_v128_load32_splat(a1);
    FMA_ROW(x, 1);
    x = wasm_v128_load32_splat(a2);
    FMA_ROW(x, 2);
    x = wasm_v128_load32_splat(a3);
    FMA_ROW(x, 3);
    a0 += asp; a1 += asp; a2 += asp; a3 += asp;
  }
  STORE_TILE();
}

#define KC 256  // depth of a packed block of B (a panel of KC×8 floats is 8 KiB)
#define MC 64   // rows of A per block

// Rows [r0, r1) and columns [j0, j1) of C [m, n] (+)= op(A)·op(B); work: KC·round8(j1 - j0) floats.
static void sgemm_range(int32_t m, int32_t n, int32_t k, const float *a, const float *b, float *c, int32_t trans_a,
                        int32_t trans_b, int32_t accumulate, float *work, int32_t r0, int32_t r1, int32_t j0, int32_t j1) {
  if (r0 >= r1 || j0 >= j1) return;
  if (k == 0) {
    if (!accumulate) {
      for (int32_t i = r0; i < r1; i++) zero_f32(c + (int64_t)i * n + j0, j1 - j0);
    }
    return;
  }
  // A(i, p) = a[p·asp + i·asi]
  const int32_t asp = trans_a ? m : 1, asi = trans_a ? 1 : k;
  for (int32_t p0 = 0; p0 < k; p0 += KC) {
    const int32_t kc = k - p0 < KC ? k - p0 : KC;
    const int32_t acc = accumulate || p0 > 0;
    if (trans_b) pack_transposed_panels_ld(b + (int64_t)j0 * k + p0, k, kc, j1 - j0, work);
    else pack_panels(b + (int64_t)p0 * n + j0, n, kc, j1 - j0, work);
    for (int32_t i0 = r0; i0 < r1; i0 += MC) {
      const int32_t i1 = r1 - i0 < MC ? r1 : i0 + MC;
      for (int32_t j = j0; j < j1; j += 8) {
        const float *panel = work + (int64_t)((j - j0) / 8) * kc * 8;
        for (int32_t i = i0; i < i1; i += 4) {
          tile4x8(kc, a + (int64_t)p0 * asp + (int64_t)i * asi, asp, asi, panel, c + (int64_t)i * n + j, n, i1 - i, j1 - j, acc);
        }
      }
    }
  }
}

// C [m, n] (+)= op(A)·op(B), op(A) [m, k], op(B) [k, n], where op(A) = A (a is [m, k]) or Aᵀ
// (trans_a: a is [k, m]), and likewise for B (trans_b: b is [n, k]). The transposes cost nothing
// extra: A is read through strides and B is transposed while it is packed.
// work: KC·round8(n) floats per slot (one packed block of B). Chunks split the columns in panels
// of 8 when there are at least two panels per chunk, else the rows in fours.
EXPORT(nn_sgemm) void nn_sgemm(int32_t m, int32_t n, int32_t k, const float *a, const float *b, float *c,
                                int32_t trans_a, int32_t trans_b, int32_t accumulate, float *work, int32_t chunk, int32_t chunks,
                                int32_t slot) {
  int32_t r0 = 0, r1 = m, j0 = 0, j1 = n;
  work += (int64_t)slot * KC * ((n + 7) & ~7);
  if ((n + 7) / 8 >= 2 * chunks) part_range(n, 8, chunk, chunks, &j0, &j1);
  else part_range(m, 4, chunk, chunks, &r0, &r1);
  sgemm_range(m, n, k, a, b, c, trans_a, trans_b, accumulate, work, r0, r1, j0, j1);
}

// `count` products C_i (=) op(A_i)·op(B_i), A_i = a + i·stride_a floats (likewise B, C): a chunk
// computes the products of its range, each whole, in its slot's work (KC·round8(n) floats).
EXPORT(nn_sgemm_batch) void nn_sgemm_batch(int32_t count, int32_t m, int32_t n, int32_t k, const float *a, int32_t stride_a,
                                           const float *b, int32_t stride_b, float *c, int32_t stride_c, int32_t trans_a,
                                           int32_t trans_b, float *work, int32_t chunk, int32_t chunks, int32_t slot) {
  int32_t lo = 0, hi = count;
  work += (int64_t)slot * KC * ((n + 7) & ~7);
  part_range(count, 1, chunk, chunks, &lo, &hi);
  for (int32_t i = lo; i < hi; i++) {
    sgemm_range(m, n, k, a + (int64_t)i * stride_a, b + (int64_t)i * stride_b, c + (int64_t)i * stride_c, trans_a, trans_b,
                0, work, 0, m, 0, n);
  }
}

// C [n, n] += Xᵀ·X for X [m, n]: only the tiles that touch the upper triangle are computed, then
// (mirror != 0) the strict lower triangle is overwritten by the upper one. The caller's C must
// be symmetric (e.g. zero) for the result to be C + XᵀX. work: KC·round8(n) floats per slot.
// Chunks own ranges of columns (panels of 8) of equal triangle area: a chunk computes the upper
// tiles of its columns and mirrors them into its rows, which no other chunk reads or writes.
#define NC 256  // columns of C per block: their packed panels (NC·KC floats, 256 KiB) stay in cache

// Whole panels of 8 before column bound p of `parts`, where columns [0, b_p) hold p/parts of the
// triangle's area (b_p = n·sqrt(p/parts)); exact for p = 0 and p = parts.
static int32_t triangle_bound(int32_t n, int32_t p, int32_t parts) {
  if (p >= parts) return n;
  const double t = (double)n * __builtin_sqrt((double)p / (double)parts);
  const int32_t b = ((int32_t)(t + 4.0)) & ~7;
  return b < n ? b : n;
}

EXPORT(nn_ssyrk) void nn_ssyrk(int32_t m, int32_t n, const float *x, float *c, int32_t mirror, float *work, int32_t chunk,
                                int32_t chunks, int32_t slot) {
  work += (int64_t)slot * KC * ((n + 7) & ~7);
  const int32_t c0 = triangle_bound(n, chunk, chunks), c1 = triangle_bound(n, chunk + 1, chunks);
  if (c0 >= c1) return;
  for (int32_t p0 = 0; p0 < m; p0 += KC) {
    const int32_t kc = m - p0 < KC ? m - p0 : KC;
    // The panels of columns [0, c1): the chunk's own columns and the rows above them.
    pack_panels(x + (int64_t)p0 * n, n, kc, c1, work);
    // Blocks of NC columns: every row block i reuses the block's panels while they are in cache
    // (without it, each row block streamed all n/8 panels: 3x slower at n = 5409).
    for (int32_t j0 = c0; j0 < c1; j0 += NC) {
      const int32_t j1 = c1 - j0 < NC ? c1 : j0 + NC;
      for (int32_t i = 0; i < j1; i += 4) {
        // A(r, p) = X[p][i + r]: 4 consecutive values inside the packed panel that holds column i.
        const float *a = work + (int64_t)(i / 8) * kc * 8 + (i % 8);
        const int32_t jstart = (i / 8) * 8 > j0 ? (i / 8) * 8 : j0;
        for (int32_t j = jstart; j < j1; j += 8) {
          tile4x8(kc, a, 8, 1, work + (int64_t)(j / 8) * kc * 8, c + (int64_t)i * n + j, n, n - i, j1 - j, 1);
        }
      }
    }
  }
  if (mirror) {
    for (int32_t i = c0 > 1 ? c0 : 1; i < c1; i++) {
      for (int32_t j = 0; j < i; j++) c[(int64_t)i * n + j] = c[(int64_t)j * n + i];
    }
  }
}

// The most blocks whose partial sums of rows·cols floats each a split sum may keep: 8, and all
// of them within 2 M floats (at least 1). The callers lay out that many partials.
EXPORT(nn_max_blocks) int32_t nn_max_blocks(int32_t rows, int32_t cols) {
  const int64_t per = (int64_t)rows * cols;
  const int64_t budget = (int64_t)(1 << 21) / (per > 0 ? per : 1);
  return budget >= 8 ? 8 : budget < 1 ? 1 : (int32_t)budget;
}

// Blocks, `wanted` or fewer, of a sum split into partials of rows·cols floats (nn_max_blocks).
static int32_t capped_blocks(int64_t wanted, int32_t rows, int32_t cols) {
  const int32_t most = nn_max_blocks(rows, cols);
  return wanted > most ? most : wanted < 1 ? 1 : (int32_t)wanted;
}

// Blocks of rows of X whose XᵀX nn_ssyrk_rows forms separately (the chunks of its call), fixed by
// (m, n) alone so that the sum does not depend on the thread count: at least two packed blocks
// of KC rows per block, at most 8 blocks, and their partials within 2 M floats. 1: use nn_ssyrk.
EXPORT(nn_ssyrk_blocks) int32_t nn_ssyrk_blocks(int32_t m, int32_t n) {
  return capped_blocks((m + KC - 1) / KC / 2, n, n);
}

// P_b [n, n] = X_bᵀX_b (upper-triangle tiles; the strict lower triangle is not meaningful) for
// block `chunk` of `chunks` (nn_ssyrk_blocks) of the rows of X [m, n], into p + chunk·n·n: for a
// tall, narrow X, where splitting the columns would pack every block of rows once per chunk.
// work: KC·round8(n) floats per slot.
EXPORT(nn_ssyrk_rows) void nn_ssyrk_rows(int32_t m, int32_t n, const float *x, float *p, float *work, int32_t chunk,
                                         int32_t chunks, int32_t slot) {
  int32_t lo, hi;
  part_range(m, KC, chunk, chunks, &lo, &hi);
  work += (int64_t)slot * KC * ((n + 7) & ~7);
  float *c = p + (int64_t)chunk * n * n;
  zero_f32(c, n * n);
  if (lo < hi) nn_ssyrk(hi - lo, n, x + (int64_t)lo * n, c, 0, work, 0, 1, 0);
}

// C += P_0 + P_1 + ... + P_{count-1} (upper triangle, in that order), then (mirror != 0) the
// strict lower triangle of C overwritten by the upper one.
EXPORT(nn_ssyrk_add_partials) void nn_ssyrk_add_partials(const float *p, int32_t count, int32_t n, float *c, int32_t mirror) {
  for (int32_t b = 0; b < count; b++) add_f32(c, p + (int64_t)b * n * n, n * n);
  if (mirror) {
    for (int32_t i = 1; i < n; i++) {
      for (int32_t j = 0; j < i; j++) c[(int64_t)i * n + j] = c[(int64_t)j * n + i];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Fused convolution gradients

// Output pixels per chunk: the chunk of P (or of the columns) holds about 64 K floats.
static int32_t chunk_rows(int32_t K, int32_t lo, int32_t hi) {
  int32_t r = (1 << 16) / (K > 0 ? K : 1);
  if (r < lo) r = lo;
  if (r > hi) r = hi;
  return r & ~3;
}

// Work floats nn_conv_filter_grad needs (per slot).
EXPORT(nn_conv_filter_grad_work) int32_t nn_conv_filter_grad_work(const Geom *g) {
  const int32_t K = g->fh * g->fw * g->c;
  const int32_t mc = chunk_rows(K, 64, 1024);
  return mc * K + mc * ((g->co + 7) & ~7);
}

// Blocks of output pixels whose dW partial sums nn_conv_filter_grad forms separately (the chunks
// of its call), fixed by the geometry alone so that the sum does not depend on the thread count:
// at least two pixel chunks per block, at most 8 blocks, and their partials within 2 M floats.
// With 1 block the kernel writes dW directly.
EXPORT(nn_conv_filter_grad_blocks) int32_t nn_conv_filter_grad_blocks(const Geom *g) {
  const int32_t K = g->fh * g->fw * g->c, CO = g->co;
  const int64_t M = (int64_t)g->n * g->oh * g->ow;
  const int32_t mc = chunk_rows(K, 64, 1024);
  return capped_blocks((M + mc - 1) / mc / 2, K, CO);
}

// dW_b [K, CO] = P_bᵀ·dy_b for block `chunk` of `chunks` (nn_conv_filter_grad_blocks) of the output
// pixels of x [N, H, W, C] and dy [M, CO], into dw + chunk·K·CO: per cache-sized run of the
// block's pixels, the rows of P (im2col) and the packed rows of dy, then 4×8 tiles over (K, CO)
// that accumulate into dW_b. dW is the sum of the blocks' partials in block order (nn_add_partials).
EXPORT(nn_conv_filter_grad) void nn_conv_filter_grad(const float *x, const float *dy, const Geom *g, float *dw, float *work,
                                                     int32_t chunk, int32_t chunks, int32_t slot) {
  const int32_t K = g->fh * g->fw * g->c, CO = g->co;
  const int32_t M = g->n * g->oh * g->ow;
  const int32_t mc = chunk_rows(K, 64, 1024);
  int32_t lo, hi;
  part_range(M, mc, chunk, chunks, &lo, &hi);
  work += (int64_t)slot * nn_conv_filter_grad_work(g);
  dw += (int64_t)chunk * K * CO;
  float *patches = work, *dyp = work + mc * K;
  zero_f32(dw, K * CO);
  for (int32_t m0 = lo; m0 < hi; m0 += mc) {
    const int32_t rows = hi - m0 < mc ? hi - m0 : mc;
    nn_im2col_mk(x, g, m0, m0 + rows, patches);
    pack_panels(dy + (int64_t)m0 * CO, CO, rows, CO, dyp);
    for (int32_t i = 0; i < K; i += 4) {
      for (int32_t j = 0; j < CO; j += 8) {
        tile4x8(rows, patches + i, K, 1, dyp + (int64_t)(j / 8) * rows * 8, dw + (int64_t)i * CO + j, CO, K - i, CO - j, 1);
      }
    }
  }
}

// out [n] = p_0 + p_1 + ... + p_{count-1}, the count arrays of n floats at p, added in that order.
EXPORT(nn_add_partials) void nn_add_partials(const float *p, int32_t count, int32_t n, float *out) {
  copy_f32(out, p, n);
  for (int32_t b = 1; b < count; b++) add_f32(out, p + (int64_t)b * n, n);
}

// Work floats nn_conv_input_grad needs (per slot).
EXPORT(nn_conv_input_grad_work) int32_t nn_conv_input_grad_work(const Geom *g) {
  const int32_t K = g->fh * g->fw * g->c;
  const int32_t mc = chunk_rows(K, 16, 1024);
  return ((K + 7) & ~7) * g->co + mc * K;
}

// dx [N, H, W, C] = col2im(dy·Wᵀ) for dy [M, CO] and the filter W [K, CO]: Wᵀ packed once, then
// per chunk of output pixels the columns dy·Wᵀ in 4×8 tiles and their scatter-add onto dx.
// Chunks own ranges of examples (an example's pixels only reach its own dx).
EXPORT(nn_conv_input_grad) void nn_conv_input_grad(const float *dy, const float *w, const Geom *g, float *dx, float *work,
                                                   int32_t chunk, int32_t chunks, int32_t slot) {
  const int32_t K = g->fh * g->fw * g->c, CO = g->co;
  const int32_t per = g->oh * g->ow;
  const int32_t mc = chunk_rows(K, 16, 1024);
  int32_t b0, b1;
  part_range(g->n, 1, chunk, chunks, &b0, &b1);
  if (b0 >= b1) return;
  work += (int64_t)slot * nn_conv_input_grad_work(g);
  float *wp = work, *cols = work + ((K + 7) & ~7) * CO;
  pack_transposed_panels(w, K, CO, wp);
  const int32_t xper = g->h * g->w * g->c;
  zero_f32(dx + (int64_t)b0 * xper, (b1 - b0) * xper);
  const int32_t M = b1 * per;
  for (int32_t m0 = b0 * per; m0 < M; m0 += mc) {
    const int32_t rows = M - m0 < mc ? M - m0 : mc;
    const float *a = dy + (int64_t)m0 * CO;
    for (int32_t i = 0; i < rows; i += 4) {
      for (int32_t j = 0; j < K; j += 8) {
        tile4x8(CO, a + (int64_t)i * CO, 1, CO, wp + (int64_t)(j / 8) * CO * 8, cols + (int64_t)i * K + j, K, rows - i, K - j, 0);
      }
    }
    nn_col2im_add(cols, g, m0, m0 + rows, dx);
  }
}

// ---------------------------------------------------------------------------------------------
// Forward convolution (implicit GEMM)

// Work floats nn_conv_forward needs (per slot): W packed in panels of 8 output channels (K × 8 each).
EXPORT(nn_conv_forward_work) int32_t nn_conv_forward_work(const Geom *g) {
  return g->fh * g->fw * g->c * ((g->co + 7) & ~7);
}

// y [M, CO] = P·W (+ bias) (relu when relu != 0) for x [N, H, W, C], W [K, CO], dilation 1,
// without the patch matrix: within one filter row kr the taps (kc, c) of an output pixel are FW·C
// consecutive floats of x, and the next output pixel's start sw·C floats further, so up to 4
// pixels of one output row are a block of A with strides (1, sw·C) — one 4×8 tile per filter row
// and 8 output channels, read straight from x. Pixels whose filter row overhangs the left or
// right padding use the taps kc in [k0, k1) that fall inside (a contiguous run of x, and of the
// packed W); pixels are grouped by equal [k0, k1), so interior pixels go 4 at a time. Filter rows
// in the top/bottom padding contribute nothing and are skipped. bias: CO floats or 0 (null).
// Chunks own ranges of examples, each packing W in its slot's work.
EXPORT(nn_conv_forward) void nn_conv_forward(const float *x, const float *w, const float *bias, const Geom *g,
                                             int32_t relu, float *y, float *work, int32_t chunk, int32_t chunks, int32_t slot) {
  const int32_t C = g->c, H = g->h, W = g->w, OH = g->oh, OW = g->ow, FH = g->fh, FW = g->fw, CO = g->co;
  const int32_t K = FH * FW * C, rowK = FW * C, sw = g->sw, sh = g->sh;
  int32_t b0, b1;
  part_range(g->n, 1, chunk, chunks, &b0, &b1);
  if (b0 >= b1) return;
  work += (int64_t)slot * nn_conv_forward_work(g);
  float *wp = work;
  pack_panels(w, CO, K, CO, wp);
  for (int32_t b = b0; b < b1; b++) {
    const float *xb = x + (int64_t)b * H * W * C;
    for (int32_t oh = 0; oh < OH; oh++) {
      float *yr = y + ((int64_t)(b * OH + oh) * OW) * CO;
      for (int32_t ow = 0; ow < OW; ow++) {
        if (bias) copy_f32(yr + ow * CO, bias, CO);
        else zero_f32(yr + ow * CO, CO);
      }
      for (int32_t ow = 0; ow < OW;) {
        const int32_t iw = ow * sw - g->left;
        const int32_t k0 = iw < 0 ? -iw : 0, k1 = W - iw < FW ? W - iw : FW;
        // Following pixels with the same taps inside the input, up to 4.
        int32_t rows = 1;
        while (rows < 4 && ow + rows < OW) {
          const int32_t iw2 = (ow + rows) * sw - g->left;
          const int32_t k0b = iw2 < 0 ? -iw2 : 0, k1b = W - iw2 < FW ? W - iw2 : FW;
          if (k0b != k0 || k1b != k1) break;
          rows++;
        }
        if (k1 > k0) {
          for (int32_t kr = 0; kr < FH; kr++) {
            const int32_t ih = oh * sh - g->top + kr;
            if (ih < 0 || ih >= H) continue;
            const float *a = xb + ((int64_t)ih * W + iw + k0) * C;
            for (int32_t j = 0; j < CO; j += 8) {
              tile4x8((k1 - k0) * C, a, 1, sw * C, wp + (int64_t)(j / 8) * K * 8 + (kr * rowK + k0 * C) * 8,
                      yr + ow * CO + j, CO, rows, CO - j, 1);
            }
          }
        }
        ow += rows;
      }
      if (relu) {
        const v128_t z = wasm_f32x4_splat(0.0f);
        int32_t i = 0;
        const int32_t n = OW * CO;
        for (; i + 4 <= n; i += 4) wasm_v128_store(yr + i, wasm_f32x4_max(wasm_v128_load(yr + i), z));
        for (; i < n; i++) yr[i] = yr[i] < 0.0f ? 0.0f : yr[i];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Float64 GEMM for the eigensolver (wasm/eigen_linalg.cpp calls out to it through the loader)
//
// C (m × n, column-major, ldc) (+)= A (m × k, column-major, lda) · B (k × n, column-major, ldb),
// the same blocking and the same arithmetic as gemmAccumulate in wasm/blocked_gemm.hpp (Goto and
// van de Geijn, ACM TOMS 34(3), 2008): B packed in kc × nc panels of micro-panels of 4 columns, A
// in mc × kc blocks of micro-panels of 4 rows, a 4 × 4 register tile in 8 f64x2 accumulators
// (separate mul and add: SIMD128 has no FMA). Every C value is C + Σ over depth blocks [p0, p0 +
// 256) of the block's products summed from 0 in order of l, each block's sum added to C in order
// of p0: the same operations in the same order as the eigensolver's own product, whatever the
// split, so that its results do not depend on whether a product ran here or there, nor on the
// thread count. Chunks own ranges of whole 4-column micro-panels of C (or of 4-row micro-panels
// when there are fewer than two column micro-panels per chunk); the depth is never split.
// Without accumulate, a chunk first zeroes its part of C (then 0 + Σ, as the eigensolver's
// gemmAssign does, so that a −0 sum comes out +0 in both).

#define DGEMM_MR 4
#define DGEMM_NR 4
#define DGEMM_KC 256
#define DGEMM_ABLOCK 32768  // doubles of the packed A block: 256 KB, a quarter of a 1 MB L2
#define DGEMM_NC 1024

// Packs the mc × kc block of A (column-major, lda) into micro-panels of 4 rows, zero-padded.
static void dgemm_pack_a(const double *a, int32_t lda, int32_t mc, int32_t kc, double *ap) {
  for (int32_t i0 = 0; i0 < mc; i0 += DGEMM_MR) {
    double *dst = ap + (int64_t)i0 * kc;
    const int32_t rows = mc - i0 < DGEMM_MR ? mc - i0 : DGEMM_MR;
    if (rows == DGEMM_MR) {
      for (int32_t l = 0; l < kc; l++) {
        const double *src = a + (int64_t)l * lda + i0;
        wasm_v128_store(dst + l * DGEMM_MR, wasm_v128_load(src));
        wasm_v128_store(dst + l * DGEMM_MR + 2, wasm_v128_load(src + 2));
      }
    } else {
      for (int32_t l = 0; l < kc; l++) {
        const double *src = a + (int64_t)l * lda + i0;
        for (int32_t t = 0; t < DGEMM_MR; t++) dst[l * DGEMM_MR + t] = t < rows ? src[t] : 0.0;
      }
    }
  }
}

// Packs the kc × nc panel of B (column-major, ldb) into micro-panels of 4 columns, zero-padded.
static void dgemm_pack_b(const double *b, int32_t ldb, int32_t kc, int32_t nc, double *bp) {
  for (int32_t j0 = 0; j0 < nc; j0 += DGEMM_NR) {
    double *dst = bp + (int64_t)j0 * kc;
    const int32_t cols = nc - j0 < DGEMM_NR ? nc - j0 : DGEMM_NR;
    if (cols == DGEMM_NR) {
      const double *b0 = b + (int64_t)j0 * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
      for (int32_t l = 0; l < kc; l++) {
        double *d = dst + l * DGEMM_NR;
        d[0] = b0[l];
        d[1] = b1[l];
        d[2] = b2[l];
        d[3] = b3[l];
      }
    } else {
      for (int32_t l = 0; l < kc; l++) {
        for (int32_t t = 0; t < DGEMM_NR; t++) dst[l * DGEMM_NR + t] = t < cols ? b[(int64_t)(j0 + t) * ldb + l] : 0.0;
      }
    }
  }
}

static inline void dgemm_add(double *p, v128_t s) { wasm_v128_store(p, wasm_f64x2_add(wasm_v128_load(p), s)); }

// C (mc × nc, column-major, ldc) += Ap·Bp for a packed block of A and panel of B.
__attribute__((noinline)) static void dgemm_macro(int32_t mc, int32_t nc, int32_t kc, const double *ap, const double *bp,
                                                  double *c, int32_t ldc) {
  for (int32_t j0 = 0; j0 < nc; j0 += DGEMM_NR) {
    const double *bpanel = bp + (int64_t)j0 * kc;
    const int32_t cols = nc - j0 < DGEMM_NR ? nc - j0 : DGEMM_NR;
    for (int32_t i0 = 0; i0 < mc; i0 += DGEMM_MR) {
      const double *pa = ap + (int64_t)i0 * kc, *pb = bpanel;
      v128_t c00 = wasm_f64x2_splat(0.0), c01 = c00, c02 = c00, c03 = c00;
      v128_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
      for (int32_t l = 0; l < kc; l++, pa += DGEMM_MR, pb += DGEMM_NR) {
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
      const int32_t rows = mc - i0 < DGEMM_MR ? mc - i0 : DGEMM_MR;
      double *ct = c + (int64_t)j0 * ldc + i0;
      if (rows == DGEMM_MR && cols == DGEMM_NR) {
        dgemm_add(ct, c00);
        dgemm_add(ct + 2, c10);
        dgemm_add(ct + ldc, c01);
        dgemm_add(ct + ldc + 2, c11);
        dgemm_add(ct + 2 * ldc, c02);
        dgemm_add(ct + 2 * ldc + 2, c12);
        dgemm_add(ct + 3 * ldc, c03);
        dgemm_add(ct + 3 * ldc + 2, c13);
      } else {
        double tile[DGEMM_MR * DGEMM_NR];
        wasm_v128_store(tile, c00);
        wasm_v128_store(tile + 2, c10);
        wasm_v128_store(tile + 4, c01);
        wasm_v128_store(tile + 6, c11);
        wasm_v128_store(tile + 8, c02);
        wasm_v128_store(tile + 10, c12);
        wasm_v128_store(tile + 12, c03);
        wasm_v128_store(tile + 14, c13);
        for (int32_t jj = 0; jj < cols; jj++) {
          for (int32_t ii = 0; ii < rows; ii++) ct[(int64_t)jj * ldc + ii] += tile[jj * DGEMM_MR + ii];
        }
      }
    }
  }
}

// Rows of the packed A block for depth k: it fills DGEMM_ABLOCK doubles, in whole micro-panels.
static int32_t dgemm_mc(int32_t k) {
  const int32_t kc = k < DGEMM_KC ? (k > 0 ? k : 1) : DGEMM_KC;
  const int32_t mc = DGEMM_ABLOCK / kc / DGEMM_MR * DGEMM_MR;
  return mc > DGEMM_MR ? mc : DGEMM_MR;
}

// Doubles of work nn_dgemm needs per slot for a product with n columns and depth k: one packed
// panel of B (kc × round4(min(n, 1024))) and one packed block of A (kc × mc).
EXPORT(nn_dgemm_work) int32_t nn_dgemm_work(int32_t n, int32_t k) {
  const int32_t kc = k < DGEMM_KC ? (k > 0 ? k : 1) : DGEMM_KC;
  const int32_t nc = n < DGEMM_NC ? n : DGEMM_NC;
  return kc * ((nc + DGEMM_NR - 1) / DGEMM_NR * DGEMM_NR) + kc * dgemm_mc(k);
}

// Rows [r0, r1) and columns [j0, j1) of C += A·B (work: nn_dgemm_work doubles).
static void dgemm_range(int32_t k, const double *a, int32_t lda, const double *b, int32_t ldb, double *c, int32_t ldc,
                        double *work, int32_t r0, int32_t r1, int32_t j0, int32_t j1) {
  const int32_t mcMax = dgemm_mc(k);
  const int32_t nc0 = j1 - j0 < DGEMM_NC ? j1 - j0 : DGEMM_NC;
  const int32_t kc0 = k < DGEMM_KC ? k : DGEMM_KC;
  double *bp = work, *ap = work + (int64_t)kc0 * ((nc0 + DGEMM_NR - 1) / DGEMM_NR * DGEMM_NR);
  for (int32_t jc = j0; jc < j1; jc += DGEMM_NC) {
    const int32_t nc = j1 - jc < DGEMM_NC ? j1 - jc : DGEMM_NC;
    for (int32_t pc = 0; pc < k; pc += DGEMM_KC) {
      const int32_t kc = k - pc < DGEMM_KC ? k - pc : DGEMM_KC;
      dgemm_pack_b(b + (int64_t)jc * ldb + pc, ldb, kc, nc, bp);
      for (int32_t ic = r0; ic < r1; ic += mcMax) {
        const int32_t mc = r1 - ic < mcMax ? r1 - ic : mcMax;
        dgemm_pack_a(a + (int64_t)pc * lda + ic, lda, mc, kc, ap);
        dgemm_macro(mc, nc, kc, ap, bp, c + (int64_t)jc * ldc + ic, ldc);
      }
    }
  }
}

// C (m × n, column-major, ldc) (+)= A (m × k, lda) · B (k × n, ldb), all column-major float64,
// chunk `chunk` of `chunks` (see above); work: nn_dgemm_work(n, k) doubles per slot.
EXPORT(nn_dgemm) void nn_dgemm(int32_t m, int32_t n, int32_t k, const double *a, int32_t lda, const double *b, int32_t ldb,
                                double *c, int32_t ldc, int32_t accumulate, double *work, int32_t chunk, int32_t chunks,
                                int32_t slot) {
  int32_t r0 = 0, r1 = m, j0 = 0, j1 = n;
  work += (int64_t)slot * nn_dgemm_work(n, k);
  if ((n + DGEMM_NR - 1) / DGEMM_NR >= 2 * chunks) part_range(n, DGEMM_NR, chunk, chunks, &j0, &j1);
  else part_range(m, DGEMM_MR, chunk, chunks, &r0, &r1);
  if (r0 >= r1 || j0 >= j1) return;
  if (!accumulate) {
    for (int32_t j = j0; j < j1; j++) {
      double *cj = c + (int64_t)j * ldc;
      for (int32_t i = r0; i < r1; i++) cj[i] = 0.0;
    }
  }
  if (k > 0) dgemm_range(k, a, lda, b, ldb, c, ldc, work, r0, r1, j0, j1);
}
