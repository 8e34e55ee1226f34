/**
 * The Tile fix (block copies on the wasm heap) against the cpu backend and the stock wasm kernel:
 * exact equality (a copy changes no value), on 1-D to 5-D inputs, float32 and int32, and through
 * the gradient of BatchNormalization, whose [1, 1, 1, C] statistics are what it is tiled for.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { gradsOfProjection, leaks, maxRelativeError, NO_LEAK, onStockWasm, seeded, TOL, valuesOn, wasmVsCpu } from './support.js';

describe('Tile fix: tf.tile on wasm equals cpu', () => {
  before(async () => {
    await useTestBackend('wasm');
  });

  const CASES: Array<[number[], number[]]> = [
    [[1, 1, 1, 5], [3, 4, 2, 1]],
    [[3], [4]],
    [[2, 3], [1, 1]],
    [[2, 1, 3], [1, 5, 2]],
    [[2, 2, 1, 2, 3], [2, 1, 3, 1, 2]],
    [[3, 2], [0, 2]],
  ];
  for (const [shape, reps] of CASES) {
    it(`[${shape}] × reps [${reps}] (float32 and int32): equal to cpu and to the stock kernel`, async () => {
      const x = seeded(shape.length * 10 + reps[0]!, shape);
      const f = () => [tf.tile(x(), reps), tf.tile(tf.cast(tf.mul(x(), 100), 'int32'), reps).toFloat()];
      const [cpuF, cpuI] = await valuesOn('cpu', f);
      const [wasmF, wasmI] = await valuesOn('wasm', f);
      assert.deepEqual(Array.from(wasmF!), Array.from(cpuF!));
      assert.deepEqual(Array.from(wasmI!), Array.from(cpuI!));
      const [stockF, stockI] = await onStockWasm(f);
      assert.deepEqual(Array.from(wasmF!), Array.from(stockF!));
      assert.deepEqual(Array.from(wasmI!), Array.from(stockI!));
    });
  }

  it('gradients of BatchNormalization (inference statistics) match cpu and the stock kernels', async () => {
    const f = (x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) =>
      tf.batchNorm(x as tf.Tensor4D, mean as tf.Tensor1D, variance.abs().add(0.5) as tf.Tensor1D, offset as tf.Tensor1D, scale as tf.Tensor1D, 1e-3);
    const compute = gradsOfProjection((x, m, v, s, o) => f(x!, m!, v!, s!, o!), [
      seeded(1, [3, 5, 4, 6]), seeded(2, [6]), seeded(3, [6]), seeded(4, [6]), seeded(5, [6]),
    ]);
    const err = await wasmVsCpu(compute);
    assert.ok(err <= TOL, `relative error ${err}`);
    const fixed = await valuesOn('wasm', compute);
    const stock = await onStockWasm(compute);
    fixed.forEach((g, i) => assert.ok(maxRelativeError(g, stock[i]!) <= TOL, `output ${i}: fix vs stock ${maxRelativeError(g, stock[i]!)}`));
  });

  it('leaks no tensors or backend data', async () => {
    const x = seeded(9, [1, 1, 1, 4])();
    const step = () => tf.tidy(() => tf.tile(x, [2, 3, 3, 1]).dataSync());
    step();
    assert.deepEqual(await leaks(step), NO_LEAK);
    x.dispose();
  });
});
