/**
 * Tile on wasm. The stock kernel computes every output element's source index separately; the
 * gradient of BatchNormalization tiles a [1, 1, 1, C] statistic to the [N, H, W, C] activation
 * shape, and those Tiles took 55 % of the bench ResNet's plain training step (67 ms each for
 * 128×16×16×16 outputs). Here the output is built by block copies on the wasm heap: the
 * innermost axis is written once per source row, and each axis's block is then repeated by
 * doubling copies (copyWithin), so the cost is that of writing the output once. Numeric dtypes
 * only; strings (and anything else) run the stock kernel.
 */
import type { KernelFix } from './kernel_fix.js';
import type { KernelArgs, TensorInfo, WasmBackend } from './wasm_backend.js';

type Numeric = Float32Array | Int32Array | Uint8Array;

/** Repeats out[start, start + block) so that it fills out[start, start + block·times). */
function repeatBlock(out: Numeric, start: number, block: number, times: number): void {
  const total = block * times;
  for (let done = block; done < total; done *= 2) out.copyWithin(start + done, start, start + Math.min(done, total - done));
}

/** out = tile(x, reps) for x of shape `shape` (row-major), both views on the heap. */
export function tileInto(x: Numeric, shape: number[], reps: number[], out: Numeric): void {
  const rank = shape.length;
  const outShape = shape.map((d, i) => d * reps[i]!);
  const xStride = new Array<number>(rank).fill(1);
  const outBlock = new Array<number>(rank).fill(1); // floats of one index of axis i in the output
  for (let i = rank - 2; i >= 0; i--) {
    xStride[i] = xStride[i + 1]! * shape[i + 1]!;
    outBlock[i] = outBlock[i + 1]! * outShape[i + 1]!;
  }
  const fill = (axis: number, xOffset: number, outOffset: number): void => {
    const n = shape[axis]!;
    if (axis === rank - 1) {
      out.set(x.subarray(xOffset, xOffset + n) as never, outOffset);
    } else {
      for (let i = 0; i < n; i++) fill(axis + 1, xOffset + i * xStride[axis]!, outOffset + i * outBlock[axis]!);
    }
    repeatBlock(out, outOffset, n * outBlock[axis]!, reps[axis]!);
  };
  fill(0, 0, 0);
}

/** The tiled tensor, or null where it does not apply (the caller runs the stock kernel). */
export function tileWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo | null {
  const x = inputs['x'] as TensorInfo;
  const reps = attrs['reps'] as number[] | undefined;
  if (x.dtype === 'string' || x.dtype === 'complex64' || reps == null || reps.length !== x.shape.length || x.shape.length === 0) return null;
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  const result = backend.makeOutput(outShape, x.dtype);
  if (outShape.some((d) => d === 0)) return result;
  // Views after the allocation (it may grow and detach the heap).
  tileInto(backend.typedArrayFromHeap(x) as Numeric, x.shape, reps, backend.typedArrayFromHeap(result) as Numeric);
  return result;
}

/** Tile: block copies (see the file comment), the stock kernel for other dtypes. */
export const tileFix: KernelFix = {
  kernelName: 'Tile',
  build: (stock) => {
    if (stock == null) throw new Error("kernel 'Tile' is missing on wasm; nothing to patch");
    return (args) => tileWasm(args as unknown as KernelArgs<WasmBackend>) ?? stock.kernelFunc(args);
  },
};
