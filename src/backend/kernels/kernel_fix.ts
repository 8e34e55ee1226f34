/**
 * What one kernel fix is: a kernel name and a way to build its replacement kernel function
 * from the stock wasm kernel (absent for kernels tfjs-wasm lacks).
 */
import type { tf } from '../../tf.js';

/** A replacement (or addition) for one kernel of the tfjs wasm backend. */
export interface KernelFix {
  /** The tfjs kernel name, e.g. `'BatchMatMul'`. */
  readonly kernelName: string;
  /**
   * Builds the replacement kernel function. `stock` is the kernel registered before the fix
   * (undefined where tfjs-wasm has none), for fixes that delegate the cases they don't handle.
   */
  build(stock: tf.KernelConfig | undefined): tf.KernelFunc;
}
