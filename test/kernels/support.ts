/**
 * Helpers for the kernel-fix tests: run the same computation on the cpu and wasm backends with
 * identical Float32Array inputs and compare; count live tensors and backend data buffers.
 */
import { tf } from '../../src/tf.js';
import { mulberry32 } from '../../src/backend/kernels/self_test_cases.js';
import { maxRelativeError } from '../../src/backend/kernels/self_test.js';
import { installKernelFixes, uninstallKernelFixes } from '../../src/backend/kernels/index.js';
import { simdKernels, type SimdModule } from '../../src/backend/kernels/simd/module.js';

export { maxRelativeError };

/** Relative tolerance of the wasm-vs-cpu comparisons. */
export const TOL = 1e-4;

/** Seeded values uniform in [-1, 1]. */
export function randomValues(seed: number, n: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * rng() - 1);
}

/** Seeded tensor builder: the same seed gives the same values on every backend. */
export function seeded(seed: number, shape: number[]): () => tf.Tensor {
  const values = randomValues(seed, shape.reduce((p, d) => p * d, 1));
  return () => tf.tensor(values, shape);
}

/** Runs `compute` on `backend` inside tidy and returns the values of every output. */
export async function valuesOn(backend: string, compute: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  const previous = tf.getBackend();
  await tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const out = compute();
      return (Array.isArray(out) ? out : [out]).map((t) => Float32Array.from(t.dataSync() as Float32Array));
    });
  } finally {
    await tf.setBackend(previous);
  }
}

/** Worst relative difference between wasm and cpu over all outputs of `compute`. */
export async function wasmVsCpu(compute: () => tf.Tensor | tf.Tensor[]): Promise<number> {
  const cpu = await valuesOn('cpu', compute);
  const wasm = await valuesOn('wasm', compute);
  if (cpu.length !== wasm.length) return Number.POSITIVE_INFINITY;
  return Math.max(...cpu.map((c, i) => maxRelativeError(wasm[i]!, c)));
}

/** Gradients of sum(f(inputs) · R) with respect to every input, R fixed random (substrate.md 1.1). */
export function gradsOfProjection(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: Array<() => tf.Tensor>,
  seed = 99,
): () => tf.Tensor[] {
  return () => {
    const xs = inputs.map((make) => make());
    const y = f(...xs);
    const r = tf.tensor(randomValues(seed, y.size), y.shape);
    const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), r)))(xs);
    return [y, ...grads];
  };
}

interface Counts {
  tensors: number;
  bytes: number;
  wasmData: number;
  cpuData: number;
}
type DataCounter = { numDataIds(): number };

function counts(): Counts {
  const m = tf.memory();
  return {
    tensors: m.numTensors,
    bytes: m.numBytes,
    wasmData: (tf.engine().registry['wasm'] as unknown as DataCounter | undefined)?.numDataIds() ?? 0,
    cpuData: (tf.engine().registry['cpu'] as unknown as DataCounter | undefined)?.numDataIds() ?? 0,
  };
}

/** Live tensors, bytes and backend data buffers created by `fn` and not released. */
export async function leaks(fn: () => unknown | Promise<unknown>): Promise<Counts> {
  const before = counts();
  await fn();
  const after = counts();
  return {
    tensors: after.tensors - before.tensors,
    bytes: after.bytes - before.bytes,
    wasmData: after.wasmData - before.wasmData,
    cpuData: after.cpuData - before.cpuData,
  };
}

export const NO_LEAK: Counts = { tensors: 0, bytes: 0, wasmData: 0, cpuData: 0 };

/** Values of `compute` on wasm with the stock kernels (fixes uninstalled, then reinstalled). */
export async function onStockWasm(compute: () => tf.Tensor[]): Promise<Float32Array[]> {
  uninstallKernelFixes();
  try {
    return await valuesOn('wasm', compute);
  } finally {
    installKernelFixes();
  }
}

/** Waits until the module has `helpers` helper threads running (they start in the background). */
export async function withHelpers(helpers: number): Promise<SimdModule> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const simd = simdKernels()!;
    if (simd.helperThreads() >= helpers) return simd;
    if (Date.now() > deadline) throw new Error(`helper threads did not start: ${simd.helperThreads()} of ${helpers}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
