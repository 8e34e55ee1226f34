/**
 * _FusedMatMul (matMul + bias + activation) on wasm.
 *
 * Two stock defects: transpose flags take the slow loop (as for BatchMatMul), and the bias is
 * added wrongly whenever the kernel leaves its XNNPACK path, i.e. with a transpose flag or a batch
 * of more than one matrix (measured: relative error 0.1-0.9 against cpu; without bias the product
 * is right). We transpose explicitly, keep the stock kernel where it is right (no bias, or a single
 * matrix), and otherwise run product, bias add and activation as separate stock wasm kernels.
 */
import type { tf } from '../../tf.js';
import { withExplicitTransposes } from './batch_mat_mul.js';
import type { KernelFix } from './kernel_fix.js';
import { runKernel, type TensorInfo, type WasmBackend } from './wasm_backend.js';

/** The activation of a fused op as a separate wasm kernel; `x` is consumed (disposed). */
function activate(backend: WasmBackend, x: TensorInfo, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap): TensorInfo {
  const activation = (attrs['activation'] as string | undefined) ?? 'linear';
  let out: TensorInfo;
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      out = runKernel('Relu', backend, { x });
      break;
    case 'relu6':
      out = runKernel('Relu6', backend, { x });
      break;
    case 'elu':
      out = runKernel('Elu', backend, { x });
      break;
    case 'sigmoid':
      out = runKernel('Sigmoid', backend, { x });
      break;
    case 'leakyrelu':
      out = runKernel('LeakyRelu', backend, { x }, { alpha: (attrs['leakyreluAlpha'] as number | undefined) ?? 0.2 });
      break;
    case 'prelu':
      out = runKernel('Prelu', backend, { x, alpha: inputs['preluActivationWeights'] as TensorInfo });
      break;
    default:
      throw new Error(`_FusedMatMul on wasm: activation '${activation}' is not supported`);
  }
  backend.disposeData(x.dataId);
  return out;
}

/** matMul, then bias add, then activation, each a stock wasm kernel. */
function unfused(args: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = args.backend as unknown as WasmBackend;
  const attrs = args.attrs ?? {};
  const { a, b, bias } = args.inputs as { a: TensorInfo; b: TensorInfo; bias: TensorInfo };
  const product = runKernel('BatchMatMul', backend, { a, b }, { transposeA: attrs['transposeA'], transposeB: attrs['transposeB'] });
  let biased: TensorInfo;
  try {
    biased = runKernel('Add', backend, { a: product, b: bias });
  } finally {
    backend.disposeData(product.dataId);
  }
  return activate(backend, biased, args.inputs, attrs);
}

function batchSize(info: TensorInfo): number {
  return info.shape.slice(0, -2).reduce((p, d) => p * d, 1);
}

/** Replaces the stock _FusedMatMul (see the file comment). */
export const fusedMatMulFix: KernelFix = {
  kernelName: '_FusedMatMul',
  build: (stock) => {
    const stockWithTransposes = withExplicitTransposes('_FusedMatMul', stock);
    return (args) => {
      const { a, b, bias } = args.inputs;
      const multipleMatrices = batchSize(a as TensorInfo) > 1 || batchSize(b as TensorInfo) > 1;
      // The transposes are explicit inside BatchMatMul too: the flags pass through unchanged.
      if (bias != null && multipleMatrices) return unfused(args);
      return stockWithTransposes(args);
    };
  },
};
