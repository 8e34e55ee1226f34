/**
 * Typed-array fronts of the SIMD kernels (wasm/simd_kernels.c). Each copies its operands into the
 * module's memory, runs one export and copies the result into the caller's array, which may be a
 * view on the tfjs-wasm heap (a different memory: the copies are plain memcpy's). A call that grew
 * the module memory past SIMD_MEMORY_RETAIN_BYTES releases it at its end (an exception leaves it
 * for the next call to reuse or release).
 */
import type { tf } from '../../../tf.js';
import { GEOMETRY_FLOATS, PACK_DEPTH, trimSimdMemory, type SimdConvGeometry, type SimdModule } from './module.js';

type Conv2DInfo = tf.backend_util.Conv2DInfo;
type Floats = Float32Array | tf.TypedArray;

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

/** Writes the geometry into a scratch slot and asks the module for a kernel's work size. */
function workFloats(simd: SimdModule, g: SimdConvGeometry, which: 'nn_conv_filter_grad_work' | 'nn_conv_input_grad_work'): number {
  const [pg] = simd.layout([GEOMETRY_FLOATS]);
  simd.writeGeometry(pg!, g);
  return simd.exports[which](pg!);
}

/** dW [K, CO] = Pᵀ·dy for an NHWC x and dy [M, CO]; `out` receives the K·CO values. */
export function conv2dFilterGradSimd(simd: SimdModule, x: Floats, dy: Floats, info: Conv2DInfo, out: Float32Array): void {
  const g = simdGeometry(info);
  const { x: nx, M, K } = sizes(g);
  const work = workFloats(simd, g, 'nn_conv_filter_grad_work');
  const [pg, px, pdy, pdw, pw] = simd.layout([GEOMETRY_FLOATS, nx, M * g.co, K * g.co, work]);
  simd.writeGeometry(pg!, g);
  simd.f32(px!, nx).set(x.subarray(0, nx) as Float32Array);
  simd.f32(pdy!, M * g.co).set(dy.subarray(0, M * g.co) as Float32Array);
  simd.exports.nn_conv_filter_grad(px!, pdy!, pg!, pdw!, pw!);
  out.set(simd.f32(pdw!, K * g.co));
  trimSimdMemory();
}

/** dx = col2im(dy·Wᵀ) for dy [M, CO] and the filter [fh, fw, ci, co]; `out` receives the NHWC dx. */
export function conv2dInputGradSimd(simd: SimdModule, dy: Floats, filter: Floats, info: Conv2DInfo, out: Float32Array): void {
  const g = simdGeometry(info);
  const { x: nx, M, K } = sizes(g);
  const work = workFloats(simd, g, 'nn_conv_input_grad_work');
  const [pg, pdy, pw, pdx, pwork] = simd.layout([GEOMETRY_FLOATS, M * g.co, K * g.co, nx, work]);
  simd.writeGeometry(pg!, g);
  simd.f32(pdy!, M * g.co).set(dy.subarray(0, M * g.co) as Float32Array);
  simd.f32(pw!, K * g.co).set(filter.subarray(0, K * g.co) as Float32Array);
  simd.exports.nn_conv_input_grad(pdy!, pw!, pg!, pdx!, pwork!);
  out.set(simd.f32(pdx!, nx));
  trimSimdMemory();
}

/** The patch matrix of an NHWC x: P [M, K] (`'MK'`) or Pᵀ [K, M] (`'KM'`) into `out`. */
export function im2colSimd(simd: SimdModule, x: Floats, info: Conv2DInfo, layout: 'MK' | 'KM', out: Float32Array): void {
  const g = simdGeometry(info);
  const { x: nx, M, K } = sizes(g);
  const [pg, px, pout] = simd.layout([GEOMETRY_FLOATS, nx, M * K]);
  simd.writeGeometry(pg!, g);
  simd.f32(px!, nx).set(x.subarray(0, nx) as Float32Array);
  if (layout === 'MK') simd.exports.nn_im2col_mk(px!, pg!, 0, M, pout!);
  else simd.exports.nn_im2col_km(px!, pg!, pout!);
  out.set(simd.f32(pout!, M * K));
  trimSimdMemory();
}

/** Adds the columns `cols` [M, K] (layout of P) onto the NHWC `dx` (the adjoint of im2col). */
export function col2imAddSimd(simd: SimdModule, cols: Floats, info: Conv2DInfo, dx: Float32Array): void {
  const g = simdGeometry(info);
  const { x: nx, M, K } = sizes(g);
  const [pg, pc, pdx] = simd.layout([GEOMETRY_FLOATS, M * K, nx]);
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
  const sizeA = m * k * (sharedA ? 1 : batch);
  const sizeB = k * n * (sharedB ? 1 : batch);
  const [pa, pb, pc, pw] = simd.layout([sizeA, sizeB, batch * m * n, PACK_DEPTH * (Math.ceil(n / 8) * 8)]);
  simd.f32(pa!, sizeA).set(a.subarray(0, sizeA) as Float32Array);
  simd.f32(pb!, sizeB).set(b.subarray(0, sizeB) as Float32Array);
  for (let i = 0; i < batch; i++) {
    // Pointers are byte addresses.
    simd.exports.nn_sgemm(m, n, k, pa! + (sharedA ? 0 : 4 * i * m * k), pb! + (sharedB ? 0 : 4 * i * k * n), pc! + 4 * i * m * n,
      transposeA ? 1 : 0, transposeB ? 1 : 0, 0, pw!);
  }
  out.set(simd.f32(pc!, batch * m * n));
  trimSimdMemory();
}

/**
 * out [n, n] = XᵀX for X [m, n] (row-major), plus `out`'s own values when `accumulate` is set
 * (they must then be symmetric). Only the upper-triangle tiles are computed; the lower triangle
 * is their mirror image, so the result is exactly symmetric.
 */
export function syrkSimd(simd: SimdModule, x: Floats, m: number, n: number, out: Float32Array, accumulate = false): void {
  const [px, pc, pw] = simd.layout([m * n, n * n, PACK_DEPTH * (Math.ceil(n / 8) * 8)]);
  simd.f32(px!, m * n).set(x.subarray(0, m * n) as Float32Array);
  if (accumulate) simd.f32(pc!, n * n).set(out.subarray(0, n * n));
  else simd.exports.nn_zero(pc!, n * n);
  simd.exports.nn_ssyrk(m, n, px!, pc!, 1, pw!);
  out.set(simd.f32(pc!, n * n));
  trimSimdMemory();
}
