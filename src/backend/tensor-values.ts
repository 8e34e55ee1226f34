/**
 * A tensor's float32 values read where they lie: on tfjs-wasm a view on the module's memory
 * (no copy), elsewhere `dataSync()`. At d ≈ 10⁸ a copy is 400 MB of fresh memory, whose first
 * touch alone costs this kind of machine seconds (docs/performance.md, "fresh memory").
 */
import { tf } from '../tf.js';
import type { WasmBackend } from './kernels/wasm_backend.js';

/** The wasm backend holding `t`'s data, or null (another backend, or not a float32 tensor). */
function wasmHolder(t: tf.Tensor): WasmBackend | null {
  if (t.dtype !== 'float32' || tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as WasmBackend;
  // After a backend switch tfjs moves data lazily: only read in place what this backend holds.
  return backend.dataIdMap.has(t.dataId) ? backend : null;
}

/**
 * The float32 values of `t` read in place from tfjs-wasm's memory (no copy), or null on another
 * backend. The view is valid only until the next tfjs allocation, which may grow (and so
 * detach) the wasm memory: read it before any other tfjs call.
 */
export function wasmView(t: tf.Tensor): Float32Array | null {
  const backend = wasmHolder(t);
  if (backend === null) return null;
  // The backend's own accessor (the kernel fixes use it too): a view on its heap, no copy.
  return backend.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: 'float32' }) as Float32Array;
}

/**
 * The values of the float32 tensor `t` for reading: the in-place view on wasm, `dataSync()`
 * elsewhere (on tfjs-cpu that is the backend's own array, on webgl a download). Never write to it;
 * valid until the next tfjs call, as `wasmView`.
 */
export function float32Values(t: tf.Tensor): Float32Array {
  return wasmView(t) ?? (t.dataSync() as Float32Array);
}

/**
 * A writable in-place view on `t`'s values when nothing else shares its memory: on wasm, with
 * the data's reference count at 1 (a reshape or clone shares it until disposed); null otherwise,
 * and then the caller computes a new tensor instead.
 */
export function exclusiveWasmView(t: tf.Tensor): Float32Array | null {
  const backend = wasmHolder(t);
  if (backend === null || backend.refCount(t.dataId) !== 1) return null;
  return backend.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: 'float32' }) as Float32Array;
}

/**
 * A float32 tensor of `size` values on tfjs-wasm whose memory is left as the allocator gives it
 * (not zeroed: `tf.zeros` builds a host array and copies it in, `tf.fill` writes every value),
 * for a caller that writes every value it will read; null on another backend.
 */
export function uninitializedWasmTensor(size: number): tf.Tensor1D | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as WasmBackend;
  return tf.engine().makeTensorFromTensorInfo(backend.makeOutput([size], 'float32')) as tf.Tensor1D;
}
