/**
 * Seeded inputs on which each wasm kernel fix is compared with tfjs-backend-cpu. Values are
 * uniform in [-1, 1] (negative values are what broke the stock MaxPoolGrad), shapes are small but
 * odd-sized, and every kernel sees several strides / paddings / dilations / transposes.
 */
import { tf } from '../../tf.js';
import type { CpuBackend } from './wasm_backend.js';
import { runOnBackend } from './self_test_run.js';

/** A concrete input: shape, dtype and values. */
export interface TensorSpec {
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

/** One comparison: the same inputs and attributes on both backends. */
export interface KernelCase {
  inputs: Record<string, TensorSpec>;
  attrs: tf.NamedAttrMap;
  /** Reference values computed on cpu; default: the cpu kernel of the same name on the same inputs. */
  expected?: (cpu: CpuBackend) => Float32Array;
}

/** mulberry32: a small, fast, seeded PRNG (Tommy Ettinger, 2017). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const size = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);

function uniform(rng: Rng, shape: number[], map: (v: number) => number = (v) => v): TensorSpec {
  const values = new Float32Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = map(2 * rng() - 1);
  return { shape, dtype: 'float32', values };
}

type Pad = 'valid' | 'same' | tf.backend_util.ExplicitPadding;
interface ConvSetting {
  stride: number;
  pad: Pad;
  dilation: number;
}
const CONV_SETTINGS: ConvSetting[] = [
  { stride: 1, pad: 'same', dilation: 1 },
  { stride: 2, pad: 'same', dilation: 1 },
  { stride: 2, pad: 'valid', dilation: 1 },
  { stride: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]], dilation: 1 },
  // Padding wider than the filter: the stride-1 input gradient cannot be a plain convolution.
  { stride: 1, pad: [[0, 0], [0, 3], [3, 0], [0, 0]], dilation: 1 },
  { stride: 1, pad: 'same', dilation: 2 },
  { stride: 1, pad: 'valid', dilation: 2 },
];

const MATMUL_SHAPES: Array<[number[], number[], number, number, number]> = [
  [[], [], 7, 13, 5],
  [[3], [3], 4, 6, 5],
  [[1], [2], 4, 3, 6],
];
/** Matmul cases: every transpose combination, 2-D, batched and broadcast batch. */
export function batchMatMulCases(rng: Rng): KernelCase[] {
  const cases: KernelCase[] = [];
  for (const [batchA, batchB, m, k, n] of MATMUL_SHAPES) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const a = uniform(rng, [...batchA, ...(transposeA ? [k, m] : [m, k])]);
        const b = uniform(rng, [...batchB, ...(transposeB ? [n, k] : [k, n])]);
        cases.push({ inputs: { a, b }, attrs: { transposeA, transposeB } });
      }
    }
  }
  return cases;
}

const FUSED_ACTIVATIONS = ['relu', 'linear', 'leakyrelu', 'prelu', 'sigmoid', 'elu', 'relu6'];

/** Fused matmul cases: rank-3 operands, every transpose combination, with and without bias, all activations. */
export function fusedMatMulCases(rng: Rng): KernelCase[] {
  const cases: KernelCase[] = [];
  let i = 0;
  for (const [batchA, batchB, m, k, n] of MATMUL_SHAPES) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        for (const withBias of [true, false]) {
          const activation = FUSED_ACTIVATIONS[i++ % FUSED_ACTIVATIONS.length]!;
          const inputs: Record<string, TensorSpec> = {
            a: uniform(rng, [batchA[0] ?? 1, ...(transposeA ? [k, m] : [m, k])]),
            b: uniform(rng, [batchB[0] ?? 1, ...(transposeB ? [n, k] : [k, n])]),
          };
          if (withBias) inputs['bias'] = uniform(rng, [n]);
          if (activation === 'prelu') inputs['preluActivationWeights'] = uniform(rng, [n]);
          cases.push({ inputs, attrs: { transposeA, transposeB, activation, leakyreluAlpha: 0.3 } });
        }
      }
    }
  }
  return cases;
}

/** MaxPoolGrad cases: negative windows, ties (values on a coarse grid), strides 1/2, same/valid. */
export function maxPoolGradCases(rng: Rng, cpu: CpuBackend): KernelCase[] {
  const settings: Array<[number, number, 'same' | 'valid', (v: number) => number]> = [
    [2, 2, 'valid', (v) => v - 1.5], // every value negative
    [3, 1, 'same', (v) => v],
    [3, 2, 'same', (v) => Math.round(v * 2) / 2 - 0.5], // many ties, mostly ≤ 0
    [2, 1, 'valid', (v) => Math.round(v * 3) / 3],
  ];
  return settings.map(([filterSize, stride, pad, map]) => {
    const x = uniform(rng, [2, 7, 6, 3], map);
    const attrs = { filterSize, strides: stride, pad };
    const output = runOnBackend(cpu, tf.getKernel('MaxPool', 'cpu')!.kernelFunc, { x }, attrs);
    return {
      inputs: { dy: uniform(rng, output.shape), input: x, output },
      attrs,
    };
  });
}

/** The dilated filter as a dense one with zeros between taps ([fh, fw, a, b] → effective size). */
function dilateFilter(w: TensorSpec, d: number): TensorSpec {
  const [fh, fw, a, b] = w.shape as [number, number, number, number];
  const ew = (fw - 1) * d + 1;
  const values = new Float32Array(((fh - 1) * d + 1) * ew * a * b);
  for (let r = 0; r < fh; r++) {
    for (let c = 0; c < fw; c++) values.set(w.values.subarray((r * fw + c) * a * b, (r * fw + c + 1) * a * b), (r * d * ew + c * d) * a * b);
  }
  return { shape: [(fh - 1) * d + 1, ew, a, b], dtype: 'float32', values };
}

/** The taps of a dense-filter gradient that a dilated filter has (the inverse of dilateFilter). */
function undilateFilter(dense: Float32Array, filterShape: number[], d: number): Float32Array {
  const [fh, fw, a, b] = filterShape as [number, number, number, number];
  const ew = (fw - 1) * d + 1;
  const out = new Float32Array(size(filterShape));
  for (let r = 0; r < fh; r++) {
    for (let c = 0; c < fw; c++) out.set(dense.subarray((r * d * ew + c * d) * a * b, (r * d * ew + c * d + 1) * a * b), (r * fw + c) * a * b);
  }
  return out;
}

const cpuKernel = (name: string): tf.KernelFunc => tf.getKernel(name, 'cpu')!.kernelFunc;

/**
 * Filter / input gradient cases of conv2d or depthwise conv2d. tfjs-cpu ignores dilations in
 * these kernels, so dilated references run the cpu kernel on the equivalent dense filter with
 * zeros between taps (and keep the dilated taps of the dense filter gradient).
 */
export function convBackpropCases(rng: Rng, op: 'conv2d' | 'depthwise', kernel: 'filter' | 'input'): KernelCase[] {
  const depthwise = op === 'depthwise';
  const xShape = depthwise ? [2, 8, 7, 3] : [2, 9, 8, 3];
  const filterShape = depthwise ? [3, 3, 3, 2] : [3, 2, 3, 4];
  const prefix = depthwise ? 'DepthwiseConv2dNativeBackprop' : 'Conv2DBackprop';
  return CONV_SETTINGS.map((s): KernelCase => {
    const info = tf.backend_util.computeConv2DInfo(
      xShape as [number, number, number, number], filterShape as [number, number, number, number],
      s.stride, s.dilation, s.pad, undefined, depthwise, 'channelsLast');
    const dy = uniform(rng, info.outShape);
    const d = s.dilation;
    const attrs: tf.NamedAttrMap = { strides: s.stride, pad: s.pad, dilations: d, ...(depthwise ? {} : { dataFormat: 'NHWC' }) };
    const denseAttrs = { ...attrs, dilations: 1 };
    if (kernel === 'filter') {
      const x = uniform(rng, xShape);
      const denseShape = dilateFilter({ shape: filterShape, dtype: 'float32', values: new Float32Array(size(filterShape)) }, d).shape;
      const expected = (cpu: CpuBackend): Float32Array => {
        const dense = runOnBackend(cpu, cpuKernel(`${prefix}Filter`), { x, dy }, { ...denseAttrs, filterShape: denseShape });
        return undilateFilter(dense.values as Float32Array, filterShape, d);
      };
      return { inputs: { x, dy }, attrs: { ...attrs, filterShape }, expected };
    }
    const filter = uniform(rng, filterShape);
    const expected = (cpu: CpuBackend): Float32Array =>
      runOnBackend(cpu, cpuKernel(`${prefix}Input`), { dy, filter: dilateFilter(filter, d) }, { ...denseAttrs, inputShape: xShape })
        .values as Float32Array;
    return { inputs: { dy, filter }, attrs: { ...attrs, inputShape: xShape }, expected };
  });
}

/**
 * Forward convolution cases (Conv2D, or FusedConv2D with a bias and an activation): 3×3, 1×1 and
 * 2×3 filters, strides 1, 2 and [2, 1], same / valid / explicit padding, odd channel counts, and
 * geometries the SIMD kernel refuses (dilation 2; for FusedConv2D an elu activation and a PReLU),
 * which must reach the stock kernel.
 */
export function conv2dForwardCases(rng: Rng, fused: boolean): KernelCase[] {
  const settings: Array<{ x: number[]; f: number[]; stride: number | [number, number]; pad: Pad; dilation: number; activation?: string }> = [
    { x: [2, 9, 8, 3], f: [3, 3, 3, 5], stride: 1, pad: 'same', dilation: 1, activation: 'relu' },
    { x: [2, 9, 8, 3], f: [3, 3, 3, 5], stride: 2, pad: 'valid', dilation: 1, activation: 'linear' },
    { x: [1, 10, 11, 4], f: [3, 3, 4, 9], stride: 2, pad: 'same', dilation: 1, activation: 'relu' },
    { x: [3, 7, 6, 5], f: [1, 1, 5, 3], stride: 1, pad: 'valid', dilation: 1, activation: 'relu' },
    { x: [2, 7, 9, 3], f: [2, 3, 3, 11], stride: [2, 1], pad: [[0, 0], [1, 2], [0, 1], [0, 0]], dilation: 1, activation: 'linear' },
    // From 32 input channels the SIMD route runs (below, the stock kernel: SIMD_FORWARD_MIN_CHANNELS).
    { x: [1, 7, 6, 33], f: [3, 3, 33, 9], stride: 1, pad: 'same', dilation: 1, activation: 'relu' },
    { x: [2, 6, 7, 32], f: [3, 3, 32, 5], stride: 2, pad: 'valid', dilation: 1, activation: 'linear' },
    { x: [2, 5, 5, 32], f: [1, 1, 32, 3], stride: 2, pad: 'same', dilation: 1, activation: 'relu' },
    { x: [2, 10, 9, 3], f: [3, 3, 3, 4], stride: 1, pad: 'same', dilation: 2, activation: 'relu' },
    { x: [2, 9, 8, 3], f: [3, 3, 3, 5], stride: 1, pad: 'same', dilation: 1, activation: 'elu' },
    { x: [2, 9, 8, 3], f: [3, 3, 3, 5], stride: 1, pad: 'same', dilation: 1, activation: 'prelu' },
  ];
  return settings
    .filter((s) => fused || s.activation === 'relu' || s.activation === 'linear')
    .map((s): KernelCase => {
      const inputs: Record<string, TensorSpec> = { x: uniform(rng, s.x), filter: uniform(rng, s.f) };
      const attrs: tf.NamedAttrMap = { strides: s.stride, pad: s.pad, dilations: s.dilation, dataFormat: 'NHWC' };
      if (!fused) return { inputs, attrs };
      inputs['bias'] = uniform(rng, [s.f[3]!]);
      if (s.activation === 'prelu') inputs['preluActivationWeights'] = uniform(rng, [s.f[3]!]);
      return { inputs, attrs: { ...attrs, activation: s.activation ?? 'linear', leakyreluAlpha: 0.2 } };
    });
}

/** Conv3D gradient cases (stride 1 same, stride 2 valid). */
export function conv3dBackpropCases(rng: Rng, kernel: 'filter' | 'input'): KernelCase[] {
  const xShape = [2, 5, 6, 4, 3];
  const filterShape = [2, 3, 2, 3, 4];
  return ([[1, 'same'], [2, 'valid']] as const).map(([stride, pad]): KernelCase => {
    const info = tf.backend_util.computeConv3DInfo(
      xShape as [number, number, number, number, number], filterShape as [number, number, number, number, number],
      stride, 1, pad);
    const dy = uniform(rng, info.outShape);
    return kernel === 'filter'
      ? { inputs: { x: uniform(rng, xShape), dy }, attrs: { strides: stride, pad, filterShape } }
      : { inputs: { dy, filter: uniform(rng, filterShape) }, attrs: { strides: stride, pad, inputShape: xShape } };
  });
}

/** UnsortedSegmentSum cases: 2-D and 3-D data, empty segments, ids out of range (dropped). */
export function unsortedSegmentSumCases(rng: Rng): KernelCase[] {
  return ([
    [[6, 4], 5],
    [[7, 2, 3], 4],
  ] as const).map(([shape, numSegments]): KernelCase => {
    const rows = shape[0];
    const ids = new Int32Array(rows);
    for (let i = 0; i < rows; i++) ids[i] = Math.floor(rng() * (numSegments - 1));
    ids[1] = -1;
    ids[2] = numSegments;
    return {
      inputs: { x: uniform(rng, [...shape]), segmentIds: { shape: [rows], dtype: 'int32', values: ids } },
      attrs: { numSegments },
    };
  });
}

/** Tile cases: a BatchNormalization statistic [1, 1, 1, C] to [N, H, W, C], 1-D to 5-D, int32, a repeat of 1 on every axis. */
export function tileCases(rng: Rng): KernelCase[] {
  const shapes: Array<[number[], number[]]> = [
    [[1, 1, 1, 5], [3, 4, 2, 1]],
    [[2, 3], [2, 3]],
    [[3], [4]],
    [[2, 1, 3], [1, 5, 2]],
    [[2, 2, 1, 2, 3], [2, 1, 3, 1, 2]],
    [[4, 3], [1, 1]],
  ];
  const cases: KernelCase[] = shapes.map(([shape, reps]) => ({ inputs: { x: uniform(rng, shape) }, attrs: { reps } }));
  const ints = Int32Array.from({ length: 6 }, () => Math.floor(rng() * 100) - 50);
  cases.push({ inputs: { x: { shape: [2, 3], dtype: 'int32', values: ints } }, attrs: { reps: [3, 2] } });
  return cases;
}

/**
 * Slice cases: a contiguous range of a vector (one layer's part of a parameter vector), leading
 * rows (whole inner axes), inner ranges at offsets on 2-D to 5-D, size −1, int32.
 */
export function sliceCases(rng: Rng): KernelCase[] {
  const shapes: Array<[number[], number[], number[]]> = [
    [[37], [11], [20]],
    [[6, 4, 3], [2, 0, 0], [3, -1, -1]],
    [[5, 7], [1, 2], [3, 4]],
    [[4, 3, 5], [1, 1, 2], [2, 2, -1]],
    [[2, 3, 4, 5, 3], [1, 0, 1, 2, 0], [1, 3, 2, 3, 3]],
    [[3, 4], [0, 3], [3, 1]],
  ];
  const cases: KernelCase[] = shapes.map(([shape, begin, size]) => ({ inputs: { x: uniform(rng, shape) }, attrs: { begin, size } }));
  const ints = Int32Array.from({ length: 24 }, () => Math.floor(rng() * 100) - 50);
  cases.push({ inputs: { x: { shape: [4, 6], dtype: 'int32', values: ints } }, attrs: { begin: [1, 2], size: [2, 3] } });
  return cases;
}

