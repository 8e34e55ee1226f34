/**
 * Registers and unregisters the wasm kernel fixes in tfjs's global kernel registry, remembering
 * the stock kernels so that they can be restored. Only kernels registered under backend name
 * 'wasm' are touched; nothing happens where tfjs-backend-wasm was never imported.
 */
import { tf } from '../../tf.js';
import { batchMatMulFix } from './batch_mat_mul.js';
import { fusedMatMulFix } from './fused_mat_mul.js';
import { conv2dBackpropFilterFix } from './conv2d_backprop_filter.js';
import { conv2dBackpropInputFix } from './conv2d_backprop_input.js';
import { conv2dForwardFix, fusedConv2dForwardFix } from './conv2d_forward.js';
import { cpuBridgedFixes } from './cpu_bridge.js';
import { depthwiseBackpropFilterFix, depthwiseBackpropInputFix } from './depthwise_conv2d_backprop.js';
import type { KernelFix } from './kernel_fix.js';
import { maxPoolGradFix } from './max_pool_grad.js';
import { sliceFix } from './slice.js';
import { tileFix } from './tile.js';
import { unsortedSegmentSumFix } from './unsorted_segment_sum.js';
import { WASM } from './wasm_backend.js';

/** Every fix, in installation order. */
export const KERNEL_FIXES: readonly KernelFix[] = [
  batchMatMulFix,
  fusedMatMulFix,
  maxPoolGradFix,
  conv2dBackpropFilterFix,
  conv2dBackpropInputFix,
  conv2dForwardFix,
  fusedConv2dForwardFix,
  depthwiseBackpropInputFix,
  depthwiseBackpropFilterFix,
  unsortedSegmentSumFix,
  tileFix,
  sliceFix,
  ...cpuBridgedFixes,
];

interface Installed {
  /** The kernel registered before ours (undefined where wasm had none), restored on uninstall. */
  stock: tf.KernelConfig | undefined;
  /** Our registered config, to recognise it in the registry. */
  config: tf.KernelConfig;
}

const installed = new Map<string, Installed>();

/** Whether tfjs-backend-wasm has registered its kernels (it does so on import, before init). */
export function wasmKernelsRegistered(): boolean {
  return tf.getKernel('BatchMatMul', WASM) != null;
}

/** Installs every fix not yet installed; returns the names of all installed fixes. */
export function installFixes(): string[] {
  if (!wasmKernelsRegistered()) return [];
  for (const fix of KERNEL_FIXES) {
    if (installed.has(fix.kernelName)) continue;
    const stock = tf.getKernel(fix.kernelName, WASM);
    const config: tf.KernelConfig = {
      kernelName: fix.kernelName,
      backendName: WASM,
      kernelFunc: fix.build(stock),
      // The engine runs setupFunc when the wasm backend initialises. If we install before that,
      // the stock kernel's setup (which binds its C function) must still run, through our config.
      ...(stock?.setupFunc != null ? { setupFunc: stock.setupFunc } : {}),
      ...(stock?.disposeFunc != null ? { disposeFunc: stock.disposeFunc } : {}),
    };
    if (stock != null) tf.unregisterKernel(fix.kernelName, WASM);
    tf.registerKernel(config);
    installed.set(fix.kernelName, { stock, config });
  }
  return [...installed.keys()];
}

/** Restores the stock kernels (and removes the added ones). */
export function uninstallFixes(): void {
  for (const [kernelName, { stock, config }] of installed) {
    // Leave alone a kernel someone else re-registered since.
    if (tf.getKernel(kernelName, WASM) === config) {
      tf.unregisterKernel(kernelName, WASM);
      if (stock != null) tf.registerKernel(stock);
    }
  }
  installed.clear();
}

/** Whether the fixes are installed. */
export function fixesInstalled(): boolean {
  return installed.size > 0;
}

/**
 * The kernel function to self-test for a fix: while installed, whatever is registered under its
 * name (what tfjs will actually run); otherwise one built against the current stock kernel.
 */
export function fixKernelFunc(fix: KernelFix): tf.KernelFunc {
  const registered = installed.has(fix.kernelName) ? tf.getKernel(fix.kernelName, WASM) : undefined;
  return registered?.kernelFunc ?? fix.build(tf.getKernel(fix.kernelName, WASM));
}
