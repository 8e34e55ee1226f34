/**
 * Runs a tfjs-cpu kernel for the wasm backend: inputs are copied out of the wasm heap into the
 * cpu backend, the cpu kernel runs, and its outputs are copied back. Correct wherever the cpu
 * kernel is, at the price of two copies and the cpu kernel's speed (substrate.md 1.1, 'bridge.js').
 * Used where the wasm kernel is wrong and speed matters little to nngeometry: the Conv3D
 * gradients (stock wasm: relative error 0.8-7.8 on the input gradient, 0.8 on the filter gradient
 * with stride 2, measured against cpu). Hot kernels get native replacements instead: the cpu
 * kernels index through TensorBuffer.get and are 100-1000x slower than a typed-array loop.
 */
import type { tf } from '../../tf.js';
import type { KernelFix } from './kernel_fix.js';
import { cpuBackend, requireKernel, type TensorInfo, type WasmBackend } from './wasm_backend.js';

/** A kernel function for wasm that delegates to the cpu backend's `kernelName`. */
export function cpuBridgedKernel(kernelName: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as unknown as WasmBackend;
    const cpu = cpuBackend();
    const cpuKernel = requireKernel(kernelName, 'cpu');
    const cpuInputs: Record<string, TensorInfo> = {};
    const created: TensorInfo[] = [];
    try {
      for (const [name, t] of Object.entries(inputs)) {
        if (t == null) continue;
        const copy = cpu.makeTensorInfo(t.shape.slice(), t.dtype, wasm.readSync(t.dataId));
        created.push(copy);
        cpuInputs[name] = copy;
      }
      const result = cpuKernel({ inputs: cpuInputs, backend: cpu as unknown as tf.KernelBackend, attrs });
      const outputs = Array.isArray(result) ? result : [result];
      created.push(...outputs);
      const copied = outputs.map((o) => wasm.makeOutput(o.shape.slice(), o.dtype, undefined, cpu.readSync(o.dataId)));
      return Array.isArray(result) ? copied : copied[0] as TensorInfo;
    } finally {
      // An output may share its data with an input (reference counted): dispose each handle once.
      for (const t of created) cpu.disposeData(t.dataId);
    }
  };
}

/** A fix that bridges `kernelName` to the cpu backend. */
export function cpuBridgeFix(kernelName: string): KernelFix {
  return { kernelName, build: () => cpuBridgedKernel(kernelName) };
}

/** Kernels that are wrong on tfjs-wasm 4.22 and are bridged to cpu. */
export const cpuBridgedFixes: readonly KernelFix[] = [
  cpuBridgeFix('Conv3DBackpropInputV2'),
  cpuBridgeFix('Conv3DBackpropFilterV2'),
];
