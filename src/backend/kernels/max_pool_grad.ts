/**
 * MaxPoolGrad on wasm, reimplemented in JS over the wasm heap.
 *
 * The stock wasm kernel gives a zero gradient to every window whose maximum is ≤ 0 (except the
 * very first window): its running maximum starts at 0 instead of -Infinity (substrate.md 1.1;
 * window [-0.5, -2, -3, -4] gets 0 where 1 is right). The gradient of max pooling sends each
 * output gradient to the argmax of its window; we recompute the argmax from the input exactly as
 * tfjs-backend-cpu does (`maxPoolPositions`): the first strictly greatest value in row-major window
 * order, padding excluded, NaN never selected, so ties resolve identically on both backends.
 */
import { tf } from '../../tf.js';
import type { KernelFix } from './kernel_fix.js';
import type { KernelArgs, TensorInfo, WasmBackend } from './wasm_backend.js';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** Accumulates dy into the argmax of every pooling window (NHWC, float32 result). */
export function maxPoolGradWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo {
  const dy = inputs['dy'] as TensorInfo;
  const input = inputs['input'] as TensorInfo;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs['filterSize'] as [number, number] | number,
    attrs['strides'] as [number, number] | number,
    1,
    attrs['pad'] as Pad,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
  );
  const dx = backend.makeOutput(input.shape, 'float32');
  // Views are taken after the allocation above: an allocation may grow and detach the heap.
  const x = backend.typedArrayFromHeap(input);
  const g = backend.typedArrayFromHeap(dy);
  const out = backend.typedArrayFromHeap(dx) as Float32Array;
  out.fill(0);

  const { batchSize, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  // Per-channel running maximum and its flat input index, for one output pixel at a time: the
  // inner loop then walks channels contiguously (NHWC) instead of striding by C.
  const maxValue = new Float64Array(C);
  const maxIndex = new Int32Array(C);
  let gi = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const r0 = Math.max(0, oh * sh - top);
      const r1 = Math.min(H, oh * sh - top + fh);
      for (let ow = 0; ow < OW; ow++, gi += C) {
        const c0 = Math.max(0, ow * sw - left);
        const c1 = Math.min(W, ow * sw - left + fw);
        maxValue.fill(Number.NEGATIVE_INFINITY);
        maxIndex.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let c = c0; c < c1; c++) {
            const base = ((b * H + r) * W + c) * C;
            for (let d = 0; d < C; d++) {
              const v = x[base + d];
              if (v > (maxValue[d])) {
                maxValue[d] = v;
                maxIndex[d] = base + d;
              }
            }
          }
        }
        for (let d = 0; d < C; d++) {
          const at = maxIndex[d];
          if (at >= 0) out[at] = (out[at]) + (g[gi + d]);
        }
      }
    }
  }
  return dx;
}

/** Replaces the wrong stock MaxPoolGrad (see the file comment). */
export const maxPoolGradFix: KernelFix = {
  kernelName: 'MaxPoolGrad',
  build: () => maxPoolGradWasm as unknown as tf.KernelFunc,
};
