/**
 * `nngeometry/kernels`: the corrected and faster tfjs-backend-wasm 4.22 kernels alone, for
 * programs that only train with tfjs on wasm and compute no curvature. Importing this module
 * installs them (when `@tensorflow/tfjs-backend-wasm` was imported before it; otherwise call
 * {@link installKernelFixes} once it is). Only kernels registered under backend 'wasm' change:
 * BatchMatMul / _FusedMatMul (transposed operands reach XNNPACK; single products in a SIMD GEMM),
 * MaxPoolGrad (the stock kernel drops gradients of windows whose maximum is ≤ 0),
 * Conv2DBackpropFilter / Conv2DBackpropInput, the depthwise convolution gradients and
 * UnsortedSegmentSum (missing or slow on wasm), and the Conv3D gradients (wrong on wasm).
 *
 * A plain training step of an MLP 784-512-512-10 on 2,048 examples runs 7.6–12.9× faster with
 * them (`npm run bench:kernels`, first row; README, "Faster tfjs-wasm training alone").
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import '@tensorflow/tfjs-backend-wasm';
 * import 'nngeometry/kernels';
 * await tf.setBackend('wasm');
 * await model.fit(xs, ys);      // the fixed kernels run the forward and backward passes
 * ```
 * @packageDocumentation
 */
import { installKernelFixes } from './backend/kernels/index.js';

installKernelFixes();

export {
  installKernelFixes,
  uninstallKernelFixes,
  kernelFixesInstalled,
  selfTestKernelFixes,
  type KernelFixReport,
  type KernelSelfTestResult,
} from './backend/kernels/index.js';
