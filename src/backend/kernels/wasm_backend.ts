/**
 * The slice of the tfjs-wasm and tfjs-cpu backends that the kernel fixes use, typed structurally
 * so that the library never imports `@tensorflow/tfjs-backend-wasm` (an optional peer): kernels
 * receive the backend instance from the engine and we only describe what we call on it.
 */
import { tf } from '../../tf.js';

/** A tfjs `TensorInfo`: a handle on backend data, without engine bookkeeping. */
export type TensorInfo = tf.TensorInfo;

/** The methods of tfjs-backend-wasm's `BackendWasm` that the fixes rely on. */
export interface WasmBackend {
  /** Allocates a heap block holding a copy of `values`; reference count 1. */
  write(values: tf.BackendValues | null, shape: number[], dtype: tf.DataType): tf.DataId;
  /** Copies the data out of the wasm heap. */
  readSync(dataId: tf.DataId): tf.BackendValues;
  /** Allocates on the wasm heap (uninitialised memory unless `values` is given). */
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.BackendValues): TensorInfo;
  /** Decrements the reference count and frees the heap block at zero. */
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  /**
   * A typed-array view on the heap block. Only valid until the next heap allocation, which may
   * grow (and so detach) the wasm memory: take views after the last `makeOutput` of a step.
   */
  typedArrayFromHeap(info: TensorInfo): tf.TypedArray;
  numDataIds(): number;
  /** Heap bookkeeping: each DataId's heap `id` (shared by reshapes, keyed on by XNNPACK caches). */
  dataIdMap: { get(dataId: tf.DataId): { id: number } | undefined; has(dataId: tf.DataId): boolean };
  /** How many tensors share the data (reshapes and clones of one another); 0 once freed. */
  refCount(dataId: tf.DataId): number;
}

/** The methods of tfjs-backend-cpu's `MathBackendCPU` that the cpu bridge relies on. */
export interface CpuBackend {
  /** Stores `values` (not copied); reference count 1. */
  write(values: tf.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.BackendValues): TensorInfo;
  readSync(dataId: tf.DataId): tf.BackendValues;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  numDataIds(): number;
}

/** The backend name whose kernels are patched. */
export const WASM = 'wasm';

/** Arguments of a kernel function, with the backend narrowed to what we use. */
export interface KernelArgs<B> {
  inputs: tf.NamedTensorInfoMap;
  backend: B;
  attrs?: tf.NamedAttrMap;
}

/** The kernel function registered for `kernelName` on `backendName`, or a clear error. */
export function requireKernel(kernelName: string, backendName: string): tf.KernelFunc {
  const config = tf.getKernel(kernelName, backendName);
  if (config == null) throw new Error(`kernel '${kernelName}' is not registered for backend '${backendName}'`);
  return config.kernelFunc;
}

/** Runs another kernel of the same backend directly (no engine, no tape): its output is ours to dispose. */
export function runKernel(
  kernelName: string,
  backend: WasmBackend | CpuBackend,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
  backendName: string = WASM,
): TensorInfo {
  const out = requireKernel(kernelName, backendName)({ inputs, backend: backend as unknown as tf.KernelBackend, attrs });
  if (Array.isArray(out)) throw new Error(`kernel '${kernelName}' returned several outputs where one was expected`);
  return out;
}

/** The initialised cpu backend (created on demand: the cpu backend initialises synchronously). */
export function cpuBackend(): CpuBackend {
  const cpu = tf.findBackend('cpu') as unknown as CpuBackend | null;
  if (cpu == null) throw new Error("the tfjs 'cpu' backend is not registered; it is needed as the reference for wasm kernel fixes");
  return cpu;
}

/** The initialised wasm backend, or null when it is not registered or not yet initialised. */
export function wasmBackendIfReady(): WasmBackend | null {
  if (tf.findBackendFactory(WASM) == null) return null;
  // findBackend would start an asynchronous initialisation; only look at what exists.
  return (tf.engine().registry[WASM] as unknown as WasmBackend | undefined) ?? null;
}
