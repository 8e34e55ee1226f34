/**
 * Typed-array fronts of the SIMD kernels (wasm/simd_kernels.c). Each copies its operands into the
 * module's memory, runs one export and copies the result into the caller's array, which may be a
 * view on the tfjs-wasm heap (a different memory: the copies are plain memcpy's). A call that grew
 * the module memory past SIMD_MEMORY_RETAIN_BYTES releases it at its end (an exception leaves it
 * for the next call to reuse or release).
 *
 * A call whose buffers exceed the retained memory on the threaded module runs on a single-thread
 * module of its own (`SimdModule.fit`), released at its end: a shared memory cannot shrink.
 *
 * Work that splits (examples of a convolution, products of a batch, rows of XᵀX) runs in pieces
 * of at most SIMD_CALL_FLOATS operand floats, so that large operands — the engine's O·B stacked
 * cotangents, 1,280 examples of 32×32×16 — reuse the retained memory instead of growing a fresh
 * one on every call: growing 120 MB and giving it back cost 0.8-0.9 s per call against 0.1 s
 * for the arithmetic (Conv2DBackpropInput [1280, 15, 15, 32] → [1280, 32, 32, 16]).
 */
import type { tf } from '../../../tf.js';
import { GEOMETRY_FLOATS, PACK_DEPTH, SIMD_CHUNKS_PER_THREAD, SIMD_MEMORY_RETAIN_BYTES, trimSimdMemory, type SimdConvGeometry, type SimdModule, type SimdSplit } from './module.js';
import { Override } from './override.js';

type Conv2DInfo = tf.backend_util.Conv2DInfo;
type Floats = Float32Array | tf.TypedArray;

/** Operand floats one call lays out at most where its work splits: half the retained memory. */
export const SIMD_CALL_FLOATS = SIMD_MEMORY_RETAIN_BYTES / 8;

const callFloats = new Override(SIMD_CALL_FLOATS);

/**
 * Runs `fn` with another split size (tests: a few hundred floats make small operands run in
 * many pieces, so that the piecewise paths are checked on inputs a cpu reference handles).
 */
export function withSimdCallFloats<T>(floats: number, fn: () => T): T {
  return callFloats.with(floats, fn);
}

/** Items (examples, products, rows) per call: `perItem` floats each beside `fixed` floats, at least 1. */
export function itemsPerCall(items: number, perItem: number, fixed: number): number {
  return Math.max(1, Math.min(items, Math.floor((callFloats.value - fixed) / Math.max(perItem, 1))));
}

/** The module's geometry record of a tfjs convolution. */
export function simdGeometry(info: Conv2DInfo): SimdConvGeometry {
  return {
    n: info.batchSize, h: info.inHeight, w: info.inWidth, c: info.inChannels,
    oh: info.outHeight, ow: info.outWidth, fh: info.filterHeight, fw: info.filterWidth,
    sh: info.strideHeight, sw: info.strideWidth, dh: info.dilationHeight, dw: info.dilationWidth,
    top: info.padInfo.top, left: info.padInfo.left, co: info.outChannels,
  };
}

const sizes = (g: SimdConvGeometry) => ({
  x: g.n * g.h * g.w * g.c,
  M: g.n * g.oh * g.ow,
  K: g.fh * g.fw * g.c,
});

/**
 * The split of a call on `threads` threads (SimdModule.threadsFor, which sized its work slots)
 * over an output of `pieces` separable pieces (examples, products, panels).
 */
function chunksOf(threads: number, pieces: number): SimdSplit {
  const t = Math.min(threads, Math.max(1, pieces));
  return { chunks: t > 1 ? Math.min(pieces, SIMD_CHUNKS_PER_THREAD * t) : 1, threads: t };
}

/** Writes the geometry into a scratch slot and asks the module for a kernel's work size. */
function workFloats(simd: SimdModule, g: SimdConvGeometry, which: 'nn_conv_filter_grad_work' | 'nn_conv_input_grad_work' | 'nn_conv_forward_work'): number {
  const [pg] = simd.layout([GEOMETRY_FLOATS]);
  simd.writeGeometry(pg!, g);
  return simd.exports[which](pg!);
}

/** Floats for the partial sums [rows, cols] of a split sum (nn_max_blocks of them), or 0 if it cannot split. */
function partialFloats(simd: SimdModule, rows: number, cols: number): number {
  const most = simd.exports.nn_max_blocks(rows, cols);
  return most > 1 ? most * rows * cols : 0;
}

/**
 * What the three convolution fronts share: the module's geometry, the taps K, the floats of one
 * example of x and of the output (y or dy), the kernel's work floats per thread slot, and the
 * threads for its 2·M·K·CO flops.
 */
function convolutionPlan(simd: SimdModule, info: Conv2DInfo, which: Parameters<typeof workFloats>[2]) {
  const g = simdGeometry(info);
  const { M, K } = sizes(g);
  return {
    g, K, xPer: g.h * g.w * g.c, outPer: g.oh * g.ow * g.co,
    work: workFloats(simd, g, which), threads: simd.threadsFor(2 * M * K * g.co),
  };
}

/** dW [K, CO] = Pᵀ·dy for an NHWC x and dy [M, CO]; `out` receives the K·CO values. */
export function conv2dFilterGradSimd(simd: SimdModule, x: Floats, dy: Floats, info: Conv2DInfo, out: Float32Array): void {
  const { g, K, xPer, outPer: dyPer, work, threads } = convolutionPlan(simd, info, 'nn_conv_filter_grad_work');
  // Room for the partial sums of as many blocks of pixels as nn_conv_filter_grad_blocks may give
  // (none when it can give only one: the kernel then writes dW itself).
  const partials = partialFloats(simd, K, g.co);
  const nb = itemsPerCall(g.n, xPer + dyPer, K * g.co + partials + threads * work);
  const floats = [GEOMETRY_FLOATS, nb * xPer, nb * dyPer, K * g.co, partials, threads * work];
  simd = simd.fit(floats);
  const [pg, px, pdy, pdw, pp, pw] = simd.layout(floats);
  // dW of the whole batch is the sum of the pieces' (float32 sums, as within one piece).
  const sum = nb < g.n ? new Float32Array(K * g.co) : null;
  for (let b0 = 0; b0 < g.n; b0 += nb) {
    const count = Math.min(nb, g.n - b0);
    simd.writeGeometry(pg!, { ...g, n: count });
    simd.f32(px!, count * xPer).set(x.subarray(b0 * xPer, (b0 + count) * xPer) as Float32Array);
    simd.f32(pdy!, count * dyPer).set(dy.subarray(b0 * dyPer, (b0 + count) * dyPer) as Float32Array);
    // Blocks of pixels fixed by the geometry (not by the threads), their partials added in order.
    const blocks = simd.exports.nn_conv_filter_grad_blocks(pg!);
    simd.run('nn_conv_filter_grad', [px!, pdy!, pg!, blocks > 1 ? pp! : pdw!, pw!], { chunks: blocks, threads: Math.min(threads, blocks) });
    if (blocks > 1) simd.exports.nn_add_partials(pp!, blocks, K * g.co, pdw!);
    const piece = simd.f32(pdw!, K * g.co);
    if (sum == null) out.set(piece);
    else for (let i = 0; i < piece.length; i++) sum[i]! += piece[i]!;
  }
  if (sum != null) out.set(sum);
  trimSimdMemory();
}

/**
 * y [M, CO] = P·W (+ bias) (then relu) for an NHWC x and the filter [fh, fw, ci, co], dilation 1
 * (the caller checks it), by the module's implicit GEMM (no patch matrix); `out` receives the
 * NHWC y. Examples are independent: pieces of examples write their own slices of y.
 */
export function conv2dForwardSimd(simd: SimdModule, x: Floats, filter: Floats, bias: Floats | null, info: Conv2DInfo, relu: boolean, out: Float32Array): void {
  const { g, K, xPer, outPer: yPer, work, threads } = convolutionPlan(simd, info, 'nn_conv_forward_work');
  const nb = itemsPerCall(g.n, xPer + yPer, K * g.co + g.co + threads * work);
  const floats = [GEOMETRY_FLOATS, nb * xPer, K * g.co, g.co, nb * yPer, threads * work];
  simd = simd.fit(floats);
  const [pg, px, pw, pb, py, pwork] = simd.layout(floats);
  simd.f32(pw!, K * g.co).set(filter.subarray(0, K * g.co) as Float32Array);
  if (bias != null) simd.f32(pb!, g.co).set(bias.subarray(0, g.co) as Float32Array);
  for (let b0 = 0; b0 < g.n; b0 += nb) {
    const count = Math.min(nb, g.n - b0);
    simd.writeGeometry(pg!, { ...g, n: count });
    simd.f32(px!, count * xPer).set(x.subarray(b0 * xPer, (b0 + count) * xPer) as Float32Array);
    simd.run('nn_conv_forward', [px!, pw!, bias != null ? pb! : 0, pg!, relu ? 1 : 0, py!, pwork!], chunksOf(threads, count));
    out.set(simd.f32(py!, count * yPer), b0 * yPer);
  }
  trimSimdMemory();
}

/** dx = col2im(dy·Wᵀ) for dy [M, CO] and the filter [fh, fw, ci, co]; `out` receives the NHWC dx. */
export function conv2dInputGradSimd(simd: SimdModule, dy: Floats, filter: Floats, info: Conv2DInfo, out: Float32Array): void {
  const { g, K, xPer, outPer: dyPer, work, threads } = convolutionPlan(simd, info, 'nn_conv_input_grad_work');
  const nb = itemsPerCall(g.n, xPer + dyPer, K * g.co + threads * work);
  const floats = [GEOMETRY_FLOATS, nb * dyPer, K * g.co, nb * xPer, threads * work];
  simd = simd.fit(floats);
  const [pg, pdy, pw, pdx, pwork] = simd.layout(floats);
  simd.f32(pw!, K * g.co).set(filter.subarray(0, K * g.co) as Float32Array);
  // Examples are independent: each piece writes its own slice of dx.
  for (let b0 = 0; b0 < g.n; b0 += nb) {
    const count = Math.min(nb, g.n - b0);
    simd.writeGeometry(pg!, { ...g, n: count });
    simd.f32(pdy!, count * dyPer).set(dy.subarray(b0 * dyPer, (b0 + count) * dyPer) as Float32Array);
    simd.run('nn_conv_input_grad', [pdy!, pw!, pg!, pdx!, pwork!], chunksOf(threads, count));
    out.set(simd.f32(pdx!, count * xPer), b0 * xPer);
  }
  trimSimdMemory();
}

/** The patch matrix of an NHWC x: P [M, K] (`'MK'`) or Pᵀ [K, M] (`'KM'`) into `out`. */
export function im2colSimd(simd: SimdModule, x: Floats, info: Conv2DInfo, layout: 'MK' | 'KM', out: Float32Array): void {
  const g = simdGeometry(info);
  const { x: nx, M, K } = sizes(g);
  if (layout === 'KM') {
    // Pᵀ's rows run over every example: one call.
    const floats = [GEOMETRY_FLOATS, nx, M * K];
    simd = simd.fit(floats);
    const [pg, px, pout] = simd.layout(floats);
    simd.writeGeometry(pg!, g);
    simd.f32(px!, nx).set(x.subarray(0, nx) as Float32Array);
    simd.exports.nn_im2col_km(px!, pg!, pout!);
    out.set(simd.f32(pout!, M * K));
    trimSimdMemory();
    return;
  }
  // P's rows of one example are contiguous: pieces of examples.
  const xPer = g.h * g.w * g.c;
  const pPer = g.oh * g.ow * K;
  const nb = itemsPerCall(g.n, xPer + pPer, 0);
  const floats = [GEOMETRY_FLOATS, nb * xPer, nb * pPer];
  simd = simd.fit(floats);
  const [pg, px, pout] = simd.layout(floats);
  for (let b0 = 0; b0 < g.n; b0 += nb) {
    const count = Math.min(nb, g.n - b0);
    simd.writeGeometry(pg!, { ...g, n: count });
    simd.f32(px!, count * xPer).set(x.subarray(b0 * xPer, (b0 + count) * xPer) as Float32Array);
    simd.exports.nn_im2col_mk(px!, pg!, 0, count * g.oh * g.ow, pout!);
    out.set(simd.f32(pout!, count * pPer), b0 * pPer);
  }
  trimSimdMemory();
}

/** Adds the columns `cols` [M, K] (layout of P) onto the NHWC `dx` (the adjoint of im2col). */
export function col2imAddSimd(simd: SimdModule, cols: Floats, info: Conv2DInfo, dx: Float32Array): void {
  const g = simdGeometry(info);
  const { x: nx, M, K } = sizes(g);
  const floats = [GEOMETRY_FLOATS, M * K, nx];
  simd = simd.fit(floats);
  const [pg, pc, pdx] = simd.layout(floats);
  simd.writeGeometry(pg!, g);
  simd.f32(pc!, M * K).set(cols.subarray(0, M * K) as Float32Array);
  simd.f32(pdx!, nx).set(dx);
  simd.exports.nn_col2im_add(pc!, pg!, 0, M, pdx!);
  dx.set(simd.f32(pdx!, nx));
  trimSimdMemory();
}

/**
 * out [m, n] = op(A)·op(B), row-major, op(A) [m, k] being A (a holds [m, k]) or, with
 * `transposeA`, Aᵀ (a holds [k, m]); likewise B. Transposes cost no extra pass.
 */
export function gemmSimd(
  simd: SimdModule, a: Floats, b: Floats, m: number, k: number, n: number, out: Float32Array,
  transposeA = false, transposeB = false,
): void {
  gemmSimdBatched(simd, a, b, 1, m, k, n, out, transposeA, transposeB, false, false);
}

/**
 * `gemmSimd` for a batch of products: out[i] = op(A[i])·op(B[i]) for i < batch, where A (or B)
 * holds one matrix shared by every product when `sharedA` (or `sharedB`) is set. One copy into
 * the module and one out for the whole batch: small per-example products (per-example
 * convolution gradients: [145, 169]·[169, 320]) cost no per-product setup.
 */
export function gemmSimdBatched(
  simd: SimdModule, a: Floats, b: Floats, batch: number, m: number, k: number, n: number, out: Float32Array,
  transposeA: boolean, transposeB: boolean, sharedA: boolean, sharedB: boolean,
): void {
  const work = PACK_DEPTH * (Math.ceil(n / 8) * 8);
  const threads = simd.threadsFor(2 * batch * m * n * k);
  // One product splits into panels of 8 columns (two per chunk at least) or rows of 4.
  const productChunks = (rows: number) => chunksOf(threads, Math.max(Math.floor(Math.ceil(n / 8) / 2), Math.ceil(rows / 4)));
  if (m * k + k * n + m * n + threads * work > callFloats.value && k * 8 <= callFloats.value / 4) {
    // One product alone does not fit a call: each goes in tiles of C (`gemmTiles`).
    const [strideA, strideB] = [sharedA ? 0 : m * k, sharedB ? 0 : k * n];
    for (let i = 0; i < batch; i++) {
      gemmTiles(simd, a.subarray(i * strideA, i * strideA + m * k), b.subarray(i * strideB, i * strideB + k * n), m, k, n,
        out.subarray(i * m * n, (i + 1) * m * n), transposeA, transposeB);
    }
    trimSimdMemory();
    return;
  }
  const perA = sharedA ? 0 : m * k;
  const perB = sharedB ? 0 : k * n;
  const nb = itemsPerCall(batch, perA + perB + m * n, (sharedA ? m * k : 0) + (sharedB ? k * n : 0) + threads * work);
  const sizeA = sharedA ? m * k : nb * m * k;
  const sizeB = sharedB ? k * n : nb * k * n;
  const floats = [sizeA, sizeB, nb * m * n, threads * work];
  simd = simd.fit(floats);
  const [pa, pb, pc, pw] = simd.layout(floats);
  if (sharedA) simd.f32(pa!, sizeA).set(a.subarray(0, sizeA) as Float32Array);
  if (sharedB) simd.f32(pb!, sizeB).set(b.subarray(0, sizeB) as Float32Array);
  for (let i0 = 0; i0 < batch; i0 += nb) {
    const count = Math.min(nb, batch - i0);
    if (!sharedA) simd.f32(pa!, count * perA).set(a.subarray(i0 * perA, (i0 + count) * perA) as Float32Array);
    if (!sharedB) simd.f32(pb!, count * perB).set(b.subarray(i0 * perB, (i0 + count) * perB) as Float32Array);
    // One product: its columns or rows split between the threads; several: whole products.
    if (count === 1) simd.run('nn_sgemm', [m, n, k, pa!, pb!, pc!, transposeA ? 1 : 0, transposeB ? 1 : 0, 0, pw!], productChunks(m));
    else simd.run('nn_sgemm_batch', [count, m, n, k, pa!, perA, pb!, perB, pc!, m * n, transposeA ? 1 : 0, transposeB ? 1 : 0, pw!], chunksOf(threads, count));
    out.set(simd.f32(pc!, count * m * n), i0 * m * n);
  }
  trimSimdMemory();
}

/**
 * One product op(A)·op(B) too large for a call, in tiles of C: panels of columns (B's panel
 * within half a call) and in each, blocks of rows (A's rows beside it), every tile a whole sum
 * over k. A tile's entries are the very sums of the untiled product (the kernel splits neither
 * the k sum nor its order), so no number depends on the tiles; what tiling buys is that every
 * call fits the retained memory, where the helper threads work, and that B is packed once per
 * panel rather than once per handful of rows.
 */
function gemmTiles(simd: SimdModule, a: Floats, b: Floats, m: number, k: number, n: number, out: Float32Array, transposeA: boolean, transposeB: boolean): void {
  const cols = Math.min(n, Math.max(8, Math.floor(callFloats.value / 2 / k / 8) * 8));
  const work = PACK_DEPTH * (Math.ceil(cols / 8) * 8);
  const threads = simd.threadsFor(2 * m * cols * k);
  const rows = Math.min(m, Math.max(4, Math.floor((callFloats.value - k * cols - threads * work) / (k + cols) / 4) * 4));
  const floats = [rows * k, k * cols, rows * cols, threads * work];
  simd = simd.fit(floats);
  const [pa, pb, pc, pw] = simd.layout(floats);
  for (let j0 = 0; j0 < n; j0 += cols) {
    const nc = Math.min(cols, n - j0);
    // op(B)'s columns j0…: rows of a stored Bᵀ [n, k], or a strided panel of a stored B [k, n].
    if (transposeB) simd.f32(pb!, nc * k).set(b.subarray(j0 * k, (j0 + nc) * k) as Float32Array);
    else gatherColumns(simd.f32(pb!, k * nc), b, k, n, j0, nc);
    for (let r0 = 0; r0 < m; r0 += rows) {
      const mc = Math.min(rows, m - r0);
      if (transposeA) gatherColumns(simd.f32(pa!, k * mc), a, k, m, r0, mc);
      else simd.f32(pa!, mc * k).set(a.subarray(r0 * k, (r0 + mc) * k) as Float32Array);
      simd.run('nn_sgemm', [mc, nc, k, pa!, pb!, pc!, transposeA ? 1 : 0, transposeB ? 1 : 0, 0, pw!],
        chunksOf(threads, Math.max(Math.floor(Math.ceil(nc / 8) / 2), Math.ceil(mc / 4))));
      const tile = simd.f32(pc!, mc * nc);
      if (nc === n) out.set(tile, r0 * n);
      else for (let r = 0; r < mc; r++) out.set(tile.subarray(r * nc, (r + 1) * nc), (r0 + r) * n + j0);
    }
  }
}

/** dst [rows, count] = columns c0 … c0 + count − 1 of the row-major src [rows, width]. */
function gatherColumns(dst: Float32Array, src: Floats, rows: number, width: number, c0: number, count: number): void {
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * width + c0, r * width + c0 + count) as Float32Array, r * count);
}

/**
 * out [n, n] = XᵀX for X [m, n] (row-major), plus `out`'s own values when `accumulate` is set
 * (they must then be symmetric). Only the upper-triangle tiles are computed; the lower triangle
 * is their mirror image, so the result is exactly symmetric.
 */
export function syrkSimd(simd: SimdModule, x: Floats, m: number, n: number, out: Float32Array, accumulate = false): void {
  const work = PACK_DEPTH * (Math.ceil(n / 8) * 8);
  const threads = simd.threadsFor(m * n * n);
  if (n * n + PACK_DEPTH * n > callFloats.value && n * 8 <= callFloats.value / 8) {
    syrkTiles(simd, x, m, n, out, accumulate);
    return;
  }
  // XᵀX = Σ over pieces of rows of their XᵀX: rows in multiples of the packed depth.
  // Room for the partial sums of as many blocks of rows as nn_ssyrk_blocks may give.
  const partials = partialFloats(simd, n, n);
  const rows = m <= PACK_DEPTH ? m : Math.max(PACK_DEPTH, Math.floor(itemsPerCall(m, n, n * n + partials + threads * work) / PACK_DEPTH) * PACK_DEPTH);
  const floats = [Math.min(rows, m) * n, n * n, partials, threads * work];
  simd = simd.fit(floats);
  const [px, pc, pp, pw] = simd.layout(floats);
  if (accumulate) simd.f32(pc!, n * n).set(out.subarray(0, n * n));
  else simd.exports.nn_zero(pc!, n * n);
  for (let r0 = 0; r0 < m || r0 === 0; r0 += rows) {
    const count = Math.min(rows, m - r0);
    const mirror = r0 + count >= m ? 1 : 0;
    simd.f32(px!, count * n).set(x.subarray(r0 * n, (r0 + count) * n) as Float32Array);
    // A tall X: blocks of rows fixed by (count, n), their partials added in order (no column
    // split, which would pack every block of rows once per chunk); otherwise chunks of columns.
    const blocks = simd.exports.nn_ssyrk_blocks(count, n);
    if (blocks > 1) {
      simd.run('nn_ssyrk_rows', [count, n, px!, pp!, pw!], { chunks: blocks, threads: Math.min(threads, blocks) });
      simd.exports.nn_ssyrk_add_partials(pp!, blocks, n, pc!, mirror);
    } else {
      simd.run('nn_ssyrk', [count, n, px!, pc!, mirror, pw!], chunksOf(threads, Math.ceil(n / 8)));
    }
    if (m === 0) break;
  }
  out.set(simd.f32(pc!, n * n));
  trimSimdMemory();
}

/**
 * `syrkSimd` for an XᵀX too large for a call ([n, n] past the call's floats), in panels of rows
 * J = [j0, j1) of C: C[J, 0:j1] (+)= X[:, J]ᵀ·X[:, 0:j1] over blocks of rows of X, each a product
 * with the accumulate flag (the narrow X[:, J] is the transposed side: its stride stays short),
 * then C[0:j0, J] is the mirror of C[J, 0:j0] and the diagonal block's upper triangle the mirror
 * of its lower one (exactly symmetric). Panels and row blocks are fixed by (m, n) and the call
 * size, never by the threads: the sums, and so every number, do not depend on the thread count.
 */
function syrkTiles(simd: SimdModule, x: Floats, m: number, n: number, out: Float32Array, accumulate: boolean): void {
  const cols = Math.max(8, Math.floor(callFloats.value / 4 / n / 8) * 8);
  const work = PACK_DEPTH * (Math.ceil(n / 8) * 8);
  // Rows per block: the two gathered panels of X beside the C tile, within the call's floats.
  const rows = Math.min(Math.max(m, 1), Math.max(PACK_DEPTH, Math.floor((callFloats.value - n * cols) / (n + cols) / PACK_DEPTH) * PACK_DEPTH));
  const threads = simd.threadsFor(2 * rows * n * cols);
  const floats = [rows * cols, rows * n, cols * n, threads * work];
  simd = simd.fit(floats);
  const [pj, pl, pc, pw] = simd.layout(floats);
  for (let j0 = 0; j0 < n; j0 += cols) {
    const nc = Math.min(cols, n - j0);
    const j1 = j0 + nc;
    const tile = simd.f32(pc!, nc * j1);
    // C[J, 0:j1]: the caller's values to add onto, or zero.
    if (accumulate) for (let r = 0; r < nc; r++) tile.set(out.subarray((j0 + r) * n, (j0 + r) * n + j1), r * j1);
    else tile.fill(0);
    for (let r0 = 0; r0 < m; r0 += rows) {
      const mr = Math.min(rows, m - r0);
      const block = x.subarray(r0 * n, (r0 + mr) * n);
      gatherColumns(simd.f32(pj!, mr * nc), block, mr, n, j0, nc);
      gatherColumns(simd.f32(pl!, mr * j1), block, mr, n, 0, j1);
      simd.run('nn_sgemm', [nc, j1, mr, pj!, pl!, pc!, 1, 0, 1, pw!],
        chunksOf(threads, Math.max(Math.floor(Math.ceil(j1 / 8) / 2), Math.ceil(nc / 4))));
    }
    const c = simd.f32(pc!, nc * j1);
    for (let r = 0; r < nc; r++) {
      const i = j0 + r;
      // Row i left of the diagonal block; the diagonal block's lower triangle, mirrored.
      out.set(c.subarray(r * j1, r * j1 + j0), i * n);
      for (let t = 0; t <= r; t++) out[i * n + j0 + t] = out[(j0 + t) * n + i] = c[r * j1 + j0 + t]!;
    }
    // C[0:j0, J] = C[J, 0:j0]ᵀ, in bands of 32 rows, so that the writes along a band's rows
    // share cache lines from one column to the next.
    for (let t0 = 0; t0 < j0; t0 += 32) {
      const t1 = Math.min(t0 + 32, j0);
      for (let r = 0; r < nc; r++) {
        const from = r * j1;
        for (let t = t0; t < t1; t++) out[t * n + j0 + r] = c[from + t]!;
      }
    }
  }
  trimSimdMemory();
}

