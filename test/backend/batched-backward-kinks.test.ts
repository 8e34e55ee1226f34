/**
 * The batched backward pass's hand-written activation rules on both sides of every kink: relu at 0,
 * relu6 at 0 and 6, elu at 0 (and the smooth rules over a wide range, where tanh and sigmoid
 * saturate). The pre-activations of both hidden layers are checked to reach every region, so the
 * test cannot silently stop crossing a kink; then the Dense and Diag matrices of the batched scheme
 * must equal those of the independent autodiff scheme (test/support/autodiff-scheme.ts, tfjs
 * differentiating the whole model), each passed as the spec's `backward`.
 *
 * The one-line defect this catches: relu6's rule without its upper clip (`s > 0` instead of
 * `0 < s < 6`), which standard-normal inputs never expose (a 42% difference here).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { PMatDense, PMatDiag, initLinalg } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';
import { autodiffScheme } from '../support/autodiff-scheme.js';
import { fimSpec, watched } from '../support/engine-spec.js';

const TOL = 2e-5;

/** Regions of each activation's input that must all be reached: [low, high) intervals. */
const REGIONS: Record<string, Array<[number, number]>> = {
  relu: [[-Infinity, 0], [0, Infinity]],
  relu6: [[-Infinity, 0], [0, 6], [6, Infinity]],
  elu: [[-Infinity, 0], [0, Infinity]],
  tanh: [[-Infinity, -3], [-1, 1], [3, Infinity]],
  sigmoid: [[-Infinity, -4], [-1, 1], [4, Infinity]],
  softplus: [[-Infinity, -4], [-4, 4], [4, Infinity]],
};

before(async () => {
  await useTestBackend();
  await initLinalg();
});

/** 4 → 6 (act) → 5 (act) → 3, with weights large enough that pre-activations span about ±15. */
function wideMlp(activation: string): tf.Sequential {
  const init = (seed: number, stddev: number) => tf.initializers.randomNormal({ seed, stddev });
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 6, inputShape: [4], activation: activation as 'relu', kernelInitializer: init(41, 2.5), biasInitializer: init(42, 3) }));
  m.add(tf.layers.dense({ units: 5, activation: activation as 'relu', kernelInitializer: init(43, 1.5), biasInitializer: init(44, 3) }));
  m.add(tf.layers.dense({ units: 3, kernelInitializer: init(45, 0.5) }));
  return m;
}

/** Pre-activations of the two hidden layers, computed from the weights by plain tf ops. */
function preactivations(model: tf.Sequential, xs: tf.Tensor2D): Float32Array[] {
  return tf.tidy(() => {
    const out: Float32Array[] = [];
    let h: tf.Tensor2D = xs;
    for (const layer of model.layers.slice(0, 2)) {
      const [w, b] = layer.getWeights() as [tf.Tensor2D, tf.Tensor1D];
      const s = tf.add(tf.matMul(h, w), b) as tf.Tensor2D;
      out.push(s.dataSync() as Float32Array);
      h = layer.apply(h) as tf.Tensor2D;
    }
    return out;
  });
}

for (const activation of Object.keys(REGIONS)) {
  test(`batched backward = autodiff across every kink and saturation of ${activation}`, async () => {
    const model = wideMlp(activation);
    const loader = Array.from({ length: 4 }, (_, k) => {
      const xs = tf.randomNormal([5, 4], 0, 2, 'float32', 60 + k) as tf.Tensor2D;
      return { xs, ys: tf.zeros([5], 'int32') };
    });
    for (const [li, s] of preactivations(model, tf.concat(loader.map((b) => b.xs)) as tf.Tensor2D).entries()) {
      for (const [lo, hi] of REGIONS[activation]!) {
        const count = s.filter((v) => v >= lo && v < hi).length;
        assert.ok(count >= 3, `layer ${li}: only ${count} pre-activations of ${activation} in [${lo}, ${hi})`);
      }
    }
    const n0 = tf.memory().numTensors;
    const results: Record<string, Float64Array[]> = {};
    const reference = watched(autodiffScheme);
    for (const [scheme, backward] of [['autodiff', reference], ['batched', undefined]] as const) {
      const spec = fimSpec(model, loader, 'classif_logits', backward);
      const dense = await PMatDense.compute(spec);
      const diag = await PMatDiag.compute(spec);
      results[scheme] = [dense.values().slice(), diag.values().slice()];
      dense.dispose();
      diag.dispose();
    }
    assert.equal(tf.memory().numTensors, n0, 'no tensor leaks');
    assert.equal(reference.batches, 2 * loader.length, 'the reference scheme ran both passes');
    for (const [i, name] of ['Dense', 'Diag'].entries()) {
      const err = relativeError(results.batched![i]!, results.autodiff![i]!);
      assert.ok(err < TOL, `${activation}, ${name}: relative error ${err.toExponential(2)} ≥ ${TOL}`);
    }
    for (const b of loader) tf.dispose([b.xs, b.ys]);
    model.dispose();
  });
}
