/**
 * nngeometry's WebAssembly SIMD kernels (wasm/simd_kernels.c): each compared with the cpu backend
 * on seeded inputs in [-1, 1], with the geometries that cross the kernels' chunk and tile edges;
 * the plain fallbacks with SIMD turned off; leaks of tensors, wasm backend data and the module's
 * own memory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { installKernelFixes } from '../../src/backend/kernels/index.js';
import { SELF_TEST_TOLERANCE, selfTestKernel } from '../../src/backend/kernels/self_test.js';
import { selfTestSimdKernels, withoutSimd } from '../../src/backend/kernels/self_test_simd.js';
import { cpuBackend } from '../../src/backend/kernels/wasm_backend.js';
import { conv2dGeometry } from '../../src/backend/kernels/conv_geometry.js';
import {
  im2colSimd,
  imagePatchesSimd,
  setSimdKernelsEnabled,
  SIMD_MEMORY_RETAIN_BYTES,
  simdKernels,
  simdKernelsInfo,
  symmetricRankUpdate,
  webAssemblySimdSupported,
} from '../../src/backend/kernels/simd/index.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { imagePatches } from '../../src/layers/conv-geometry.js';
import { gradsOfProjection, leaks, maxRelativeError, NO_LEAK, seeded, TOL, valuesOn, wasmVsCpu } from './support.js';

/** Awaits `fn` with the SIMD kernels turned off (withoutSimd would restore them before an await). */
async function withoutSimdAsync<T>(fn: () => Promise<T>): Promise<T> {
  setSimdKernelsEnabled(false);
  try {
    return await fn();
  } finally {
    setSimdKernelsEnabled(true);
  }
}

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
// Past one chunk of output pixels (up to 1024 rows), patch lengths past one 4-row / 8-column tile,
// channel counts that are not multiples of 4 or 8, strides per axis, padding wider than the filter.
const CONVS: Array<{ x: number[]; w: number[]; stride: number | [number, number]; pad: Pad }> = [
  { x: [3, 30, 29, 3], w: [3, 3, 3, 5], stride: 1, pad: 'same' },
  { x: [2, 13, 11, 40], w: [3, 3, 40, 9], stride: 2, pad: 'same' },
  { x: [2, 12, 12, 7], w: [5, 5, 7, 17], stride: [2, 1], pad: 'valid' },
  { x: [1, 9, 10, 1], w: [2, 3, 1, 16], stride: 1, pad: [[0, 0], [0, 3], [3, 1], [0, 0]] },
];

describe('WebAssembly SIMD kernels', () => {
  before(async () => {
    await useTestBackend('wasm');
    installKernelFixes();
  });
  after(() => setSimdKernelsEnabled(true));

  it('are available in Node 20 (SIMD128) and loaded from the embedded module', () => {
    assert.equal(webAssemblySimdSupported(), true);
    assert.ok(simdKernels() != null);
    const info = simdKernelsInfo();
    assert.equal(info.available, true, info.reason);
    assert.equal(info.source, 'embedded');
  });

  it('im2col (both layouts), col2im, GEMM and XᵀX match the cpu backend', () => {
    const results = selfTestSimdKernels(cpuBackend(), 123, maxRelativeError, SELF_TEST_TOLERANCE);
    assert.equal(results.length, 5);
    for (const r of results) assert.ok(r.ok, `${r.kernel}: ${r.maxRelError} ${r.error ?? ''}`);
  });

  for (const [i, c] of CONVS.entries()) {
    it(`conv2d gradients through the SIMD kernels match cpu: x [${c.x}], filter [${c.w}], stride ${c.stride}, pad ${JSON.stringify(c.pad)}`, async () => {
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad);
      const compute = gradsOfProjection((x, w) => f(x!, w!), [seeded(40 + i, c.x), seeded(50 + i, c.w)], 60 + i);
      const err = await wasmVsCpu(compute);
      assert.ok(err <= TOL, `with SIMD: relative error ${err}`);
      const plain = await withoutSimdAsync(() => valuesOn('wasm', compute));
      const simd = await valuesOn('wasm', compute);
      for (let k = 0; k < simd.length; k++) assert.ok(maxRelativeError(simd[k]!, plain[k]!) <= TOL, `output ${k}: SIMD vs plain route`);
    });
  }

  for (const [shape, kernel, strides, dilation, padding] of [
    [[3, 9, 8, 5], [3, 3], [1, 1], [1, 1], 'same'],
    [[2, 9, 8, 5], [3, 2], [2, 3], [1, 1], 'same'],
    [[2, 11, 10, 3], [3, 3], [2, 2], [1, 1], 'valid'],
    [[2, 11, 10, 3], [2, 3], [1, 1], [2, 3], 'valid'],
    [[1, 12, 12, 16], [3, 3], [1, 1], [2, 2], 'same'],
  ] as Array<[[number, number, number, number], [number, number], [number, number], [number, number], 'same' | 'valid']>) {
    it(`image patches by the SIMD im2col = the identity-kernel convolution: x [${shape}], kernel ${kernel}, strides ${strides}, dilation ${dilation}, ${padding}`, () => {
      const x = seeded(101, shape);
      const geometry = { strides, dilation, padding };
      const input = x() as tf.Tensor4D;
      const direct = imagePatchesSimd(input, kernel, strides, dilation, padding);
      assert.ok(direct !== null, 'the SIMD route is taken on wasm');
      tf.dispose([direct, input]);
      const [viaSimd, viaConv] = tf.tidy(() => {
        const xs = x() as tf.Tensor4D;
        return [imagePatches(xs, kernel, geometry).arraySync(), imagePatches(xs, kernel, geometry, true).arraySync()];
      });
      assert.ok(maxRelativeError(Float32Array.from((viaSimd as number[][][]).flat(2)), Float32Array.from((viaConv as number[][][]).flat(2))) <= TOL);
      assert.deepEqual([(viaSimd as number[][][]).length, (viaSimd as number[][][])[0]!.length, (viaSimd as number[][][])[0]![0]!.length],
        [(viaConv as number[][][]).length, (viaConv as number[][][])[0]!.length, (viaConv as number[][][])[0]![0]!.length]);
    });
  }

  for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    it(`matMul through the SIMD GEMM (past one 256-deep block and one 64-row block), transposeA=${transposeA} transposeB=${transposeB}`, async () => {
      const [m, k, n] = [70, 300, 21];
      const a = seeded(90, transposeA ? [k, m] : [m, k]);
      const b = seeded(91, transposeB ? [n, k] : [k, n]);
      const compute = gradsOfProjection((x, y) => tf.matMul(x!, y!, transposeA, transposeB), [a, b], 92);
      assert.ok((await wasmVsCpu(compute)) <= TOL);
      // A batch of one (rank 3 and rank 2 mixed): the output keeps the batch dimension.
      const batched = () => tf.matMul(a().reshape([1, ...a().shape]), b(), transposeA, transposeB);
      const [viaSimd] = await valuesOn('wasm', batched);
      const [ref] = await valuesOn('cpu', batched);
      assert.ok(maxRelativeError(viaSimd!, ref!) <= TOL);
      assert.deepEqual(tf.tidy(() => batched().shape), [1, m, n]);
    });
    it(`batched matMul through the SIMD GEMM (one product per batch index; A or B shared), transposeA=${transposeA} transposeB=${transposeB}`, async () => {
      const [batch, m, k, n] = [5, 11, 300, 19];
      const a = seeded(93, [batch, ...(transposeA ? [k, m] : [m, k])]);
      const b = seeded(94, [batch, ...(transposeB ? [n, k] : [k, n])]);
      const a1 = seeded(95, [1, ...(transposeA ? [k, m] : [m, k])]);
      const b1 = seeded(96, transposeB ? [n, k] : [k, n]);
      for (const [name, compute] of [
        ['equal batches', gradsOfProjection((x, y) => tf.matMul(x!, y!, transposeA, transposeB), [a, b], 97)],
        // Forward only when broadcasting: tfjs's own BatchMatMul gradient fails on a broadcast [1, …] input.
        ['A shared', () => [tf.matMul(a1(), b(), transposeA, transposeB)]],
        ['B shared (rank 2)', () => [tf.matMul(a(), b1(), transposeA, transposeB)]],
      ] as const) {
        const simd = await valuesOn('wasm', compute);
        const plain = await withoutSimdAsync(() => valuesOn('wasm', compute));
        const ref = await valuesOn('cpu', compute);
        for (let o = 0; o < ref.length; o++) {
          assert.ok(maxRelativeError(simd[o]!, ref[o]!) <= TOL, `${name}, output ${o}: SIMD vs cpu`);
          assert.ok(maxRelativeError(simd[o]!, plain[o]!) <= TOL, `${name}, output ${o}: SIMD vs the stock route`);
        }
      }
      assert.deepEqual(tf.tidy(() => tf.matMul(a(), b(), transposeA, transposeB).shape), [batch, m, n]);
    });
  }

  it('BatchMatMul and the conv gradient kernels without SIMD (the fallback routes) pass their self-test', () => {
    for (const kernel of ['BatchMatMul', 'Conv2DBackpropFilter', 'Conv2DBackpropInput']) {
      const r = withoutSimd(() => selfTestKernel(kernel));
      assert.ok(r.ok, `${kernel}: ${r.maxRelError} ${r.error ?? ''}`);
    }
  });

  it('with SIMD turned off, simdKernels() is null and the kernels still run', async () => {
    setSimdKernelsEnabled(false);
    try {
      assert.equal(simdKernels(), null);
      assert.equal(simdKernelsInfo().enabled, false);
      const err = await wasmVsCpu(gradsOfProjection((x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), [seeded(1, [2, 9, 8, 3]), seeded(2, [3, 3, 3, 4])]));
      assert.ok(err <= TOL, `relative error ${err}`);
    } finally {
      setSimdKernelsEnabled(true);
    }
    assert.ok(simdKernels() != null);
  });

  it('conv gradients leak no tensors, no backend data, and do not grow the module memory once warm', async () => {
    const x = seeded(14, [4, 20, 20, 6])();
    const w = seeded(15, [3, 3, 6, 10])();
    const step = () =>
      tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')))([x, w]).map((g) => g.dataSync()));
    step();
    const memory = simdKernelsInfo().memoryBytes;
    assert.deepEqual(await leaks(step), NO_LEAK);
    for (let i = 0; i < 3; i++) step();
    assert.equal(simdKernelsInfo().memoryBytes, memory, 'the module memory grew on a repeated call');
    tf.dispose([x, w]);
  });

  it('gives back module memory past SIMD_MEMORY_RETAIN_BYTES at the end of a call', () => {
    const simd = simdKernels()!;
    const xShape = [16, 64, 64, 32];
    const geom = conv2dGeometry('test', xShape, [3, 3, 32, 1], { strides: 1, pad: 'same' });
    const patches = new Float32Array(16 * 64 * 64 * 288); // 75 MB: more than is retained
    im2colSimd(simd, new Float32Array(16 * 64 * 64 * 32).fill(-1), geom, 'MK', patches);
    assert.equal(patches[patches.length - 1], 0, 'bottom-right tap of the last pixel reads padding');
    assert.equal(patches[0], 0);
    assert.equal(patches[4 * 32], -1, 'centre tap of the first pixel');
    assert.ok(simdKernelsInfo().memoryBytes <= SIMD_MEMORY_RETAIN_BYTES, `${simdKernelsInfo().memoryBytes} bytes retained`);
  });
});

describe('symmetricRankUpdate (XᵀX)', () => {
  before(async () => {
    await useTestBackend('wasm');
  });

  const SHAPES: Array<[number, number]> = [[1, 1], [7, 5], [300, 21], [513, 9], [260, 33], [3, 40], [0, 4], [40, 601], [300, 530]]; // the last two: past one and two 256-column blocks
  for (const [m, n] of SHAPES) {
    it(`[${m}, ${n}]: matches cpu's matMul(x, x, true, false), and is exactly symmetric`, async () => {
      const x = seeded(70 + m + n, [m, n]);
      const [simd] = await valuesOn('wasm', () => symmetricRankUpdate(x() as tf.Tensor2D));
      const [ref] = await valuesOn('cpu', () => tf.matMul(x(), x(), true, false));
      assert.ok(maxRelativeError(simd!, ref!) <= TOL, `relative error ${maxRelativeError(simd!, ref!)}`);
      for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) assert.equal(simd![i * n + j], simd![j * n + i]);
    });
  }

  it('accumulates onto a symmetric matrix: C + XᵀX', async () => {
    const x = seeded(80, [129, 19]);
    const c = () => tf.tidy(() => { const g = seeded(81, [19, 19])(); return tf.add(g, g.transpose()) as tf.Tensor2D; });
    const [simd] = await valuesOn('wasm', () => symmetricRankUpdate(x() as tf.Tensor2D, c()));
    const [ref] = await valuesOn('cpu', () => tf.add(c(), tf.matMul(x(), x(), true, false)));
    assert.ok(maxRelativeError(simd!, ref!) <= TOL, `relative error ${maxRelativeError(simd!, ref!)}`);
  });

  it('runs on other backends and without SIMD (tf.matMul), and casts int32 input', async () => {
    const x = seeded(82, [40, 12]);
    const [ref] = await valuesOn('cpu', () => tf.matMul(x(), x(), true, false));
    const [onCpu] = await valuesOn('cpu', () => symmetricRankUpdate(x() as tf.Tensor2D));
    assert.ok(maxRelativeError(onCpu!, ref!) <= TOL);
    const [plain] = await withoutSimdAsync(() => valuesOn('wasm', () => symmetricRankUpdate(x() as tf.Tensor2D)));
    assert.ok(maxRelativeError(plain!, ref!) <= TOL);
    const [ints] = await valuesOn('wasm', () => symmetricRankUpdate(tf.tensor2d([[1, -2], [3, 4]], [2, 2], 'int32')));
    assert.deepEqual(Array.from(ints!), [10, 10, 10, 20]);
  });

  it('refuses a non-matrix or a mismatched accumulator with InvalidArgumentError', () => {
    tf.tidy(() => {
      const x = tf.zeros([3, 4]) as tf.Tensor2D;
      assert.throws(() => symmetricRankUpdate(tf.zeros([2, 3, 4]) as unknown as tf.Tensor2D), InvalidArgumentError);
      assert.throws(() => symmetricRankUpdate(x, tf.zeros([3, 3]) as tf.Tensor2D), InvalidArgumentError);
    });
  });

  it('leaks nothing (tensors, wasm data, module memory once warm) and is tracked by tidy', async () => {
    const x = seeded(83, [300, 50])() as tf.Tensor2D;
    const acc = tf.eye(50) as tf.Tensor2D;
    const step = () => tf.tidy(() => { symmetricRankUpdate(x, acc).dataSync(); });
    step();
    const memory = simdKernelsInfo().memoryBytes;
    assert.deepEqual(await leaks(step), NO_LEAK);
    const y = symmetricRankUpdate(x);
    assert.deepEqual(y.shape, [50, 50]);
    y.dispose();
    assert.deepEqual(await leaks(() => symmetricRankUpdate(x).dispose()), NO_LEAK);
    assert.equal(simdKernelsInfo().memoryBytes, memory);
    tf.dispose([x, acc]);
  });
});
