import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { installKernelFixes } from '../../src/backend/kernels/index.js';
import { gradsOfProjection, leaks, NO_LEAK, seeded, TOL, wasmVsCpu } from './support.js';

describe('BatchMatMul fix: matMul and its gradients on wasm match cpu', () => {
  before(async () => {
    await useTestBackend('wasm');
    installKernelFixes();
  });

  for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    it(`2-D, transposeA=${transposeA} transposeB=${transposeB}`, async () => {
      const a = seeded(1, transposeA ? [13, 7] : [7, 13]);
      const b = seeded(2, transposeB ? [5, 13] : [13, 5]);
      const err = await wasmVsCpu(gradsOfProjection((x, y) => tf.matMul(x!, y!, transposeA, transposeB), [a, b]));
      assert.ok(err <= TOL, `relative error ${err}`);
    });
    it(`batched 3-D, transposeA=${transposeA} transposeB=${transposeB}`, async () => {
      const a = seeded(3, transposeA ? [3, 6, 4] : [3, 4, 6]);
      const b = seeded(4, transposeB ? [3, 5, 6] : [3, 6, 5]);
      const err = await wasmVsCpu(gradsOfProjection((x, y) => tf.matMul(x!, y!, transposeA, transposeB), [a, b]));
      assert.ok(err <= TOL, `relative error ${err}`);
    });
  }

  it('a Dense layer x·W + b with relu (fused matMul) and its gradients', async () => {
    const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b, activation: 'relu' });
    const err = await wasmVsCpu(gradsOfProjection((x, w, b) => f(x!, w!, b!), [seeded(5, [16, 9]), seeded(6, [9, 4]), seeded(7, [4])]));
    assert.ok(err <= TOL, `relative error ${err}`);
  });

  it('fused matMul with bias on a batch of matrices and transpose flags (stock wasm adds the bias wrongly)', async () => {
    const f = () =>
      tf.fused.matMul({ a: seeded(8, [3, 6, 4])(), b: seeded(9, [3, 5, 6])(), transposeA: true, transposeB: true, bias: seeded(10, [5])() });
    const err = await wasmVsCpu(f);
    assert.ok(err <= TOL, `relative error ${err}`);
  });

  it('leaks no tensors or backend data', async () => {
    const a = tf.randomNormal([20, 30]);
    const b = tf.randomNormal([20, 10]);
    const step = () => tf.tidy(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, true, false)))([a, b]).map((g) => g.dataSync()));
    step();
    assert.deepEqual(await leaks(step), NO_LEAK);
    tf.dispose([a, b]);
  });
});
