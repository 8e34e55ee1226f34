/**
 * Runs one kernel function directly on a backend instance, outside the engine: inputs are written
 * into the backend, the output is read back and every handle is disposed, so a self-test leaves
 * no tensor and no backend data behind and does not depend on which backend is active.
 */
import type { tf } from '../../tf.js';
import type { TensorSpec } from './self_test_cases.js';
import type { CpuBackend, TensorInfo, WasmBackend } from './wasm_backend.js';

/** Runs `kernelFunc` on `backend` with host inputs; returns the (single) output as host values. */
export function runOnBackend(
  backend: WasmBackend | CpuBackend,
  kernelFunc: tf.KernelFunc,
  inputs: Record<string, TensorSpec>,
  attrs: tf.NamedAttrMap,
): TensorSpec {
  const handles: TensorInfo[] = [];
  try {
    const infos: Record<string, TensorInfo> = {};
    for (const [name, spec] of Object.entries(inputs)) {
      // write() copies into the wasm heap but keeps the array on cpu: give cpu its own copy.
      const values = spec.values.slice();
      const info = { dataId: backend.write(values, spec.shape.slice(), spec.dtype), shape: spec.shape.slice(), dtype: spec.dtype };
      handles.push(info);
      infos[name] = info;
    }
    const result = kernelFunc({ inputs: infos, backend: backend as unknown as tf.KernelBackend, attrs });
    const outputs = Array.isArray(result) ? result : [result];
    handles.push(...outputs);
    const out = outputs[0] as TensorInfo;
    const values = backend.readSync(out.dataId);
    return {
      shape: out.shape.slice(),
      dtype: out.dtype === 'int32' ? 'int32' : 'float32',
      values: out.dtype === 'int32' ? Int32Array.from(values as Int32Array) : Float32Array.from(values as Float32Array),
    };
  } finally {
    for (const h of handles) backend.disposeData(h.dataId);
  }
}
