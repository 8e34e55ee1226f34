/**
 * UnsortedSegmentSum on wasm (missing in tfjs-wasm; it is the gradient of gather, hence of every
 * embedding lookup). A scatter-add in JS over the wasm heap, O(size of x). Bridging to tfjs-cpu
 * works but the cpu kernel builds a mask per segment, O(numSegments · size): 38 s for the gradient
 * of a 1000-row table gathered 4096 times, against milliseconds here.
 * Ids outside [0, numSegments) are dropped, as in TensorFlow and tfjs-cpu.
 */
import type { tf } from '../../tf.js';
import type { KernelFix } from './kernel_fix.js';
import type { KernelArgs, TensorInfo, WasmBackend } from './wasm_backend.js';

/** out[s] = Σ_{i : segmentIds[i] = s} x[i], over the leading axes that segmentIds spans. */
export function unsortedSegmentSumWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo {
  const x = inputs['x'] as TensorInfo;
  const segmentIds = inputs['segmentIds'] as TensorInfo;
  const numSegments = attrs['numSegments'] as number;
  const rows = segmentIds.shape.reduce((p, d) => p * d, 1);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = innerShape.reduce((p, d) => p * d, 1);
  const result = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  // Views after the allocation above (it may grow and detach the heap).
  const out = backend.typedArrayFromHeap(result);
  out.fill(0);
  if (rows === 0 || inner === 0) return result;
  const values = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  for (let i = 0; i < rows; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const from = i * inner;
    const to = s * inner;
    for (let j = 0; j < inner; j++) out[to + j] += values[from + j];
  }
  return result;
}

/** Adds the missing UnsortedSegmentSum (see the file comment). */
export const unsortedSegmentSumFix: KernelFix = {
  kernelName: 'UnsortedSegmentSum',
  build: () => unsortedSegmentSumWasm as unknown as tf.KernelFunc,
};
