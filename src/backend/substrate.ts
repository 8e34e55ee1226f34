/**
 * The library's compute substrate: on first use it installs the corrected tfjs-wasm kernels
 * (src/backend/kernels) unless the user opted out with `setKernelFixesEnabled(false)`.
 */
import { installKernelFixes, uninstallKernelFixes } from './kernels/index.js';
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../validation.js';

let enabled = true;

/**
 * Opts in or out of the automatic kernel corrections for tfjs-wasm (default: in). Turning them
 * off restores tfjs's stock wasm kernels, including their known defects (wrong MaxPoolGrad,
 * missing Conv2DBackpropFilter).
 */
export function setKernelFixesEnabled(on: boolean): void {
  if (typeof on !== 'boolean') throw new InvalidArgumentError(`setKernelFixesEnabled: 'on' must be a boolean, received ${describe(on)}`);
  enabled = on;
  if (!on) uninstallKernelFixes();
}

/** Installs the kernel fixes if enabled (idempotent, cheap after the first call). */
export function ensureKernelFixes(): void {
  if (enabled) installKernelFixes();
}
