/**
 * Stock vs fixed tfjs-wasm kernels, side by side in one process (single thread), then every route
 * of the conv gradient kernels and nngeometry's WebAssembly SIMD kernels (wasm/simd_kernels.c)
 * against the XNNPACK / JS code they replace, interleaved run by run (the machine is shared:
 * medians and [min-max] ranges).
 * Run: npx tsx bench/kernels.ts [--cpu] [--simd-only] [--reps N] [--profile-step]
 *   --cpu           also times the cpu-bridged conv filter gradient
 *   --simd-only     only the SIMD section
 *   --profile-step  only: the time of every kernel in a plain training step (tf.variableGrads of
 *                   the mean cross-entropy, all batches) of the bench's CNN 32x32x3 and ResNet
 */
import '@tensorflow/tfjs-backend-wasm';
import { tf } from '../src/tf.js';
import { installKernelFixes, uninstallKernelFixes } from '../src/backend/kernels/index.js';
import { filterGradByMatMul, filterGradBySimd } from '../src/backend/kernels/conv2d_backprop_filter.js';
import { inputGradByCol2im, inputGradByConvolution, inputGradBySimd } from '../src/backend/kernels/conv2d_backprop_input.js';
import { conv2dForwardBySimd, withForwardMinChannels } from '../src/backend/kernels/conv2d_forward.js';
import { col2imAdd, conv2dGeometry, im2colTransposed } from '../src/backend/kernels/conv_geometry.js';
import { col2imAddSimd, gemmSimd, im2colSimd, setSimdKernelsEnabled, simdKernels, symmetricRankUpdate } from '../src/backend/kernels/simd/index.js';
import type { TensorInfo, WasmBackend } from '../src/backend/kernels/wasm_backend.js';

await tf.setBackend('wasm');
await tf.ready();

if (process.argv.includes('--profile-step')) {
  const { cnn32, plainStep, residualCnn, seededData } = await import('./workloads.js');
  installKernelFixes();
  // Wrap every registered wasm kernel with a timer (kernel functions are synchronous).
  const spent = new Map<string, { ms: number; calls: number }>();
  let recording = false;
  for (const config of tf.getKernelsForBackend('wasm')) {
    const run = config.kernelFunc;
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: (args) => {
      const t0 = performance.now();
      const out = run(args);
      if (recording) {
        const key = `${config.kernelName} ${JSON.stringify(Object.values(args.inputs).map((t) => t?.shape))}`;
        const s = spent.get(key) ?? { ms: 0, calls: 0 };
        s.ms += performance.now() - t0;
        s.calls++;
        spent.set(key, s);
      }
      return out;
    } });
  }
  for (const [name, model, examples] of [['CNN 32x32x3', cnn32(), 1024], ['ResNet 32x32x3-BN', residualCnn(), 512]] as const) {
    const data = seededData(model, examples, 300);
    const step = plainStep(model, data);
    step();
    spent.clear();
    recording = true;
    const t0 = performance.now();
    step();
    const total = performance.now() - t0;
    recording = false;
    const rows = [...spent].sort((a, b) => b[1].ms - a[1].ms);
    const inKernels = rows.reduce((a, [, s]) => a + s.ms, 0);
    console.log(`\n${name}, ${examples} examples: plain step ${total.toFixed(0)} ms, of which ${inKernels.toFixed(0)} ms in kernels`);
    for (const [key, s] of rows.slice(0, 20)) console.log(`${s.ms.toFixed(1).padStart(9)} ms ${String(s.calls).padStart(4)}×  ${key}`);
    tf.dispose(data.flatMap((b) => [b.xs, b.ys]));
    model.dispose();
  }
  process.exit(0);
}

/** Median wall time of `reps` runs of `f` (one warm-up run first), in ms. */
function time(f: () => tf.Tensor | tf.Tensor[], reps = 5): number {
  const run = (): number => {
    const t0 = performance.now();
    const out = f();
    for (const t of Array.isArray(out) ? out : [out]) {
      t.dataSync();
      t.dispose();
    }
    return performance.now() - t0;
  };
  run();
  const times = Array.from({ length: reps }, run).sort((a, b) => a - b);
  return times[Math.floor(reps / 2)]!;
}

const rows: Array<[string, string, string, string]> = [];
function compare(label: string, f: () => tf.Tensor | tf.Tensor[], opts: { stock?: boolean; reps?: number } = {}): void {
  let stock = 'missing';
  if (opts.stock !== false) {
    uninstallKernelFixes();
    try {
      stock = time(f, opts.reps).toFixed(1);
    } catch (e) {
      stock = /not registered/.test(String(e)) ? 'missing' : `error`;
    }
  }
  installKernelFixes();
  const fixed = time(f, opts.reps);
  const ratio = stock === 'missing' || stock === 'error' ? '' : `${(Number(stock) / fixed).toFixed(1)}x`;
  rows.push([label, stock, fixed.toFixed(1), ratio]);
  console.log(label.padEnd(58), String(stock).padStart(9), fixed.toFixed(1).padStart(9), ratio.padStart(7));
}
const kernel = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap) => () =>
  tf.engine().runKernel(name, inputs, attrs) as tf.Tensor;

const simdOnly = process.argv.includes('--simd-only');
const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 9;

if (!simdOnly) {
console.log('kernel'.padEnd(58), 'stock ms'.padStart(9), 'fixed ms'.padStart(9), 'speedup'.padStart(7));
{
  // A plain training step, what `import 'nngeometry/kernels'` speeds up: the gradient of the
  // mean cross-entropy of an MLP 784-512-512-10 (relu) on 2,048 examples, forward and backward.
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const mlp = tf.sequential({ layers: [
    tf.layers.dense({ units: 512, inputShape: [784], activation: 'relu', kernelInitializer: init(1) }),
    tf.layers.dense({ units: 512, activation: 'relu', kernelInitializer: init(2) }),
    tf.layers.dense({ units: 10, kernelInitializer: init(3) }),
  ] });
  // Batches of 256 through model.apply, as the unit of `npm run bench` (model.predict would
  // split them into batches of 32).
  const batches = Array.from({ length: 8 }, (_, k) => ({
    xs: tf.randomNormal([256, 784], 0, 1, 'float32', 4 + k),
    ys: tf.oneHot(tf.tensor1d(Array.from({ length: 256 }, (_, i) => (i * 7 + k) % 10), 'int32'), 10),
  }));
  const step = () => batches.flatMap(({ xs, ys }) => {
    const { grads, value } = tf.variableGrads(() => tf.tidy(() => tf.losses.softmaxCrossEntropy(ys, mlp.apply(xs) as tf.Tensor) as tf.Scalar));
    return [value, ...Object.values(grads)];
  });
  compare('training step MLP 784-512-512-10, n = 2,048 (tf.variableGrads)', step, { reps: Math.min(REPS, 5) });
  tf.dispose(batches.flatMap((b) => [b.xs, b.ys]));
  mlp.dispose();
}
const a512 = tf.randomNormal([512, 512]);
const b512 = tf.randomNormal([512, 512]);
for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  compare(`matMul 512³ transposeA=${ta} transposeB=${tb}`, () => tf.matMul(a512, b512, ta, tb));
}
const x784 = tf.randomNormal([128, 784]);
const g512 = tf.randomNormal([128, 512]);
compare('matMul [128,784]ᵀ@[128,512] (Dense weight gradient)', () => tf.matMul(x784, g512, true, false));
const fa = tf.randomNormal([1, 128, 512]);
const fb = tf.randomNormal([1, 512, 512]);
const fbias = tf.randomNormal([512]);
compare('fused.matMul [128,512]@[512,512]ᵀ + bias + relu', () =>
  tf.fused.matMul({ a: fa, b: fb, transposeB: true, bias: fbias, activation: 'relu' }));

const convShapes: Array<[[number, number, number, number], number, number]> = [
  [[128, 28, 28, 16], 32, 2],
  [[128, 28, 28, 1], 16, 1],
  [[32, 16, 16, 64], 64, 1],
  [[128, 14, 14, 32], 32, 1],
];
for (const [xs, co, s] of convShapes) {
  const x = tf.randomNormal(xs) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, xs[3], co]) as tf.Tensor4D;
  const y = tf.conv2d(x, w, s, 'same');
  const dy = tf.randomNormal(y.shape);
  const attrs = { strides: s, pad: 'same', dataFormat: 'NHWC', filterShape: w.shape };
  compare(`Conv2DBackpropFilter x[${xs}] k3 s${s} co${co}`, kernel('Conv2DBackpropFilter', { x, dy }, attrs), { stock: false });
  compare(`Conv2DBackpropInput  x[${xs}] k3 s${s} co${co}`, kernel('Conv2DBackpropInput', { dy, filter: w },
    { strides: s, pad: 'same', dataFormat: 'NHWC', inputShape: xs }));
  tf.dispose([x, w, y, dy]);
}
if (process.argv.includes('--cpu')) {
  const x = tf.randomNormal([128, 28, 28, 16]);
  const dy = tf.randomNormal([128, 14, 14, 32]);
  const attrs = { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 16, 32] };
  tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs);
  await tf.setBackend('cpu');
  const xc = tf.tensor(x.dataSync(), x.shape), dyc = tf.tensor(dy.dataSync(), dy.shape);
  const t = time(kernel('Conv2DBackpropFilter', { x: xc, dy: dyc }, attrs), 1);
  console.log('cpu Conv2DBackpropFilter x[128,28,28,16] k3 s2 co32 (the bridge alternative):', t.toFixed(0), 'ms');
  await tf.setBackend('wasm');
}

{
  const x = tf.randomNormal([128, 28, 28, 16]) as tf.Tensor4D;
  compare('maxPool grad [128,28,28,16] 2x2 s2', () => tf.grad((v: tf.Tensor) => tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid'))(x));
  const w = tf.randomNormal([3, 3, 16, 2]) as tf.Tensor4D;
  compare('depthwiseConv2d grads [32,28,28,16] k3 m2', () =>
    tf.grads((v: tf.Tensor, f: tf.Tensor) => tf.depthwiseConv2d(v as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'))([x.slice(0, 32), w]),
    { reps: 3 });
  const table = tf.randomNormal([1000, 64]);
  const idx = tf.tensor1d(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 1000), 'int32');
  compare('gather grad [1000,64] x 4096 ids', () => tf.grad((t: tf.Tensor) => tf.gather(t, idx))(table), { reps: 3 });
}
}

// ---------------------------------------------------------------------------------------------
// Routes side by side: nngeometry's SIMD kernels against the XNNPACK / JS code they replace.

installKernelFixes();
const simd = simdKernels();
if (simd == null) {
  console.log('\nWebAssembly SIMD kernels unavailable here: nothing to compare');
  process.exit(0);
}
const backend = tf.backend() as unknown as WasmBackend;
const info = (t: tf.Tensor): TensorInfo => ({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });

interface Timing { median: number; min: number; max: number }
/**
 * Times each variant `REPS` times, interleaved (variant 1, 2, …, 1, 2, …) so that load changes on
 * the shared machine hit all variants alike. A variant returns a backend output to dispose, a
 * tensor to read and dispose, or nothing.
 */
function race(variants: Array<[string, () => TensorInfo | tf.Tensor | void]>, reps = REPS): Timing[] {
  const once = (f: () => TensorInfo | tf.Tensor | void): number => {
    const t0 = performance.now();
    const out = f();
    if (out instanceof tf.Tensor) {
      out.dataSync();
      out.dispose();
    } else if (out != null) backend.disposeData(out.dataId);
    return performance.now() - t0;
  };
  for (const [, f] of variants) once(f);
  const times = variants.map(() => [] as number[]);
  for (let r = 0; r < reps; r++) variants.forEach(([, f], i) => times[i]!.push(once(f)));
  return times.map((t) => {
    t.sort((a, b) => a - b);
    return { median: t[Math.floor(t.length / 2)]!, min: t[0]!, max: t[t.length - 1]! };
  });
}
const fmt = (t: Timing): string => `${t.median.toFixed(1)} [${t.min.toFixed(1)}-${t.max.toFixed(1)}]`;
/** Prints one row: every variant's timing, and the last variant's speedup over each other one. */
function row(label: string, variants: Array<[string, () => TensorInfo | tf.Tensor | void]>, reps?: number): void {
  const t = race(variants, reps);
  const last = t[t.length - 1]!;
  const cells = variants.map(([name], i) => `${name} ${fmt(t[i]!)}`);
  const speedups = t.slice(0, -1).map((x, i) => `${(x.median / last.median).toFixed(2)}x vs ${variants[i]![0]}`);
  console.log(`${label}\n    ${cells.join('   ')}\n    SIMD: ${speedups.join(', ')}`);
}

console.log(`\nSIMD kernels (wasm/simd_kernels.c) vs the routes they replace; ms, median [min-max] of ${REPS} interleaved runs`);
const simdConvShapes: Array<[[number, number, number, number], number, number]> = [
  [[128, 28, 28, 1], 16, 1], // CNN layer 1 (bench workload)
  [[128, 28, 28, 16], 32, 2], // CNN layer 2 (bench workload)
  [[128, 14, 14, 32], 32, 1],
  [[32, 16, 16, 64], 64, 1],
  [[32, 32, 32, 3], 16, 1], // residual CNN stem on 32x32x3
  [[32, 16, 16, 16], 32, 2],
];
for (const [xs, co, s] of simdConvShapes) {
  const x = tf.randomNormal(xs) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, xs[3], co]) as tf.Tensor4D;
  const dy = tf.tidy(() => tf.randomNormal(tf.conv2d(x, w, s, 'same').shape));
  const geom = conv2dGeometry('bench', xs, w.shape, { strides: s, pad: 'same' });
  const fs = w.shape.slice();
  const label = `x[${xs}] k3 s${s} co${co}`;
  row(`Conv2DBackpropFilter ${label}`, [
    ['JS im2col+XNNPACK', () => filterGradByMatMul(backend, info(x), info(dy), geom, fs)],
    ['SIMD fused', () => filterGradBySimd(backend, info(x), info(dy), geom, fs)!],
  ]);
  uninstallKernelFixes();
  const stockInput = tf.getKernel('Conv2DBackpropInput', 'wasm')!.kernelFunc;
  installKernelFixes();
  const inputVariants: Array<[string, () => TensorInfo]> = [
    ['stock', () => stockInput({ inputs: { dy: info(dy), filter: info(w) }, backend: backend as unknown as tf.KernelBackend,
      attrs: { strides: s, pad: 'same', dataFormat: 'NHWC', inputShape: xs } }) as TensorInfo],
    ['JS col2im+XNNPACK', () => inputGradByCol2im(backend, info(dy), info(w), geom)],
  ];
  if (s === 1) inputVariants.push(['XNNPACK flipped conv', () => inputGradByConvolution(backend, info(dy), info(w), geom)!]);
  inputVariants.push(['SIMD fused', () => inputGradBySimd(backend, info(dy), info(w), geom)!]);
  row(`Conv2DBackpropInput  ${label}`, inputVariants, Math.min(REPS, 5));
  // The building blocks alone (host arrays, copies included).
  const xv = x.dataSync() as Float32Array;
  const M = geom.batchSize * geom.outHeight * geom.outWidth;
  const K = 9 * xs[3];
  const patches = new Float32Array(M * K);
  row(`im2col              ${label} (${M}x${K})`, [
    ['JS [K,M]', () => im2colTransposed(xv, geom, patches)],
    ['SIMD [M,K]', () => im2colSimd(simd, xv, geom, 'MK', patches)],
    ['SIMD [K,M]', () => im2colSimd(simd, xv, geom, 'KM', patches)],
  ]);
  const dx = new Float32Array(xv.length);
  row(`col2im              ${label}`, [
    ['JS', () => { dx.fill(0); col2imAdd(patches, geom, dx); }],
    ['SIMD', () => { dx.fill(0); col2imAddSimd(simd, patches, geom, dx); }],
  ]);
  tf.dispose([x, w, dy]);
}

// Forward convolution: the stock XNNPACK kernel against the SIMD implicit GEMM (called directly,
// whatever its channel threshold), on the layers of the bench CNNs, in CPU time (user + system of
// this process: less disturbed by other processes on a shared machine than wall time), minimum
// and median of REPS · 3 interleaved runs. The Conv2D fix takes the SIMD route from
// SIMD_FORWARD_MIN_CHANNELS input channels.
{
  const cpuMs = (f: () => void): number => {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  const forwardShapes: Array<[[number, number, number, number], number, number, number, 'same' | 'valid']> = [
    [[128, 32, 32, 3], 3, 16, 1, 'same'], // CNN 32x32x3 layer 1
    [[128, 32, 32, 16], 3, 32, 2, 'valid'], // layer 2
    [[128, 15, 15, 32], 3, 64, 2, 'valid'], // layer 3
    [[128, 28, 28, 1], 3, 16, 1, 'same'], // CNN 28x28x1 layer 1
    [[128, 16, 16, 16], 3, 16, 1, 'same'], // residual block of the ResNet
    [[128, 16, 16, 64], 1, 64, 1, 'valid'],
    [[32, 16, 16, 64], 3, 64, 1, 'same'],
  ];
  console.log(`\nConv2D forward, CPU ms, min / median of ${3 * REPS} interleaved runs: stock XNNPACK vs SIMD implicit GEMM`);
  for (const [xs, k, co, s, pad] of forwardShapes) {
    const x = tf.randomNormal(xs) as tf.Tensor4D;
    const w = tf.randomNormal([k, k, xs[3], co]) as tf.Tensor4D;
    const attrs = { strides: s, pad, dataFormat: 'NHWC', dilations: 1 };
    const stock = () => { setSimdKernelsEnabled(false); tf.conv2d(x, w, s, pad).dispose(); setSimdKernelsEnabled(true); };
    const bySimd = () => { const y = conv2dForwardBySimd({ inputs: { x: info(x), filter: info(w) }, backend, attrs }); if (y) backend.disposeData(y.dataId); };
    await withForwardMinChannels(1, async () => {
      stock();
      bySimd();
      const ts: number[] = [];
      const tv: number[] = [];
      for (let r = 0; r < 3 * REPS; r++) {
        ts.push(cpuMs(stock));
        tv.push(cpuMs(bySimd));
      }
      ts.sort((p, q) => p - q);
      tv.sort((p, q) => p - q);
      const med = (t: number[]) => t[Math.floor(t.length / 2)]!;
      console.log(`  x[${xs}] k${k} co${co} s${s} ${pad}`.padEnd(44) + `stock ${ts[0]!.toFixed(2)} / ${med(ts).toFixed(2)}   SIMD ${tv[0]!.toFixed(2)} / ${med(tv).toFixed(2)}   stock ÷ SIMD (min) ${(ts[0]! / tv[0]!).toFixed(2)}`);
    });
    tf.dispose([x, w]);
  }
}

// Large operands in pieces: the engine's stacked input gradient (O·B = 1,280 examples) and
// per-example products, which used to grow (and give back) the module memory on every call.
{
  const dy = tf.randomNormal([1280, 15, 15, 32]);
  const w = tf.randomNormal([3, 3, 16, 32]);
  const geom = conv2dGeometry('bench', [1280, 32, 32, 16], [3, 3, 16, 32], { strides: 2, pad: 'valid' });
  row('Conv2DBackpropInput dy[1280,15,15,32] → x[1280,32,32,16] (the engine\'s 10 stacked outputs)', [
    ['JS col2im+XNNPACK', () => inputGradByCol2im(backend, info(dy), info(w), geom)],
    ['SIMD in pieces', () => inputGradBySimd(backend, info(dy), info(w), geom)!],
  ], Math.min(REPS, 5));
  tf.dispose([dy, w]);
}

for (const [m, n] of [[1280, 785], [1280, 513], [25088, 145], [128, 785], [128, 513], [2048, 11], [128, 11]] as const) {
  const x = tf.randomNormal([m, n]) as tf.Tensor2D;
  const stockReps = m * n * n > 2e8 ? 3 : REPS;
  uninstallKernelFixes();
  const stock = race([['stock', () => tf.matMul(x, x, true, false)]], stockReps)[0]!;
  installKernelFixes();
  const t = race([
    ['XNNPACK', () => { setSimdKernelsEnabled(false); return tf.matMul(x, x, true, false); }],
    ['SIMD GEMM', () => { setSimdKernelsEnabled(true); return tf.matMul(x, x, true, false); }],
    ['SIMD XᵀX', () => symmetricRankUpdate(x)],
  ]);
  setSimdKernelsEnabled(true);
  const gf = (ms: number, flops: number) => (flops / ms / 1e6).toFixed(1);
  const full = 2 * m * n * n;
  console.log(`XᵀX x[${m},${n}]\n    stock matMul(x, x, true, false) ${fmt(stock)}   fixed: transpose + XNNPACK ${fmt(t[0]!)} (${gf(t[0]!.median, full)} GF/s)   ` +
    `SIMD GEMM ${fmt(t[1]!)} (${gf(t[1]!.median, full)} GF/s)   symmetricRankUpdate ${fmt(t[2]!)} (${gf(t[2]!.median, m * n * (n + 1))} GF/s useful)` +
    `\n    symmetricRankUpdate: ${(stock.median / t[2]!.median).toFixed(2)}x vs stock, ${(t[0]!.median / t[2]!.median).toFixed(2)}x vs XNNPACK, ` +
    `${(t[1]!.median / t[2]!.median).toFixed(2)}x vs SIMD GEMM`);
  x.dispose();
}

// matMul: XNNPACK (with explicit transposes; SIMD off) against the SIMD GEMM called directly on
// the same heap data (copies in and out included), on the Dense shapes of the 784-512-512-10 MLP
// at batch 128 (forward x·W, backward dy·Wᵀ and xᵀ·dy) and on square / KFAC-sized products.
// The BatchMatMul fix routes every single (unbatched) float32 product to the SIMD GEMM.
const matMulShapes: Array<[number, number, number, boolean, boolean]> = [
  [128, 784, 512, false, false], [128, 512, 512, false, false], [128, 512, 10, false, false],
  [128, 512, 784, false, true], [128, 10, 512, false, true], [784, 128, 512, true, false], [512, 128, 10, true, false],
  [512, 512, 512, false, false], [784, 1280, 784, false, false], [25088, 144, 32, false, false],
];
for (const [m, k, n, ta, tb] of matMulShapes) {
  const a = tf.randomNormal(ta ? [k, m] : [m, k]);
  const b = tf.randomNormal(tb ? [n, k] : [k, n]);
  const out = new Float32Array(m * n);
  const t = race([
    ['XNNPACK', () => { setSimdKernelsEnabled(false); return tf.matMul(a, b, ta, tb); }],
    ['SIMD GEMM', () => gemmSimd(simd, backend.typedArrayFromHeap(info(a)), backend.typedArrayFromHeap(info(b)), m, k, n, out, ta, tb)],
  ]);
  setSimdKernelsEnabled(true);
  const gf = (x: Timing) => ((2 * m * k * n) / x.median / 1e6).toFixed(1);
  const flags = `${ta ? 'ᵀ' : ''}@${tb ? 'ᵀ' : ''}`;
  console.log(`matMul [${m},${k}]${flags}[${k},${n}] (ᵀ: transpose flag)\n    XNNPACK + explicit transposes ${fmt(t[0]!)} (${gf(t[0]!)} GF/s)   ` +
    `SIMD GEMM ${fmt(t[1]!)} (${gf(t[1]!)} GF/s)\n    SIMD: ${(t[0]!.median / t[1]!.median).toFixed(2)}x vs XNNPACK`);
  tf.dispose([a, b]);
}
