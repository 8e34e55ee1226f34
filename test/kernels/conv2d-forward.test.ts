/**
 * The Conv2D / FusedConv2D fix (SIMD implicit GEMM, src/backend/kernels/conv2d_forward.ts) on
 * every geometry it accepts, against the cpu backend and against the stock XNNPACK kernel (the
 * route with SIMD off), and the geometries it refuses, which must reach the stock kernel. All
 * comparisons at TOL = 1e-4 relative (max-norm): float32 sums of ≤ 300 products of values in
 * [-1, 1] differ by ~1e-7 between summation orders.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { conv2dForwardBySimd, SIMD_FORWARD_MIN_CHANNELS, withForwardMinChannels } from '../../src/backend/kernels/conv2d_forward.js';
import { setSimdKernelsEnabled } from '../../src/backend/kernels/simd/module.js';
import type { KernelArgs, WasmBackend } from '../../src/backend/kernels/wasm_backend.js';
import { leaks, maxRelativeError, NO_LEAK, seeded, TOL, valuesOn } from './support.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
interface Geometry {
  x: [number, number, number, number];
  f: [number, number, number, number];
  stride: number | [number, number];
  pad: Pad;
}

/** Accepted geometries: odd sizes, 3×3 / 1×1 / 2×3 / 5×5, strides 1, 2, [2, 1], same / valid / explicit, batch 1, odd channels. */
const ACCEPTED: Geometry[] = [
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], stride: 1, pad: 'same' },
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], stride: 1, pad: 'valid' },
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], stride: 2, pad: 'same' },
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], stride: 2, pad: 'valid' },
  { x: [1, 10, 12, 16], f: [3, 3, 16, 9], stride: 2, pad: 'same' }, // batch 1, even input, stride 2 same pads bottom/right only
  { x: [3, 6, 5, 7], f: [1, 1, 7, 1], stride: 1, pad: 'valid' },
  { x: [3, 6, 5, 7], f: [1, 1, 7, 11], stride: 2, pad: 'same' },
  { x: [2, 7, 11, 3], f: [2, 3, 3, 17], stride: [2, 1], pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 13, 13, 2], f: [5, 5, 2, 8], stride: 1, pad: 'same' },
  { x: [1, 2, 3, 4], f: [3, 3, 4, 6], stride: 1, pad: 'same' }, // every pixel on the border
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], stride: 1, pad: [[0, 0], [0, 3], [4, 0], [0, 0]] }, // padding wider than the filter
  { x: [2, 7, 7, 33], f: [3, 3, 33, 12], stride: 2, pad: 'valid' }, // at the default threshold too
];

const conv = (g: Geometry, x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, g.stride, g.pad);
const fused = (g: Geometry, x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined, activation: 'relu' | 'linear') =>
  tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: g.stride, pad: g.pad, bias: b, activation });

/** Values of `compute` on wasm with SIMD on (the fix), with SIMD off (stock kernel), and on cpu. */
async function threeWays(compute: () => tf.Tensor): Promise<{ simd: Float32Array; stock: Float32Array; cpu: Float32Array }> {
  const [simd] = await valuesOn('wasm', compute);
  setSimdKernelsEnabled(false);
  let stock: Float32Array;
  try {
    [stock] = (await valuesOn('wasm', compute)) as [Float32Array];
  } finally {
    setSimdKernelsEnabled(true);
  }
  const [cpu] = await valuesOn('cpu', compute);
  return { simd: simd!, stock, cpu: cpu! };
}

/** Runs the SIMD route directly (no fallback): null means it refused the geometry. */
function simdRoute(inputs: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap): Float32Array | null {
  const backend = tf.backend() as unknown as WasmBackend;
  const out = conv2dForwardBySimd({ inputs, backend, attrs } as unknown as KernelArgs<WasmBackend>);
  if (out == null) return null;
  const values = Float32Array.from(backend.readSync(out.dataId) as Float32Array);
  backend.disposeData(out.dataId);
  return values;
}

describe('Conv2D / FusedConv2D fix: SIMD implicit-GEMM forward convolution', () => {
  before(async () => {
    await useTestBackend('wasm');
  });

  ACCEPTED.forEach((g, i) => {
    const name = `x [${g.x}] filter [${g.f}] stride ${JSON.stringify(g.stride)} pad ${JSON.stringify(g.pad)}`;
    it(`${name}: conv2d, and fused with bias + relu / bias + linear / relu without bias, match cpu and the stock kernel`, () => withForwardMinChannels(1, async () => {
      const x = seeded(100 + i, g.x);
      const w = seeded(200 + i, g.f);
      const b = seeded(300 + i, [g.f[3]]);
      const computations: Array<[string, () => tf.Tensor]> = [
        ['conv2d', () => conv(g, x(), w())],
        ['fused bias relu', () => fused(g, x(), w(), b(), 'relu')],
        ['fused bias linear', () => fused(g, x(), w(), b(), 'linear')],
        ['fused relu, no bias', () => fused(g, x(), w(), undefined, 'relu')],
      ];
      for (const [what, compute] of computations) {
        const r = await threeWays(compute);
        assert.ok(maxRelativeError(r.simd, r.cpu) <= TOL, `${what}: vs cpu ${maxRelativeError(r.simd, r.cpu)}`);
        assert.ok(maxRelativeError(r.simd, r.stock) <= TOL, `${what}: vs stock ${maxRelativeError(r.simd, r.stock)}`);
      }
      // The SIMD route itself took these (not the fallback).
      const inputs = { x: x(), filter: w(), bias: b() };
      const direct = simdRoute(inputs, { strides: g.stride, pad: g.pad, dataFormat: 'NHWC', dilations: 1, activation: 'relu' });
      assert.ok(direct != null, 'the SIMD route refused an accepted geometry');
      const [ref] = await valuesOn('cpu', () => fused(g, x(), w(), b(), 'relu'));
      assert.ok(maxRelativeError(direct, ref!) <= TOL, `direct route: ${maxRelativeError(direct, ref!)}`);
      tf.dispose(Object.values(inputs));
    }));
  });

  it(`routes by channels: the SIMD route from ${SIMD_FORWARD_MIN_CHANNELS} input channels, the stock kernel below`, () => {
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
    for (const [c, simd] of [[SIMD_FORWARD_MIN_CHANNELS - 1, false], [SIMD_FORWARD_MIN_CHANNELS, true]] as const) {
      const inputs = { x: seeded(70, [1, 5, 5, c])(), filter: seeded(71, [3, 3, c, 4])() };
      assert.equal(simdRoute(inputs, attrs) != null, simd, `${c} channels`);
      tf.dispose(Object.values(inputs));
    }
  });

  it('refuses dilation 2, an elu activation, a PReLU (those still match cpu through the stock kernel) and a bias that is not one per channel', async () => {
    const g: Geometry = { x: [2, 10, 9, 3], f: [3, 3, 3, 4], stride: 1, pad: 'same' };
    const x = seeded(40, g.x);
    const w = seeded(41, g.f);
    const b = seeded(42, [4]);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
    const refused: Array<[string, Record<string, tf.Tensor>, tf.NamedAttrMap, () => tf.Tensor]> = [
      ['dilation 2', { x: x(), filter: w() }, { ...attrs, dilations: 2 }, () => tf.conv2d(x() as tf.Tensor4D, w() as tf.Tensor4D, 1, 'same', 'NHWC', 2)],
      ['elu', { x: x(), filter: w(), bias: b() }, { ...attrs, activation: 'elu' }, () => tf.fused.conv2d({ x: x() as tf.Tensor4D, filter: w() as tf.Tensor4D, strides: 1, pad: 'same', bias: b(), activation: 'elu' })],
      ['prelu', { x: x(), filter: w(), bias: b(), preluActivationWeights: b() }, { ...attrs, activation: 'prelu' },
        () => tf.fused.conv2d({ x: x() as tf.Tensor4D, filter: w() as tf.Tensor4D, strides: 1, pad: 'same', bias: b(), activation: 'prelu', preluActivationWeights: b() })],
    ];
    for (const [what, inputs, a, compute] of refused) {
      assert.equal(simdRoute(inputs, a), null, `${what}: the SIMD route accepted it`);
      tf.dispose(Object.values(inputs));
      const [wasm] = await valuesOn('wasm', compute);
      const [cpu] = await valuesOn('cpu', compute);
      assert.ok(maxRelativeError(wasm!, cpu!) <= TOL, `${what}: stock fallback vs cpu ${maxRelativeError(wasm!, cpu!)}`);
    }
    // A bias that is not one value per output channel (which the stock kernel rejects itself).
    const bad = { x: x(), filter: w(), bias: seeded(43, [2])() };
    assert.equal(simdRoute(bad, { ...attrs, activation: 'relu' }), null, 'a 2-value bias for 4 channels was accepted');
    tf.dispose(Object.values(bad));
  });

  it('gradients of a whole CNN (conv same, conv s2 valid, conv s2 valid, relu, global average pooling, dense) agree with the fix, without SIMD, and on cpu', () => withForwardMinChannels(1, async () => {
    const model = (() => {
      const m = tf.sequential();
      const init = (seed: number) => tf.initializers.glorotUniform({ seed });
      m.add(tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [11, 11, 3], kernelInitializer: init(1), biasInitializer: 'ones' }));
      m.add(tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init(2) }));
      m.add(tf.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init(3) }));
      m.add(tf.layers.globalAveragePooling2d({}));
      m.add(tf.layers.dense({ units: 3, kernelInitializer: init(4) }));
      return m;
    })();
    const weights = model.getWeights().map((t) => ({ values: t.dataSync().slice(), shape: t.shape }));
    const x = seeded(50, [3, 11, 11, 3]);
    const grads = () => {
      // The model's variables live on the backend that created them: rebuild the weights on the current one.
      model.setWeights(weights.map((w) => tf.tensor(w.values, w.shape)));
      const { grads: g } = tf.variableGrads(() => tf.sum(tf.square(model.apply(x()) as tf.Tensor)) as tf.Scalar);
      return model.trainableWeights.map((v) => g[v.originalName]!);
    };
    const withFix = await valuesOn('wasm', grads);
    setSimdKernelsEnabled(false);
    let withoutSimd: Float32Array[];
    try {
      withoutSimd = await valuesOn('wasm', grads);
    } finally {
      setSimdKernelsEnabled(true);
    }
    const cpu = await valuesOn('cpu', grads);
    withFix.forEach((g, i) => {
      assert.ok(maxRelativeError(g, cpu[i]!) <= TOL, `weight ${i}: fix vs cpu ${maxRelativeError(g, cpu[i]!)}`);
      assert.ok(maxRelativeError(g, withoutSimd[i]!) <= TOL, `weight ${i}: fix vs stock ${maxRelativeError(g, withoutSimd[i]!)}`);
    });
    model.dispose();
  }));

  it('leaks no tensors or backend data', () => withForwardMinChannels(1, async () => {
    const x = seeded(60, [2, 8, 8, 3])();
    const w = seeded(61, [3, 3, 3, 4])();
    const b = seeded(62, [4])();
    const step = () => tf.tidy(() => [tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same').dataSync(), fused({ x: [2, 8, 8, 3], f: [3, 3, 3, 4], stride: 1, pad: 'same' }, x, w, b, 'relu').dataSync()]);
    step();
    assert.deepEqual(await leaks(step), NO_LEAK);
    tf.dispose([x, w, b]);
  }));
});
