/**
 * BatchMatMul on wasm: float32 products — single, batched with equal batch shapes, or with one
 * side shared — run in nngeometry's SIMD GEMM (`matMulBySimd` below); other broadcasts, and
 * everything where WebAssembly SIMD is unavailable, run the stock XNNPACK kernel, with explicit
 * transposes.
 *
 * The stock wasm kernels reach XNNPACK only when neither `transposeA` nor `transposeB` is set and
 * otherwise fall back to a naive loop 10-50x slower (substrate.md 1.3: 512³ with transposeA 431 ms
 * against 13 ms). matMul's own gradient sets those flags (dA = dy·Bᵀ, dB = Aᵀ·dy), so every Dense
 * backward pass hit the slow loop. Transposing with the wasm Transpose kernel first is O(size) and
 * brings every flag combination back to XNNPACK speed.
 *
 * A third defect: the stock kernel caches its XNNPACK operator (with B packed inside) under B's
 * heap id alone, not B's shape. A reshape shares the id, so using one tensor as B with two
 * shapes (e.g. v.reshape([6, 7]) then v.reshape([42, 1])) reuses an operator built for the
 * other shape: wrong numbers and heap corruption. We remember the [K, N] each id was used with
 * and pass a fresh copy of B when it changes.
 */
import type { tf } from '../../tf.js';
import type { KernelFix } from './kernel_fix.js';
import { gemmSimdBatched } from './simd/kernels.js';
import { simdKernels } from './simd/module.js';
import { runKernel, type TensorInfo, type WasmBackend } from './wasm_backend.js';

const product = (dims: number[]): number => dims.reduce((p, d) => p * d, 1);

/**
 * Float32 products by nngeometry's SIMD GEMM (wasm/simd_kernels.c, 4×8 tiles on packed B), which
 * reads a transposed A through strides and transposes B while packing it, so transpose flags cost
 * no separate pass; one product per batch index, with equal batch shapes or one side a single
 * matrix (batch dimensions all 1) shared by every product, one copy into the module and one out
 * for the whole batch. Against XNNPACK with explicit transposes, interleaved on a shared machine
 * (bench/kernels.ts): dy·Wᵀ 1.5-2.2x, xᵀ·dy 1.2-2.9x, plain products 1.1-1.25x on the Dense shapes
 * of a 784-512-512-10 MLP at batch 128 and on 512³ / [784,1280]@[1280,784]; level (0.95-1.07x) on
 * tall-skinny [25088,144]@[144,32]; small per-example products (the per-example convolution
 * gradients of Diag and EKFAC) 5-10x, XNNPACK setting up an operator per batch index. Null when
 * it does not apply: other broadcasts, other dtypes, no WebAssembly SIMD, or a failure (e.g.
 * memory).
 */
export function matMulBySimd(backend: WasmBackend, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const countA = product(batchA);
  const countB = product(batchB);
  const sameBatch = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
  if (!sameBatch && countA !== 1 && countB !== 1) return null;
  const simd = simdKernels();
  if (simd == null) return null;
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [a1, a0] : [a0, a1];
  const [k2, n] = transposeB ? [b1, b0] : [b0, b1];
  if (k !== k2) return null; // let the stock kernel report the mismatch
  const count = Math.max(countA, countB);
  // The output keeps the batch shape of the side with more products (ties: the longer shape).
  const batch = countA > countB || (countA === countB && batchA.length >= batchB.length) ? batchA : batchB;
  const out = backend.makeOutput([...batch, m, n], 'float32');
  try {
    // Views after the allocation (it may grow and detach the heap).
    gemmSimdBatched(simd, backend.typedArrayFromHeap(a), backend.typedArrayFromHeap(b), count, m, k, n,
      backend.typedArrayFromHeap(out) as Float32Array, transposeA, transposeB, countA < count, countB < count);
    return out;
  } catch {
    backend.disposeData(out.dataId);
    return null;
  }
}

/** Swaps the last two axes of `x` with the wasm Transpose kernel; the result is the caller's. */
export function transposeLastTwo(backend: WasmBackend, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
  return runKernel('Transpose', backend, { x }, { perm });
}

/** The [K, N] each B heap id was last multiplied with (ids are recycled: a stale entry only costs a copy). */
const shapeOfB = new Map<number, string>();

/**
 * `b` itself, or a copy with its own heap id when `b`'s id was last used as B with another
 * [K, N]; in that case the copy is pushed to `temporaries`.
 */
function freshIfReshaped(backend: WasmBackend, b: TensorInfo, temporaries: TensorInfo[]): TensorInfo {
  const id = backend.dataIdMap.get(b.dataId)?.id;
  if (id === undefined) return b;
  const key = b.shape.slice(-2).join(',');
  const seen = shapeOfB.get(id);
  if (seen === undefined || seen === key) {
    shapeOfB.set(id, key);
    return b;
  }
  const copy = backend.makeOutput([...b.shape], b.dtype, undefined, backend.readSync(b.dataId));
  temporaries.push(copy);
  const copyId = backend.dataIdMap.get(copy.dataId)?.id;
  if (copyId !== undefined) shapeOfB.set(copyId, key);
  return copy;
}

/**
 * Wraps a matmul-like stock kernel: inputs `a`/`b` that carry a transpose flag are transposed
 * explicitly, and the stock kernel runs with both flags off. Other inputs (bias, prelu weights)
 * and attributes pass through unchanged.
 */
export function withExplicitTransposes(kernelName: string, stock: tf.KernelConfig | undefined): tf.KernelFunc {
  if (stock == null) throw new Error(`kernel '${kernelName}' is missing on wasm; nothing to patch`);
  const stockFunc = stock.kernelFunc;
  return (args) => {
    const attrs = args.attrs ?? {};
    const transposeA = attrs['transposeA'] === true;
    const transposeB = attrs['transposeB'] === true;
    const backend = args.backend as unknown as WasmBackend;
    const temporaries: TensorInfo[] = [];
    const inputs = { ...args.inputs };
    try {
      if (transposeA) temporaries.push((inputs['a'] = transposeLastTwo(backend, inputs['a'] as TensorInfo)));
      if (transposeB) temporaries.push((inputs['b'] = transposeLastTwo(backend, inputs['b'] as TensorInfo)));
      else inputs['b'] = freshIfReshaped(backend, inputs['b'] as TensorInfo, temporaries);
      return stockFunc({ ...args, inputs, attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      for (const t of temporaries) backend.disposeData(t.dataId);
    }
  };
}

/** BatchMatMul: the SIMD GEMM where it applies, the rest on XNNPACK with explicit transposes (see the file comment). */
export const batchMatMulFix: KernelFix = {
  kernelName: 'BatchMatMul',
  build: (stock) => {
    const withTransposes = withExplicitTransposes('BatchMatMul', stock);
    return (args) => {
      const attrs = args.attrs ?? {};
      const bySimd = matMulBySimd(args.backend as unknown as WasmBackend, args.inputs['a'] as TensorInfo, args.inputs['b'] as TensorInfo,
        attrs['transposeA'] === true, attrs['transposeB'] === true);
      return bySimd ?? withTransposes(args);
    };
  },
};
