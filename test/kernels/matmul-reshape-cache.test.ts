/**
 * tfjs-wasm caches its XNNPACK matmul operator (with B packed inside) under B's heap id, which a
 * reshape shares: one tensor used as B with two shapes gave wrong numbers and then corrupted the
 * heap. With the kernel fixes the second product is right (1e-5) and the heap stays sound.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { installKernelFixes } from '../../src/backend/kernels/index.js';
import { useTestBackend } from '../support/backend.js';
import { setSimdKernelsEnabled } from '../../src/backend/kernels/simd/index.js';
import { relativeError } from '../support/reference.js';

before(async () => {
  await useTestBackend('wasm');
  installKernelFixes();
});

// Single products run in nngeometry's SIMD GEMM where WebAssembly SIMD is available: the XNNPACK
// route (and its operator cache) is tested with SIMD off, the SIMD route with it on.
for (const simd of [false, true]) test(`the same tensor used as B with two shapes gives the right products (SIMD ${simd ? 'on' : 'off'})`, () => {
  setSimdKernelsEnabled(simd);
  const v = tf.randomNormal([42], 0, 1, 'float32', 9);
  const a1 = tf.randomNormal([3, 6], 0, 1, 'float32', 1);
  const a2 = tf.randomNormal([3, 42], 0, 1, 'float32', 2);
  for (let round = 0; round < 3; round++) {
    const p1 = tf.matMul(a1, v.reshape([6, 7]));
    const r1 = tf.sum(tf.mul(a1.reshape([3, 6, 1]), v.reshape([1, 6, 7])), 1);
    const p2 = tf.matMul(a2, v.reshape([42, 1]));
    const r2 = tf.sum(tf.mul(a2, v.reshape([1, 42])), 1, true);
    assert.ok(relativeError(p1.dataSync(), r1.dataSync()) < 1e-5, `round ${round}: first shape`);
    assert.ok(relativeError(p2.dataSync(), r2.dataSync()) < 1e-5, `round ${round}: second shape`);
    tf.dispose([p1, r1, p2, r2]);
  }
  tf.dispose([v, a1, a2]);
  setSimdKernelsEnabled(true);
});
