/**
 * The Slice fix (block copies on the wasm heap) against the cpu backend and the stock wasm
 * kernel: exact equality (a copy changes no value) on 1-D to 5-D inputs, contiguous ranges,
 * leading rows with whole inner axes, offsets on every axis, size −1, float32, int32 and bool,
 * empty slices, and through a gradient (slice's gradient pads; the forward of a layer split).
 * A run length computed over one axis too many or too few, a begin offset dropped on an inner
 * axis, or an output written at the wrong place changes values here.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { gradsOfProjection, leaks, NO_LEAK, onStockWasm, seeded, TOL, valuesOn, wasmVsCpu } from './support.js';

describe('Slice fix: tf.slice on wasm equals cpu', () => {
  before(async () => {
    await useTestBackend('wasm');
  });

  const CASES: Array<[number[], number[], number[]]> = [
    [[37], [11], [20]],
    [[37], [0], [-1]],
    [[6, 4, 3], [2, 0, 0], [3, -1, -1]],
    [[5, 7], [1, 2], [3, 4]],
    [[4, 3, 5], [1, 1, 2], [2, 2, -1]],
    [[4, 3, 5], [0, 1, 0], [4, 2, 5]],
    [[2, 3, 4, 5, 3], [1, 0, 1, 2, 0], [1, 3, 2, 3, 3]],
    [[2, 3, 4, 5, 3], [0, 1, 0, 0, 1], [2, 2, 4, 5, 2]],
    [[3, 4], [0, 3], [3, 1]],
    [[3, 4], [1, 0], [0, 4]],
  ];
  for (const [shape, begin, size] of CASES) {
    it(`[${shape}] from [${begin}] size [${size}] (float32, int32, bool): equal to cpu and to the stock kernel`, async () => {
      const x = seeded(shape.length * 10 + begin[0]!, shape);
      const f = () => [
        tf.slice(x(), begin, size),
        tf.slice(tf.cast(tf.mul(x(), 100), 'int32'), begin, size).toFloat(),
        tf.slice(tf.greater(x(), 0), begin, size).toFloat(),
      ];
      const cpu = await valuesOn('cpu', f);
      const wasm = await valuesOn('wasm', f);
      const stock = await onStockWasm(f);
      cpu.forEach((c, i) => {
        assert.deepEqual(Array.from(wasm[i]!), Array.from(c), `output ${i} against cpu`);
        assert.deepEqual(Array.from(wasm[i]!), Array.from(stock[i]!), `output ${i} against the stock kernel`);
      });
    });
  }

  it('gradients through slices of a matrix (rows and an inner window) match cpu', async () => {
    const compute = gradsOfProjection((x) => tf.concat([tf.slice(x!, [1, 0], [2, -1]).sum(0), tf.slice(x!, [0, 2], [4, 3]).sum(1)]), [seeded(3, [4, 7])]);
    const err = await wasmVsCpu(compute);
    assert.ok(err <= TOL, `relative error ${err}`);
  });

  it('a slice past the end of an axis is refused as on cpu, naming the axis, and leaves nothing behind', async () => {
    // Without the check the block copies read past x on the heap and return whatever lies there.
    const x = seeded(11, [3, 4])();
    for (const [begin, size, axis] of [[[2, 0], [2, 4], 0], [[0, 3], [3, 2], 1], [[0, 0], [4, -1], 0]] as Array<[number[], number[], number]>) {
      const before = tf.memory().numTensors;
      assert.throws(() => tf.slice(x, begin, size), new RegExp(`begin\\[${axis}\\] \\+ size\\[${axis}\\] .* would overflow input\\.shape\\[${axis}\\]`), `[${begin}] size [${size}]`);
      assert.equal(tf.memory().numTensors, before, `[${begin}] size [${size}]: tensors left`);
    }
    x.dispose();
  });

  it('leaks no tensors or backend data', async () => {
    const x = seeded(9, [5, 6, 7])();
    const step = () => tf.tidy(() => [tf.slice(x, [1, 2, 3], [2, 3, 4]).dataSync(), tf.slice(x, [2], [2]).dataSync()]);
    step();
    assert.deepEqual(await leaks(step), NO_LEAK);
    x.dispose();
  });
});
