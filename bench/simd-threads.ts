/**
 * The SIMD kernels on 1 thread and split between helper threads (setSimdThreads), interleaved in
 * one process, each time the minimum of REPS runs: GEMMs from 2·32³ to 2·512³ flops (where the
 * split starts to pay: SIMD_THREAD_MIN_FLOPS), XᵀX, and the convolutions of the CNN 32x32x3's
 * plain step (batch 128); then that workload's plain step itself.
 *
 * With --wide, also the products of the d ≈ 10⁸ MLP (784 → 4096×7 → 10, batches of 128): x·W,
 * dy·Wᵀ, xᵀ·dy and the XᵀX of a G factor from 2,560 rows, each too large for one call of the
 * retained memory, so they run in tiles (kernels.ts gemmTiles / syrkTiles).
 *
 * Run: npm run bench:threads -- [--reps N] [--threads T] [--wide]   (T: default every core, at most 8)
 * Threads only pay on free cores: check `uptime` first; the load is printed.
 */
import '@tensorflow/tfjs-backend-wasm';
import { loadavg, availableParallelism } from 'node:os';
import { tf } from '../src/tf.js';
import { installKernelFixes } from '../src/backend/kernels/index.js';
import { conv2dFilterGradSimd, conv2dForwardSimd, conv2dInputGradSimd, gemmSimd, syrkSimd } from '../src/backend/kernels/simd/kernels.js';
import { SIMD_THREAD_MIN_FLOPS, setSimdThreads, simdKernels, simdKernelsInfo } from '../src/backend/kernels/simd/module.js';
import { cnn32, plainStep, seededData } from './workloads.js';

await tf.setBackend('wasm');
await tf.ready();
installKernelFixes();

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const REPS = arg('--reps', 7);
const THREADS = arg('--threads', Math.min(availableParallelism(), 8));
const load = loadavg();

function random(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 16807) % 2147483647;
    a[i] = s / 2147483647 - 0.5;
  }
  return a;
}

async function threads(n: number): Promise<void> {
  setSimdThreads(n);
  simdKernels();
  const deadline = Date.now() + 10_000;
  while (simdKernelsInfo().threadsRunning < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

/** Minimum time of `f` over REPS runs on 1 thread and on THREADS threads, interleaved. */
async function race(f: () => void): Promise<[number, number]> {
  const best = [Infinity, Infinity];
  for (let r = 0; r < REPS; r++) {
    for (const [i, n] of [[0, 1], [1, THREADS]] as const) {
      await threads(n);
      f();
      const t0 = performance.now();
      f();
      best[i] = Math.min(best[i]!, performance.now() - t0);
    }
  }
  return [best[0]!, best[1]!];
}

console.log(`SIMD kernels, 1 thread against ${THREADS} (min of ${REPS}); load ${load.map((x) => x.toFixed(1)).join(' ')}; split from ${SIMD_THREAD_MIN_FLOPS / 1e6} MFLOP`);
console.log('kernel'.padEnd(52) + 'MFLOP'.padStart(9) + '1 thread ms'.padStart(13) + `${THREADS} threads ms`.padStart(14) + 'speedup'.padStart(9));
const print = (label: string, flops: number, [one, many]: [number, number]) =>
  console.log(label.padEnd(52) + (flops / 1e6).toFixed(1).padStart(9) + one.toFixed(2).padStart(13) + many.toFixed(2).padStart(14) + (one / many).toFixed(2).padStart(9));

for (const n of [32, 48, 64, 96, 128, 192, 256, 512]) {
  const a = random(n * n, 1), b = random(n * n, 2), c = new Float32Array(n * n);
  print(`GEMM ${n}×${n}·${n}×${n}`, 2 * n ** 3, await race(() => gemmSimd(simdKernels()!, a, b, n, n, n, c)));
}
for (const [m, n] of [[128, 513], [1280, 785], [25088, 145]] as const) {
  const x = random(m * n, 3), c = new Float32Array(n * n);
  print(`XᵀX [${m}, ${n}]`, m * n * n, await race(() => syrkSimd(simdKernels()!, x, m, n, c)));
}
if (process.argv.includes('--wide')) {
  const [b, k] = [128, 4096];
  const x = random(b * k, 7), w = random(k * k, 8), dy = random(b * k, 9), out = new Float32Array(k * k);
  print('GEMM x·W [128, 4096]·[4096, 4096] (tiles)', 2 * b * k * k, await race(() => gemmSimd(simdKernels()!, x, w, b, k, k, out)));
  print('GEMM dy·Wᵀ (tiles)', 2 * b * k * k, await race(() => gemmSimd(simdKernels()!, dy, w, b, k, k, out, false, true)));
  print('GEMM xᵀ·dy [4096, 4096] out (tiles)', 2 * b * k * k, await race(() => gemmSimd(simdKernels()!, x, dy, k, b, k, out, true, false)));
  const g = random(2560 * k, 10);
  print('XᵀX [2560, 4096] (tiles)', 2560 * k * k, await race(() => syrkSimd(simdKernels()!, g, 2560, k, out)));
}
for (const [xs, co, stride, pad] of [
  [[128, 32, 32, 3], 16, 1, 'same'], [[128, 32, 32, 16], 32, 2, 'valid'], [[128, 15, 15, 32], 64, 2, 'valid'],
] as const) {
  const info = tf.backend_util.computeConv2DInfo([...xs], [3, 3, xs[3], co], stride, 1, pad);
  const x = random(xs.reduce((p, d) => p * d, 1), 4), w = random(9 * xs[3] * co, 5);
  const dy = random(info.batchSize * info.outHeight * info.outWidth * co, 6);
  const flops = 2 * info.batchSize * info.outHeight * info.outWidth * 9 * xs[3] * co;
  const label = `${xs.join('×')} → ${co}, s${stride} ${pad}`;
  const y = new Float32Array(dy.length), dx = new Float32Array(x.length), dw = new Float32Array(w.length);
  print(`conv forward ${label}`, flops, await race(() => conv2dForwardSimd(simdKernels()!, x, w, null, info, false, y)));
  print(`conv input gradient ${label}`, flops, await race(() => conv2dInputGradSimd(simdKernels()!, dy, w, info, dx)));
  print(`conv filter gradient ${label}`, flops, await race(() => conv2dFilterGradSimd(simdKernels()!, x, dy, info, dw)));
}

// The CNN 32x32x3's plain step (tf.variableGrads of the mean cross-entropy over 1,024 examples).
const model = cnn32();
const step = plainStep(model, seededData(model, 1024, 300));
print('CNN 32x32x3 plain step, 1,024 examples', 13.7e9, await race(step));
console.log(`load at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
process.exit(0);
