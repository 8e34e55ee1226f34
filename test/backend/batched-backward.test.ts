/**
 * The batched backward pass (one recorded forward pass, the O square-root outputs stacked along
 * the batch axis, hand-written rules) against the independent autodiff scheme
 * (test/support/autodiff-scheme.ts: one tf.grads per output, tfjs differentiating the whole
 * model), each passed as the spec's `backward`: every representation's pass must give the same
 * numbers (relative 2e-5, float32 summation order only), with all outputs in one chunk (the
 * default scheme) and one output per chunk (`batchedBackwardScheme({ stackedFloatsBudget: 1 })`),
 * and leak nothing.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  LayerCollection,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatImplicit,
  PMatKFAC,
  PMatQuasiDiag,
  PVector,
  type PMatBase,
  type Representation,
  initLinalg,
  type Variant,
} from '../../src/index.js';
import { type BackwardScheme, batchedBackwardScheme } from '../../src/engine.js';
import { UnsupportedLayerError } from '../../src/errors.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';
import { autodiffScheme } from '../support/autodiff-scheme.js';
import { fimSpec, monteCarloSpec, watched } from '../support/engine-spec.js';
import * as M from '../support/layer-models.js';

const TOL = 2e-5;

before(async () => {
  await useTestBackend();
  await initLinalg();
});

const host = (t: tf.Tensor): Float64Array => {
  const a = Float64Array.from(t.dataSync());
  t.dispose();
  return a;
};

function mlp(activation: string): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 5, inputShape: [6], activation: activation as 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }), biasInitializer: tf.initializers.randomNormal({ seed: 4, stddev: 0.3 }) }));
  m.add(tf.layers.dense({ units: 4, activation: activation as 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }));
  m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotNormal({ seed: 6 }) }));
  return m;
}

/** Branches, an Activation layer, Dropout, Reshape, Add, Concatenate and a frozen Dense. */
function functionalModel(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const input = tf.input({ shape: [6] });
  const h = tf.layers.dense({ units: 6, kernelInitializer: init(11) }).apply(input) as tf.SymbolicTensor;
  const a = tf.layers.activation({ activation: 'tanh' }).apply(h) as tf.SymbolicTensor;
  const d = tf.layers.dropout({ rate: 0.5 }).apply(a) as tf.SymbolicTensor;
  const frozen = tf.layers.dense({ units: 6, activation: 'sigmoid', trainable: false, kernelInitializer: init(12) });
  const b = frozen.apply(h) as tf.SymbolicTensor;
  const sum = tf.layers.add().apply([d, b]) as tf.SymbolicTensor;
  const r = tf.layers.reshape({ targetShape: [2, 3] }).apply(sum) as tf.SymbolicTensor;
  const e = tf.layers.dense({ units: 4, activation: 'relu', kernelInitializer: init(13) }).apply(r) as tf.SymbolicTensor;
  const f = tf.layers.flatten().apply(e) as tf.SymbolicTensor;
  const c = tf.layers.concatenate().apply([f, a]) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, kernelInitializer: init(14) }).apply(c) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** Strided, dilated and pooled convolutions with a softmax head (classif_probs). */
function cnn(): tf.Sequential {
  const init = (seed: number) => tf.initializers.glorotNormal({ seed });
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', inputShape: [9, 9, 2], kernelInitializer: init(21) }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 1 }));
  m.add(tf.layers.conv2d({ filters: 4, kernelSize: 2, dilationRate: 2, activation: 'elu', kernelInitializer: init(22) }));
  m.add(tf.layers.averagePooling2d({ poolSize: 1 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(23) }));
  return m;
}

interface Case {
  name: string;
  make: () => tf.LayersModel;
  variant?: Variant;
}

const cases: Case[] = [
  ...['relu', 'relu6', 'tanh', 'sigmoid', 'elu', 'softplus', 'selu', 'softsign', 'linear', 'softmax'].map((a) => ({ name: `MLP, ${a}`, make: () => mlp(a) })),
  { name: 'MLP, relu, regression', make: () => mlp('relu'), variant: 'regression' },
  { name: 'MLP, tanh, binary logits', make: () => mlp('tanh'), variant: 'classif_binary_logits' },
  { name: 'functional: branches, Activation, Dropout, Reshape, Add, Concatenate, frozen Dense', make: functionalModel },
  { name: 'CNN: stride, dilation, pooling, softmax head', make: cnn, variant: 'classif_probs' },
  { name: 'residual CNN with BatchNormalization', make: M.residualCnn },
  { name: 'transformer block', make: M.transformerBlock },
  { name: 'LSTM classifier', make: M.lstmClassifier },
  { name: 'Conv1D dilated', make: () => M.conv1dModel({ dilation: 2 }) },
  { name: 'Conv2DTranspose', make: M.conv2dTransposeModel },
  { name: 'DepthwiseConv2D', make: M.depthwiseModel },
  { name: 'SeparableConv2D', make: M.separableModel },
  { name: 'BatchNormalization', make: () => M.batchNormModel() },
  { name: 'LayerNormalization', make: M.layerNormModel },
  { name: 'Embedding', make: M.embeddingModel },
  { name: 'PReLU', make: M.preluModel },
];

/** Everything each representation's pass computes with `backward` (undefined: the default scheme), as flat float64 arrays, by name. */
async function passResults(model: tf.LayersModel, loader: Array<{ xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor }>, variant: Variant, backward?: BackwardScheme): Promise<Map<string, Float64Array>> {
  const lc = LayerCollection.fromModel(model);
  const out = new Map<string, Float64Array>();
  const spec = fimSpec(model, loader, variant, backward);
  const dense = await PMatDense.compute(spec);
  out.set('dense', dense.values().slice());
  dense.dispose();
  const diag = await PMatDiag.compute(spec);
  out.set('diag', diag.values().slice());
  diag.dispose();
  const v = PVector.random(lc, 7);
  const implicit = await PMatImplicit.compute(spec);
  const mv = await implicit.mv(v);
  out.set('implicit mv', host(mv.toFlat()));
  mv.dispose();
  out.set('implicit vTMv, trace', Float64Array.of(await implicit.vTMv(v), await implicit.trace()));
  implicit.dispose();
  for (const rep of [PMatKFAC, PMatQuasiDiag] as Array<Representation<PMatBase>>) {
    try {
      const m = (await rep.compute(spec)) as PMatBase & { toTensor(): tf.Tensor };
      out.set(rep.representationName, host(m.toTensor()));
      m.dispose();
    } catch (e) {
      if (!(e instanceof UnsupportedLayerError)) throw e;
    }
  }
  try {
    const ekfac = await PMatEKFAC.compute(spec);
    await ekfac.updateDiag(loader);
    out.set('EKFAC updateDiag', host(ekfac.toTensor()));
    ekfac.dispose();
  } catch (e) {
    if (!(e instanceof UnsupportedLayerError)) throw e;
  }
  if (variant === 'classif_logits') {
    const mc = await PMatDiag.compute(monteCarloSpec(model, loader, 2, 9, backward));
    out.set('Monte-Carlo diag', mc.values().slice());
    mc.dispose();
  }
  v.dispose();
  return out;
}

for (const c of cases) {
  test(`batched backward = autodiff, every representation: ${c.name}`, async () => {
    const model = c.make();
    const variant = c.variant ?? 'classif_logits';
    const loader = M.layerBatches(model, 5, 3); // batches of 3 and 2
    const n0 = tf.memory().numTensors;
    const schemes = { reference: watched(autodiffScheme), stacked: watched(batchedBackwardScheme()), chunked: watched(batchedBackwardScheme({ stackedFloatsBudget: 1 })) };
    const reference = await passResults(model, loader, variant, schemes.reference);
    const batched = await passResults(model, loader, variant, schemes.stacked);
    const chunked = await passResults(model, loader, variant, schemes.chunked);
    // Each scheme ran every pass it was given (at least 2 batches × 5 passes), one output at a
    // time except the stacked one, which delivers all O ≥ 2 outputs of a batch at once.
    for (const s of Object.values(schemes)) assert.ok(s.batches >= 10, `${s.name}: ${s.batches} batches`);
    assert.equal(schemes.reference.largestCount, 1);
    assert.equal(schemes.chunked.largestCount, 1);
    assert.ok(schemes.stacked.largestCount >= 2, `stacked: ${schemes.stacked.largestCount} outputs at once`);
    assert.equal(tf.memory().numTensors, n0, 'no tensor leaks');
    assert.ok(reference.size >= 5);
    for (const [name, ref] of reference) {
      for (const [scheme, got] of [['stacked', batched.get(name)!], ['one output per chunk', chunked.get(name)!]] as const) {
        const err = relativeError(got, ref);
        assert.ok(err < TOL, `${c.name}: ${name} (${scheme}): relative error ${err.toExponential(2)} ≥ ${TOL}`);
      }
    }
    M.disposeLayerBatches(loader);
    model.dispose();
  });
}
