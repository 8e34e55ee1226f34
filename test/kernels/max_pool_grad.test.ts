import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { installKernelFixes } from '../../src/backend/kernels/index.js';
import { gradsOfProjection, leaks, NO_LEAK, randomValues, seeded, TOL, wasmVsCpu } from './support.js';

describe('MaxPoolGrad fix', () => {
  before(async () => {
    await useTestBackend('wasm');
    installKernelFixes();
  });

  it('sends the gradient to the maximum of a window whose values are all negative', () => {
    // Two 2x2 windows: the stock kernel gets the second one (maximum -0.5) wrong.
    const x = tf.tensor4d([1, 2, -0.5, -2, 3, 4, -3, -4], [1, 2, 4, 1]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid')))(x);
    assert.deepEqual(Array.from(g.dataSync()), [0, 0, 1, 0, 0, 1, 0, 0]);
    tf.dispose([x, g]);
  });

  const settings: Array<[number, number, 'same' | 'valid']> = [[2, 2, 'valid'], [3, 1, 'same'], [3, 2, 'same'], [2, 1, 'valid']];
  for (const [size, stride, pad] of settings) {
    it(`matches cpu with negative inputs: window ${size} stride ${stride} ${pad}`, async () => {
      const values = randomValues(size * 10 + stride, 2 * 9 * 8 * 3).map((v) => v - 0.7);
      const x = () => tf.tensor(values, [2, 9, 8, 3]);
      const err = await wasmVsCpu(gradsOfProjection((v) => tf.maxPool(v as tf.Tensor4D, size, stride, pad), [x]));
      assert.ok(err <= TOL, `relative error ${err}`);
    });
  }

  it('resolves ties like the cpu backend (first maximum in row-major window order)', async () => {
    const values = randomValues(7, 2 * 6 * 6 * 2).map((v) => Math.round(v * 2) / 2);
    const x = () => tf.tensor(values, [2, 6, 6, 2]);
    const err = await wasmVsCpu(gradsOfProjection((v) => tf.maxPool(v as tf.Tensor4D, 3, 1, 'same'), [x]));
    // A tie sent to another position would show as an O(1) error; float32 summation order, 1e-7.
    assert.ok(err <= 1e-6, `relative error ${err}`);
  });

  it('agrees with central finite differences', () => {
    const shape = [1, 6, 5, 2];
    const base = randomValues(11, 60).map((v) => v - 0.5);
    const r = tf.tensor(randomValues(12, 1 * 3 * 3 * 2), [1, 3, 3, 2]);
    const loss = (v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 2, 2, 'same'), r));
    const x = tf.tensor(base, shape);
    const grad = tf.grad(loss)(x).dataSync();
    const eps = 1e-3;
    for (let i = 0; i < base.length; i++) {
      const plus = base.slice();
      const minus = base.slice();
      plus[i]! += eps;
      minus[i]! -= eps;
      const fd = tf.tidy(() => (loss(tf.tensor(plus, shape)).dataSync()[0]! - loss(tf.tensor(minus, shape)).dataSync()[0]!) / (2 * eps));
      assert.ok(Math.abs(fd - grad[i]!) < 1e-2, `coordinate ${i}: finite difference ${fd}, gradient ${grad[i]}`);
    }
    tf.dispose([r, x]);
  });

  it('leaks no tensors or backend data', async () => {
    const x = seeded(3, [2, 8, 8, 3])();
    const step = () => tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.maxPool(v as tf.Tensor4D, 2, 2, 'same')))(x).dataSync());
    step();
    assert.deepEqual(await leaks(step), NO_LEAK);
    x.dispose();
  });
});
