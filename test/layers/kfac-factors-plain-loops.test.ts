/**
 * KFAC blocks of Dense, Conv1D and Conv2D on varied inputs (every example and position different)
 * against factors rebuilt by plain loops, independent of the library's contractions:
 *   A = (1/n) Σ_i Σ_s ã_is ã_isᵀ          (ã: the input patch at position s, with a trailing 1 for the bias)
 *   G = (1/n) Σ_i (1/S) Σ_s J_isᵀ H_i J_is  (J_is = ∂f(x_i)/∂(pre-activation at s), H_i the output Fisher)
 * ("expand" convention: A sums over the S shared positions, G averages over them). The layer's block
 * of KFAC's toTensor() must equal A ⊗ G (relative 1e-4, float32 accumulation over a tiny model).
 * The patches are cut by index arithmetic with tfjs's padding rule ('same': total padding
 * max((out − 1)·s + k − in, 0), the smaller half before), so a wrong patch offset, a dropped bias
 * column, a factor summed over one batch only or a missing 1/S changes the block.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatKFAC } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { outputFisher, relativeError } from '../support/reference.js';

const TOL = 1e-4;
const init = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.6, seed });

before(async () => {
  await useTestBackend();
});

interface Case {
  name: string;
  /** The linear layer under test (first in the model, so its output is its pre-activation). */
  layer: () => tf.layers.Layer;
  inputShape: number[];
  /** Spatial geometry: kernel, stride, padding per spatial axis (none for Dense). */
  spatial: Array<{ k: number; s: number; padding: 'same' | 'valid' }>;
  bias: boolean;
}

const cases: Case[] = [
  { name: 'Dense 5 → 4 with bias', layer: () => tf.layers.dense({ units: 4, inputShape: [5], kernelInitializer: init(1), biasInitializer: init(2) }), inputShape: [5], spatial: [], bias: true },
  { name: 'Dense 5 → 3 without bias', layer: () => tf.layers.dense({ units: 3, inputShape: [5], useBias: false, kernelInitializer: init(3) }), inputShape: [5], spatial: [], bias: false },
  {
    name: "Conv1D k3 stride 1 'same'",
    layer: () => tf.layers.conv1d({ filters: 3, kernelSize: 3, strides: 1, padding: 'same', inputShape: [7, 2], kernelInitializer: init(4), biasInitializer: init(5) }),
    inputShape: [7, 2],
    spatial: [{ k: 3, s: 1, padding: 'same' }],
    bias: true,
  },
  {
    name: "Conv1D k2 stride 2 'valid'",
    layer: () => tf.layers.conv1d({ filters: 2, kernelSize: 2, strides: 2, padding: 'valid', inputShape: [7, 3], kernelInitializer: init(6), biasInitializer: init(7) }),
    inputShape: [7, 3],
    spatial: [{ k: 2, s: 2, padding: 'valid' }],
    bias: true,
  },
  {
    name: "Conv2D 3×3 stride 2 'same' (asymmetric padding)",
    layer: () => tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', inputShape: [6, 6, 2], kernelInitializer: init(8), biasInitializer: init(9) }),
    inputShape: [6, 6, 2],
    spatial: [{ k: 3, s: 2, padding: 'same' }, { k: 3, s: 2, padding: 'same' }],
    bias: true,
  },
  {
    name: "Conv2D 2×2 stride 1 'valid' without bias",
    layer: () => tf.layers.conv2d({ filters: 2, kernelSize: 2, strides: 1, padding: 'valid', useBias: false, inputShape: [4, 5, 2], kernelInitializer: init(10) }),
    inputShape: [4, 5, 2],
    spatial: [{ k: 2, s: 1, padding: 'valid' }, { k: 2, s: 1, padding: 'valid' }],
    bias: false,
  },
];

/** Output size and leading padding of one spatial axis, by tfjs's rule. */
function axisGeometry(size: number, g: { k: number; s: number; padding: 'same' | 'valid' }): { out: number; before: number } {
  if (g.padding === 'valid') return { out: Math.floor((size - g.k) / g.s) + 1, before: 0 };
  const out = Math.ceil(size / g.s);
  const total = Math.max((out - 1) * g.s + g.k - size, 0);
  return { out, before: Math.floor(total / 2) };
}

/** Input patches of one example, [S][K(+1)], by index arithmetic (channels last). */
function patches(x: Float32Array, c: Case): Float64Array[] {
  const channels = c.inputShape[c.inputShape.length - 1]!;
  const sizes = c.inputShape.slice(0, -1);
  const geo = sizes.map((n, a) => axisGeometry(n, c.spatial[a]!));
  const outs = geo.map((g) => g.out);
  const positions = outs.reduce((a, b) => a * b, 1);
  const kernel = c.spatial.map((g) => g.k);
  const taps = kernel.reduce((a, b) => a * b, 1);
  const K = taps * channels + (c.bias ? 1 : 0);
  const rows: Float64Array[] = [];
  for (let p = 0; p < positions; p++) {
    const pos = unravel(p, outs);
    const row = new Float64Array(K);
    for (let t = 0; t < taps; t++) {
      const tap = unravel(t, kernel);
      const at = pos.map((o, a) => o * c.spatial[a]!.s + tap[a]! - geo[a]!.before);
      if (at.some((v, a) => v < 0 || v >= sizes[a]!)) continue; // zero padding
      const flat = at.reduce((acc, v, a) => acc * sizes[a]! + v, 0);
      for (let ch = 0; ch < channels; ch++) row[t * channels + ch] = x[flat * channels + ch]!;
    }
    if (c.bias) row[K - 1] = 1;
    rows.push(row);
  }
  return rows;
}

function unravel(index: number, dims: number[]): number[] {
  const out = new Array<number>(dims.length);
  for (let a = dims.length - 1; a >= 0; a--) {
    out[a] = index % dims[a]!;
    index = Math.floor(index / dims[a]!);
  }
  return out;
}

for (const c of cases) {
  test(`KFAC block of ${c.name} on varied inputs equals A ⊗ G from plain loops`, async () => {
    const model = tf.sequential();
    model.add(c.layer());
    model.add(tf.layers.activation({ activation: 'tanh' }));
    if (c.spatial.length) model.add(tf.layers.flatten());
    model.add(tf.layers.dense({ units: 3, kernelInitializer: init(20), biasInitializer: init(21) }));
    const loader = [0, 1, 2].map((k) => ({ xs: tf.randomNormal([4, ...c.inputShape], 0, 1, 'float32', 90 + k), ys: tf.zeros([4], 'int32') }));

    const first = model.layers[0]!;
    const head = (pre: tf.Tensor) => model.layers.slice(1).reduce((t, l) => l.apply(t) as tf.Tensor, pre);
    const units = (first.getWeights()[0]!.shape as number[]).at(-1)!;
    let A: Float64Array | undefined;
    let G: Float64Array | undefined;
    let n = 0;
    for (const { xs } of loader) {
      for (let i = 0; i < xs.shape[0]!; i++) {
        const xi = tf.slice(xs, [i], [1]);
        const pre = first.apply(xi) as tf.Tensor;
        const f = head(pre).dataSync();
        const H = outputFisher('classif_logits', Float64Array.from(f));
        // J[o] = ∂f_o/∂pre, flattened as [S, units].
        const J = Array.from(f, (_, o) => {
          const grad = tf.grad((p: tf.Tensor) => head(p).reshape([-1]).gather([o]).sum())(pre);
          const v = Float64Array.from(grad.dataSync());
          grad.dispose();
          return v;
        });
        const rows = c.spatial.length ? patches(xi.dataSync() as Float32Array, c) : [Float64Array.from([...xi.dataSync(), ...(c.bias ? [1] : [])])];
        const S = rows.length;
        const K = rows[0]!.length;
        A ??= new Float64Array(K * K);
        G ??= new Float64Array(units * units);
        for (const r of rows) for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) A[a * K + b]! += r[a]! * r[b]!;
        for (let s = 0; s < S; s++)
          for (let o1 = 0; o1 < f.length; o1++)
            for (let o2 = 0; o2 < f.length; o2++) {
              const h = H[o1]![o2]! / S;
              if (h === 0) continue;
              for (let u = 0; u < units; u++) for (let w = 0; w < units; w++) G[u * units + w]! += h * J[o1]![s * units + u]! * J[o2]![s * units + w]!;
            }
        tf.dispose([xi, pre]);
        n++;
      }
    }
    const K = Math.sqrt(A!.length);
    const d = K * units;
    const expected = new Float64Array(d * d);
    for (let a = 0; a < K; a++)
      for (let u = 0; u < units; u++)
        for (let b = 0; b < K; b++) for (let w = 0; w < units; w++) expected[(a * units + u) * d + b * units + w] = (A![a * K + b]! / n) * (G![u * units + w]! / n);

    const lc = LayerCollection.fromLayers(model, [LayerCollection.fromModel(model).ids()[0]!]);
    const n0 = tf.memory().numTensors;
    const F = await FIM({ model, loader, representation: PMatKFAC, layerCollection: lc });
    const got = F.toTensor();
    const block = Float64Array.from(got.dataSync());
    got.dispose();
    F.dispose();
    assert.equal(tf.memory().numTensors, n0, 'no tensor leaks');
    assert.equal(block.length, expected.length, 'block size');
    const err = relativeError(block, expected);
    assert.ok(err < TOL, `${c.name}: relative error ${err.toExponential(2)} ≥ ${TOL}`);
    for (const b of loader) tf.dispose([b.xs, b.ys]);
    model.dispose();
  });
}
