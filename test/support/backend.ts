/**
 * Test set-up: selects the tfjs backend named by NNGEOMETRY_TEST_BACKEND (default 'wasm').
 * Importing '@tensorflow/tfjs-backend-wasm' registers the wasm backend in Node.
 */
import { tf } from '../../src/tf.js';
import '@tensorflow/tfjs-backend-wasm';
import { ensureKernelFixes } from '../../src/backend/substrate.js';

export async function useTestBackend(name = process.env.NNGEOMETRY_TEST_BACKEND ?? 'wasm'): Promise<string> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`test backend ${name} could not be set`);
  await tf.ready();
  // As the library does on first use: tests of internals run on the corrected kernels too.
  ensureKernelFixes();
  return tf.getBackend();
}

/** Asserts that `fn` leaves the number of live tensors unchanged apart from what it returns and disposes. */
export async function tensorsLeaked(fn: () => unknown | Promise<unknown>): Promise<number> {
  const before = tf.memory().numTensors;
  await fn();
  return tf.memory().numTensors - before;
}
