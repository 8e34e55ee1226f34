/**
 * Self-test of nngeometry's WebAssembly SIMD kernels (wasm/simd_kernels.c) against the cpu
 * backend, on seeded inputs in [-1, 1]: im2col in both layouts (cpu: a convolution with the
 * identity filter), col2im (cpu: the input gradient of that convolution), the GEMM and XᵀX (cpu
 * BatchMatMul). The conv gradient fixes themselves are tested through their kernel names; here
 * they are also tested with SIMD turned off, so that the plain fallback stays verified.
 */
import { tf } from '../../tf.js';
import { conv2dGeometry } from './conv_geometry.js';
import { mulberry32, type TensorSpec } from './self_test_cases.js';
import { runOnBackend } from './self_test_run.js';
import { col2imAddSimd, gemmSimd, im2colSimd, syrkSimd } from './simd/kernels.js';
import { setSimdKernelsEnabled, simdKernels, simdKernelsInfo, type SimdModule } from './simd/module.js';
import type { CpuBackend } from './wasm_backend.js';

/** One SIMD check: the kernel's output and the cpu reference. */
interface SimdCase {
  run(simd: SimdModule): Float32Array;
  expected(cpu: CpuBackend): Float32Array;
}

type Pad = 'valid' | 'same' | tf.backend_util.ExplicitPadding;
const SETTINGS: Array<{ x: number[]; f: [number, number]; stride: number | [number, number]; pad: Pad; dilation: number }> = [
  { x: [2, 9, 8, 3], f: [3, 2], stride: 1, pad: 'same', dilation: 1 },
  { x: [2, 9, 8, 5], f: [3, 3], stride: 2, pad: 'same', dilation: 1 },
  { x: [2, 9, 8, 4], f: [3, 3], stride: [2, 1], pad: 'valid', dilation: 1 },
  { x: [1, 7, 9, 3], f: [3, 2], stride: 1, pad: [[0, 0], [0, 3], [3, 0], [0, 0]], dilation: 1 },
  { x: [2, 10, 9, 3], f: [3, 2], stride: 1, pad: 'same', dilation: 2 },
  { x: [2, 6, 6, 1], f: [2, 2], stride: 1, pad: 'valid', dilation: 1 },
];

const size = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);
function uniform(rng: () => number, shape: number[]): TensorSpec {
  return { shape, dtype: 'float32', values: Float32Array.from({ length: size(shape) }, () => 2 * rng() - 1) };
}

/** The identity filter [fh, fw, C, fh·fw·C]: a convolution with it outputs the patches. */
function identityFilter(fh: number, fw: number, c: number): TensorSpec {
  const k = fh * fw * c;
  const values = new Float32Array(k * k);
  for (let i = 0; i < k; i++) values[i * k + i] = 1;
  return { shape: [fh, fw, c, k], dtype: 'float32', values };
}

const cpuKernel = (name: string): tf.KernelFunc => tf.getKernel(name, 'cpu')!.kernelFunc;

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}

function simdCases(rng: () => number): Array<[string, SimdCase[]]> {
  const im2colMK: SimdCase[] = [];
  const im2colKM: SimdCase[] = [];
  const col2im: SimdCase[] = [];
  for (const s of SETTINGS) {
    const [fh, fw] = s.f;
    const c = s.x[3]!;
    const info = conv2dGeometry('self-test', s.x, [fh, fw, c, 1], { strides: s.stride, pad: s.pad, dilations: s.dilation });
    const M = info.batchSize * info.outHeight * info.outWidth;
    const K = fh * fw * c;
    const x = uniform(rng, s.x);
    const filter = identityFilter(fh, fw, c);
    const attrs = { strides: s.stride, pad: s.pad, dilations: s.dilation, dataFormat: 'NHWC' };
    const patches = (cpu: CpuBackend): Float32Array => runOnBackend(cpu, cpuKernel('Conv2D'), { x, filter }, attrs).values as Float32Array;
    im2colMK.push({
      run: (simd) => { const out = new Float32Array(M * K); im2colSimd(simd, x.values, info, 'MK', out); return out; },
      expected: patches,
    });
    im2colKM.push({
      run: (simd) => { const out = new Float32Array(M * K); im2colSimd(simd, x.values, info, 'KM', out); return out; },
      expected: (cpu) => transpose(patches(cpu), M, K),
    });
    // tfjs-cpu's input gradient ignores dilations: the adjoint is checked on undilated settings.
    if (s.dilation === 1) {
      const dy = uniform(rng, [info.batchSize, info.outHeight, info.outWidth, K]);
      col2im.push({
        run: (simd) => { const dx = new Float32Array(size(s.x)); col2imAddSimd(simd, dy.values, info, dx); return dx; },
        expected: (cpu) =>
          runOnBackend(cpu, cpuKernel('Conv2DBackpropInput'), { dy, filter }, { ...attrs, inputShape: s.x }).values as Float32Array,
      });
    }
  }
  const gemm: SimdCase[] = [];
  const syrk: SimdCase[] = [];
  for (const [m, k, n] of [[7, 13, 5], [37, 300, 21], [1, 9, 17], [66, 8, 8]] as const) {
    const a = uniform(rng, [m, k]);
    const b = uniform(rng, [k, n]);
    gemm.push({
      run: (simd) => { const out = new Float32Array(m * n); gemmSimd(simd, a.values, b.values, m, k, n, out); return out; },
      expected: (cpu) => runOnBackend(cpu, cpuKernel('BatchMatMul'), { a, b }, { transposeA: false, transposeB: false }).values as Float32Array,
    });
    // XᵀX of A [m, k], and of B [k, n] (m rows past one packed block of 256 for B of [300, 21]).
    for (const [x, rows, cols] of [[a, m, k], [b, k, n]] as const) {
      syrk.push({
        run: (simd) => { const out = new Float32Array(cols * cols); syrkSimd(simd, x.values, rows, cols, out); return out; },
        expected: (cpu) => runOnBackend(cpu, cpuKernel('BatchMatMul'), { a: x, b: x }, { transposeA: true, transposeB: false }).values as Float32Array,
      });
    }
  }
  return [
    ['SIMD im2col [M, K]', im2colMK],
    ['SIMD im2col [K, M]', im2colKM],
    ['SIMD col2im', col2im],
    ['SIMD GEMM', gemm],
    ['SIMD XᵀX', syrk],
  ];
}

/** A result as the self-test reports it. */
export interface SimdSelfTestResult {
  kernel: string;
  maxRelError: number;
  ok: boolean;
  error?: string;
}

/**
 * Compares each SIMD kernel with the cpu backend; [] when the SIMD kernels are unavailable or
 * disabled. `compare(actual, expected)` is the relative error measure, `tolerance` the bound.
 */
export function selfTestSimdKernels(
  cpu: CpuBackend,
  seed: number,
  compare: (actual: ArrayLike<number>, expected: ArrayLike<number>) => number,
  tolerance: number,
): SimdSelfTestResult[] {
  const simd = simdKernels();
  if (simd == null) return [];
  return simdCases(mulberry32(seed)).map(([kernel, cases]) => {
    let worst = 0;
    try {
      for (const c of cases) worst = Math.max(worst, compare(c.run(simd), c.expected(cpu)));
    } catch (e) {
      return { kernel, maxRelError: Number.POSITIVE_INFINITY, ok: false, error: e instanceof Error ? e.message : String(e) };
    }
    return { kernel, maxRelError: worst, ok: worst <= tolerance };
  });
}

/** Runs `fn` with the SIMD kernels turned off (the plain fallbacks), restoring the setting after. */
export function withoutSimd<T>(fn: () => T): T {
  const was = simdKernelsInfo().enabled;
  setSimdKernelsEnabled(false);
  try {
    return fn();
  } finally {
    setSimdKernelsEnabled(was);
  }
}
