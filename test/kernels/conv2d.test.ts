import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { installKernelFixes } from '../../src/backend/kernels/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { gradsOfProjection, leaks, NO_LEAK, seeded, TOL, valuesOn, wasmVsCpu, maxRelativeError } from './support.js';

const settings: Array<[number, 'same' | 'valid']> = [[1, 'same'], [1, 'valid'], [2, 'same'], [2, 'valid']];

describe('Conv2DBackpropFilter / Conv2DBackpropInput fixes: conv2d gradients on wasm match cpu', () => {
  before(async () => {
    await useTestBackend('wasm');
    installKernelFixes();
  });

  for (const [stride, pad] of settings) {
    it(`conv2d input and weight gradients, 3x3 kernel, stride ${stride}, ${pad}`, async () => {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad);
      const err = await wasmVsCpu(gradsOfProjection((x, w) => f(x!, w!), [seeded(1, [3, 11, 10, 4]), seeded(2, [3, 3, 4, 5])]));
      assert.ok(err <= TOL, `relative error ${err}`);
    });
  }

  it('non-square 2x3 kernel, 1x1 kernel, and explicit padding', async () => {
    const cases: Array<[number[], number | 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]]]> = [
      [[2, 3, 3, 6], 'same'],
      [[1, 1, 3, 6], 'valid'],
      [[3, 3, 3, 2], [[0, 0], [1, 2], [2, 0], [0, 0]]],
    ];
    for (const [filterShape, pad] of cases) {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, [1, 2], pad);
      const err = await wasmVsCpu(gradsOfProjection((x, w) => f(x!, w!), [seeded(3, [2, 9, 8, 3]), seeded(4, filterShape)]));
      assert.ok(err <= TOL, `filter ${filterShape} pad ${JSON.stringify(pad)}: relative error ${err}`);
    }
  });

  it('conv2dTranspose and conv1d gradients', async () => {
    const transposed = (x: tf.Tensor, w: tf.Tensor) => tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [2, 9, 9, 3], 2, 'same');
    let err = await wasmVsCpu(gradsOfProjection((x, w) => transposed(x!, w!), [seeded(5, [2, 5, 5, 4]), seeded(6, [3, 3, 3, 4])]));
    assert.ok(err <= TOL, `conv2dTranspose: relative error ${err}`);
    const conv1d = (x: tf.Tensor, w: tf.Tensor) => tf.conv1d(x as tf.Tensor3D, w as tf.Tensor3D, 2, 'same');
    err = await wasmVsCpu(gradsOfProjection((x, w) => conv1d(x!, w!), [seeded(7, [2, 17, 3]), seeded(8, [5, 3, 4])]));
    assert.ok(err <= TOL, `conv1d: relative error ${err}`);
  });

  // tfjs refuses gradients of dilated conv2d on every backend, so the kernels are called directly
  // and compared with the cpu kernels on the dense filter that has zeros between the taps.
  for (const pad of ['same', 'valid'] as const) {
    it(`dilation 2 (${pad}): both kernels, called directly, match the dense-filter reference`, async () => {
      const xShape: [number, number, number, number] = [2, 10, 9, 3];
      const w = tf.tidy(() => seeded(9, [3, 2, 3, 4])().arraySync() as number[][][][]);
      const dense = tf.tidy(() => {
        const d = tf.buffer([5, 3, 3, 4]);
        w.forEach((row, r) => row.forEach((col, c) => col.forEach((ci, i) => ci.forEach((v, o) => d.set(v, 2 * r, 2 * c, i, o)))));
        return d.toTensor();
      });
      const denseValues = dense.dataSync().slice();
      dense.dispose();
      const x = seeded(10, xShape);
      const y = await valuesOn('wasm', () => tf.conv2d(x() as tf.Tensor4D, tf.tensor4d(w), 1, pad, 'NHWC', 2));
      const outShape = tf.tidy(() => tf.conv2d(x() as tf.Tensor4D, tf.tensor4d(w), 1, pad, 'NHWC', 2).shape);
      const dy = seeded(11, outShape);
      const attrs = { strides: 1, pad, dataFormat: 'NHWC', dilations: 2 };
      const [dW, dX] = await valuesOn('wasm', () => [
        tf.engine().runKernel('Conv2DBackpropFilter', { x: x(), dy: dy() }, { ...attrs, filterShape: [3, 2, 3, 4] }) as tf.Tensor,
        tf.engine().runKernel('Conv2DBackpropInput', { dy: dy(), filter: tf.tensor4d(w) }, { ...attrs, inputShape: xShape }) as tf.Tensor,
      ]);
      const [dWDense, dXRef, yRef] = await valuesOn('cpu', () => {
        const filter = tf.tensor(denseValues, [5, 3, 3, 4]) as tf.Tensor4D;
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad), dy())))([x(), filter]);
        return [gw!, gx!, tf.conv2d(x() as tf.Tensor4D, filter, 1, pad)];
      });
      assert.ok(maxRelativeError(y[0]!, yRef!) <= TOL, 'forward dilated conv (the reference is the right operator)');
      const dWRef = new Float32Array(3 * 2 * 3 * 4);
      for (let r = 0; r < 3; r++) for (let c = 0; c < 2; c++) dWRef.set(dWDense!.subarray(((2 * r) * 3 + 2 * c) * 12, ((2 * r) * 3 + 2 * c + 1) * 12), (r * 2 + c) * 12);
      assert.ok(maxRelativeError(dW!, dWRef) <= TOL, `filter gradient: ${maxRelativeError(dW!, dWRef)}`);
      assert.ok(maxRelativeError(dX!, dXRef!) <= TOL, `input gradient: ${maxRelativeError(dX!, dXRef!)}`);
    });
  }

  it('Conv2DBackpropFilter rejects NCHW with an InvalidArgumentError naming the kernel', () => {
    const x = tf.zeros([1, 2, 5, 5]);
    const dy = tf.zeros([1, 3, 5, 5]);
    assert.throws(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] }),
      (e: unknown) => e instanceof InvalidArgumentError && /Conv2DBackpropFilter/.test(e.message) && /NHWC/.test(e.message),
    );
    tf.dispose([x, dy]);
  });

  it('Conv2DBackpropInput leaves NCHW to the stock kernel', async () => {
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NCHW', inputShape: [2, 3, 6, 5] };
    const err = await wasmVsCpu(() => tf.engine().runKernel('Conv2DBackpropInput', { dy: seeded(12, [2, 4, 6, 5])(), filter: seeded(13, [3, 3, 3, 4])() }, attrs) as tf.Tensor);
    assert.ok(err <= TOL, `relative error ${err}`);
  });

  it('leaks no tensors or backend data', async () => {
    const x = seeded(14, [2, 8, 8, 3])();
    const w = seeded(15, [3, 3, 3, 4])();
    const step = () =>
      tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')))([x, w]).map((g) => g.dataSync()));
    step();
    assert.deepEqual(await leaks(step), NO_LEAK);
    tf.dispose([x, w]);
  });
});
