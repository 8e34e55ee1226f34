/**
 * DepthwiseConv2dNativeBackpropFilter / …BackpropInput on wasm (both missing in tfjs-wasm).
 * Direct loops in JS over the wasm heap, channels innermost (NHWC). A depthwise conv is cheap
 * (kh·kw·C·multiplier MACs per output pixel), so no matmul is needed: bridging to tfjs-cpu took
 * 3.9 s for both gradients at [32,28,28,16] k3, whose kernels index through TensorBuffer.get.
 * Dilations are honoured (tfjs has no dilated depthwise gradient, but the kernels accept them).
 */
import { tf } from '../../tf.js';
import type { KernelFix } from './kernel_fix.js';
import type { KernelArgs, TensorInfo, WasmBackend } from './wasm_backend.js';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

function depthwiseGeometry(inShape: number[], filterShape: number[], attrs: tf.NamedAttrMap): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as [number, number] | number,
    (attrs['dilations'] as [number, number] | number | undefined) ?? 1,
    attrs['pad'] as Pad,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    true,
  );
}

/**
 * Visits every (output pixel, filter tap) pair that reads inside the input, passing the flat
 * offsets of the input pixel, the dy pixel and the filter tap (all at channel 0).
 */
function forEachTap(info: tf.backend_util.Conv2DInfo, visit: (xBase: number, dyBase: number, wBase: number) => void): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: CM } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  for (let b = 0; b < N; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyBase = ((b * OH + oh) * OW + ow) * CM;
        for (let kr = 0; kr < fh; kr++) {
          const ih = oh * sh - top + kr * dh;
          if (ih < 0 || ih >= H) continue;
          for (let kc = 0; kc < fw; kc++) {
            const iw = ow * sw - left + kc * dw;
            if (iw < 0 || iw >= W) continue;
            visit(((b * H + ih) * W + iw) * C, dyBase, (kr * fw + kc) * CM);
          }
        }
      }
    }
  }
}

/** dW[kr, kc, c, m] = Σ x[b, ih, iw, c] · dy[b, oh, ow, c·M + m] (accumulated in float64). */
export function depthwiseBackpropFilterWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo {
  const x = inputs['x'] as TensorInfo;
  const dy = inputs['dy'] as TensorInfo;
  const filterShape = attrs['filterShape'] as number[];
  const info = depthwiseGeometry(x.shape, filterShape, attrs);
  const C = info.inChannels;
  const mult = info.outChannels / C;
  const result = backend.makeOutput(filterShape.slice(), 'float32');
  const xs = backend.typedArrayFromHeap(x);
  const g = backend.typedArrayFromHeap(dy);
  const acc = new Float64Array(info.filterHeight * info.filterWidth * info.outChannels);
  forEachTap(info, (xBase, dyBase, wBase) => {
    for (let c = 0; c < C; c++) {
      const xv = xs[xBase + c];
      const o = c * mult;
      for (let m = 0; m < mult; m++) acc[wBase + o + m] += xv * g[dyBase + o + m];
    }
  });
  (backend.typedArrayFromHeap(result) as Float32Array).set(acc);
  return result;
}

/** dx[b, ih, iw, c] = Σ over taps reading (ih, iw) of Σ_m dy[b, oh, ow, c·M + m] · W[kr, kc, c, m]. */
export function depthwiseBackpropInputWasm({ inputs, backend, attrs = {} }: KernelArgs<WasmBackend>): TensorInfo {
  const dy = inputs['dy'] as TensorInfo;
  const filter = inputs['filter'] as TensorInfo;
  const inputShape = attrs['inputShape'] as number[];
  const info = depthwiseGeometry(inputShape, filter.shape, attrs);
  const C = info.inChannels;
  const mult = info.outChannels / C;
  const result = backend.makeOutput(inputShape.slice(), 'float32');
  const dx = backend.typedArrayFromHeap(result) as Float32Array;
  dx.fill(0);
  const g = backend.typedArrayFromHeap(dy);
  const w = backend.typedArrayFromHeap(filter);
  forEachTap(info, (xBase, dyBase, wBase) => {
    for (let c = 0; c < C; c++) {
      const o = c * mult;
      let s = 0;
      for (let m = 0; m < mult; m++) s += g[dyBase + o + m] * w[wBase + o + m];
      dx[xBase + c] += s;
    }
  });
  return result;
}

/** Adds the missing DepthwiseConv2dNativeBackpropFilter. */
export const depthwiseBackpropFilterFix: KernelFix = {
  kernelName: 'DepthwiseConv2dNativeBackpropFilter',
  build: () => depthwiseBackpropFilterWasm as unknown as tf.KernelFunc,
};

/** Adds the missing DepthwiseConv2dNativeBackpropInput. */
export const depthwiseBackpropInputFix: KernelFix = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  build: () => depthwiseBackpropInputWasm as unknown as tf.KernelFunc,
};
