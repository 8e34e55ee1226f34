/**
 * The batched backward pass (one recorded forward pass, the O square-root outputs stacked along
 * the batch axis, hand-written rules) against the independent 'autodiff' scheme (one tf.grads
 * per output, tfjs differentiating the whole model): every representation's pass must give the
 * same numbers (relative 2e-5, float32 summation order only), with all outputs in one chunk and
 * one output per chunk, and leak nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  FIMMonteCarlo,
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
  type Variant,
} from '../../src/index.js';
import { setBackwardScheme, setStackedFloatsBudget } from '../../src/backend/pass.js';
import { UnsupportedLayerError } from '../../src/errors.js';
import { useTestBackend } from '../support/backend.js';
import { relativeError } from '../support/reference.js';
import * as M from '../support/layer-models.js';

const TOL = 2e-5;

before(async () => {
  await useTestBackend();
});
after(() => {
  setBackwardScheme('batched');
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

/** Everything each representation's pass computes, as flat float64 arrays, by name. */
async function passResults(model: tf.LayersModel, loader: Array<{ xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor }>, variant: Variant): Promise<Map<string, Float64Array>> {
  const lc = LayerCollection.fromModel(model);
  const out = new Map<string, Float64Array>();
  const spec = { model, loader, variant };
  const dense = await FIM({ ...spec, representation: PMatDense });
  out.set('dense', dense.values().slice());
  dense.dispose();
  const diag = await FIM({ ...spec, representation: PMatDiag });
  out.set('diag', diag.values().slice());
  diag.dispose();
  const v = PVector.random(lc, 7);
  const implicit = await FIM({ ...spec, representation: PMatImplicit });
  const mv = await implicit.mv(v);
  out.set('implicit mv', host(mv.toFlat()));
  mv.dispose();
  out.set('implicit vTMv, trace', Float64Array.of(await implicit.vTMv(v), await implicit.trace()));
  implicit.dispose();
  for (const rep of [PMatKFAC, PMatQuasiDiag] as Array<Representation<PMatBase>>) {
    try {
      const m = (await FIM({ ...spec, representation: rep })) as PMatBase & { toTensor(): tf.Tensor };
      out.set(rep.representationName, host(m.toTensor()));
      m.dispose();
    } catch (e) {
      if (!(e instanceof UnsupportedLayerError)) throw e;
    }
  }
  try {
    const ekfac = (await FIM({ ...spec, representation: PMatEKFAC })) as PMatEKFAC;
    await ekfac.updateDiag(loader);
    out.set('EKFAC updateDiag', host(ekfac.toTensor()));
    ekfac.dispose();
  } catch (e) {
    if (!(e instanceof UnsupportedLayerError)) throw e;
  }
  if (variant === 'classif_logits') {
    const mc = await FIMMonteCarlo({ model, loader, representation: PMatDiag, trials: 2, seed: 9 });
    out.set('Monte-Carlo diag', (mc as PMatDiag).values().slice());
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
    setBackwardScheme('autodiff');
    const reference = await passResults(model, loader, variant);
    setBackwardScheme('batched');
    const batched = await passResults(model, loader, variant);
    const previous = setStackedFloatsBudget(1); // one output per chunk
    let chunked: Map<string, Float64Array>;
    try {
      chunked = await passResults(model, loader, variant);
    } finally {
      setStackedFloatsBudget(previous);
    }
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
