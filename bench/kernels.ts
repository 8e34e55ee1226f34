/**
 * Stock vs fixed tfjs-wasm kernels, side by side in one process (single thread).
 * Run: npx tsx bench/kernels.ts [--cpu]   (--cpu also times the cpu-bridged conv filter gradient)
 */
import '@tensorflow/tfjs-backend-wasm';
import { tf } from '../src/tf.js';
import { installKernelFixes, uninstallKernelFixes } from '../src/backend/kernels/index.js';

await tf.setBackend('wasm');
await tf.ready();

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

console.log('kernel'.padEnd(58), 'stock ms'.padStart(9), 'fixed ms'.padStart(9), 'speedup'.padStart(7));
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
