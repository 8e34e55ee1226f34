/**
 * Slice on wasm. The stock kernel starts with `backend.readSync(x)`, which copies the whole
 * input out of the wasm heap into a fresh buffer, whatever the size of the slice: every slice of
 * a parameter-sized vector (e.g. one layer's part of v in PMatImplicit.mv, taken per batch) paid
 * a copy of all d values, and the first touch of that fresh memory. Here the output is filled by
 * block copies between views on the heap: each run of the slice that is contiguous in x (its
 * innermost axes whose extent is whole, plus one) is one `set`. Numeric dtypes only; strings run
 * the stock kernel.
 */
import { tf } from '../../tf.js';
import type { KernelFix } from './kernel_fix.js';
import type { KernelArgs, TensorInfo, WasmBackend } from './wasm_backend.js';

type Numeric = Float32Array | Int32Array | Uint8Array;

/** out = x[begin … begin + size) for x of shape `shape` (row-major), both views on the heap. */
export function sliceInto(x: Numeric, shape: readonly number[], begin: readonly number[], size: readonly number[], out: Numeric): void {
  const rank = shape.length;
  const stride = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) stride[i] = stride[i + 1]! * shape[i + 1]!;
  // The innermost axes taken whole join the contiguous run: axis `inner` and everything after it.
  let inner = rank - 1;
  while (inner > 0 && size[inner] === shape[inner]) inner--;
  const run = size.slice(inner).reduce((p, d) => p * d, 1);
  let at = 0;
  const copy = (axis: number, offset: number): void => {
    if (axis === inner) {
      const from = offset + begin[axis]! * stride[axis]!;
      out.set(x.subarray(from, from + run) as never, at);
      at += run;
      return;
    }
    for (let i = 0; i < size[axis]!; i++) copy(axis + 1, offset + (begin[axis]! + i) * stride[axis]!);
  };
  copy(0, 0);
}

/** The slice, or null where it does not apply (the caller runs the stock kernel). */
export function sliceWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo | null {
  const x = inputs['x'] as TensorInfo;
  if (x.dtype === 'string' || x.dtype === 'complex64' || x.shape.length === 0) return null;
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo, attrs['begin'] as number | number[], attrs['size'] as number | number[] | undefined);
  // Past the end, the copies would read whatever lies beyond x on the heap: refuse, with the
  // cpu backend's message (which axis overflows, and by how much).
  tf.slice_util.assertParamsValid(x as unknown as tf.TensorInfo, begin, size);
  const result = backend.makeOutput(size, x.dtype);
  if (size.some((d) => d === 0)) return result;
  // Views after the allocation (it may grow and detach the heap).
  sliceInto(backend.typedArrayFromHeap(x) as Numeric, x.shape, begin, size, backend.typedArrayFromHeap(result) as Numeric);
  return result;
}

/** Slice: block copies on the heap (see the file comment), the stock kernel for other dtypes. */
export const sliceFix: KernelFix = {
  kernelName: 'Slice',
  build: (stock) => {
    if (stock == null) throw new Error("kernel 'Slice' is missing on wasm; nothing to patch");
    return (args) => sliceWasm(args as unknown as KernelArgs<WasmBackend>) ?? stock.kernelFunc(args);
  },
};
