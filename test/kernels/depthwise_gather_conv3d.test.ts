import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { installKernelFixes } from '../../src/backend/kernels/index.js';
import { gradsOfProjection, leaks, maxRelativeError, NO_LEAK, seeded, TOL, valuesOn, wasmVsCpu } from './support.js';

describe('kernels missing or wrong on stock wasm: depthwise conv2d, gather / unsortedSegmentSum, conv3d', () => {
  before(async () => {
    await useTestBackend('wasm');
    installKernelFixes();
  });

  const settings: Array<[number, 'same' | 'valid']> = [[1, 'same'], [2, 'valid'], [2, 'same']];
  for (const [stride, pad] of settings) {
    it(`depthwiseConv2d input and filter gradients (multiplier 2), stride ${stride}, ${pad}`, async () => {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad);
      const err = await wasmVsCpu(gradsOfProjection((x, w) => f(x!, w!), [seeded(1, [2, 9, 8, 3]), seeded(2, [3, 3, 3, 2])]));
      assert.ok(err <= TOL, `relative error ${err}`);
    });
  }

  it('separableConv2d gradients (depthwise then pointwise)', async () => {
    const f = (x: tf.Tensor, d: tf.Tensor, p: tf.Tensor) =>
      tf.separableConv2d(x as tf.Tensor4D, d as tf.Tensor4D, p as tf.Tensor4D, 1, 'same');
    const err = await wasmVsCpu(gradsOfProjection((x, d, p) => f(x!, d!, p!), [seeded(3, [2, 7, 7, 3]), seeded(4, [3, 3, 3, 1]), seeded(5, [1, 1, 3, 4])]));
    assert.ok(err <= TOL, `relative error ${err}`);
  });

  it('depthwise kernels honour dilations when called directly (tfjs refuses dilated depthwise gradients)', async () => {
    // Dilation 2 with a 2x2 filter is a dense 3x3 filter with zeros between the taps.
    const xShape = [1, 7, 6, 2];
    const taps: Array<[number, number]> = [[0, 0], [0, 2], [2, 0], [2, 2]];
    const wValues = new Float32Array([1, -2, 0.5, 3, -1, 2, 0.25, -0.5]); // [2, 2, 2, 1]
    const dense = new Float32Array(3 * 3 * 2);
    taps.forEach(([r, c], tap) => dense.set(wValues.subarray(tap * 2, tap * 2 + 2), (r * 3 + c) * 2));
    const x = seeded(6, xShape);
    const dy = seeded(7, [1, 7, 6, 2]);
    const run = (filter: tf.Tensor, dilations: number) => () => [
      tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: dy(), filter },
        { strides: 1, pad: 'same', dilations, inputShape: xShape }) as tf.Tensor,
      tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: x(), dy: dy() },
        { strides: 1, pad: 'same', dilations, filterShape: filter.shape }) as tf.Tensor,
    ];
    const [dx, dw] = await valuesOn('wasm', () => run(tf.tensor4d(wValues, [2, 2, 2, 1]), 2)());
    const [dxRef, dwDense] = await valuesOn('cpu', () => run(tf.tensor4d(dense, [3, 3, 2, 1]), 1)());
    const dwRef = new Float32Array(8);
    taps.forEach(([r, c], tap) => dwRef.set(dwDense!.subarray((r * 3 + c) * 2, (r * 3 + c) * 2 + 2), tap * 2));
    assert.ok(maxRelativeError(dx!, dxRef!) <= TOL, `input gradient ${maxRelativeError(dx!, dxRef!)}`);
    assert.ok(maxRelativeError(dw!, dwRef) <= TOL, `filter gradient ${maxRelativeError(dw!, dwRef)}`);
  });

  it('gather gradient (embedding lookup) through unsortedSegmentSum', async () => {
    const ids = [3, 0, 3, 7, 1, 3, 9, 0];
    const f = (table: tf.Tensor) => tf.gather(table, tf.tensor1d(ids, 'int32'));
    const err = await wasmVsCpu(gradsOfProjection((t) => f(t!), [seeded(8, [10, 5])]));
    assert.ok(err <= TOL, `relative error ${err}`);
    const axis1 = (t: tf.Tensor) => tf.gather(t, tf.tensor1d([2, 2, 0], 'int32'), 1);
    const err1 = await wasmVsCpu(gradsOfProjection((t) => axis1(t!), [seeded(9, [4, 3, 2])]));
    assert.ok(err1 <= TOL, `axis 1: relative error ${err1}`);
  });

  it('unsortedSegmentSum op, including ids of empty segments', async () => {
    const err = await wasmVsCpu(() => tf.unsortedSegmentSum(seeded(10, [6, 3])(), tf.tensor1d([4, 0, 4, 2, 0, 4], 'int32'), 6));
    assert.ok(err <= TOL, `relative error ${err}`);
  });

  for (const [stride, pad] of [[1, 'same'], [2, 'valid']] as const) {
    it(`conv3d input and filter gradients, stride ${stride}, ${pad} (stock wasm is wrong)`, async () => {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, stride, pad);
      const err = await wasmVsCpu(gradsOfProjection((x, w) => f(x!, w!), [seeded(11, [2, 5, 6, 4, 3]), seeded(12, [2, 3, 2, 3, 4])]));
      assert.ok(err <= TOL, `relative error ${err}`);
    });
  }

  it('leaks no tensors or backend data (wasm or cpu)', async () => {
    const x = seeded(13, [2, 6, 6, 3])();
    const w = seeded(14, [3, 3, 3, 2])();
    const table = seeded(15, [10, 4])();
    const x3 = seeded(16, [1, 4, 4, 4, 2])();
    const w3 = seeded(17, [2, 2, 2, 2, 3])();
    const step = () =>
      tf.tidy(() => {
        const g1 = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, w]);
        const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor1d([1, 1, 4], 'int32'))))(table);
        const g3 = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, 1, 'same')))([x3, w3]);
        return [...g1, g2, ...g3].map((g) => g.dataSync());
      });
    step();
    assert.deepEqual(await leaks(step), NO_LEAK);
    tf.dispose([x, w, table, x3, w3]);
  });
});
