/**
 * Hessian of the mean loss, from tfjs grad-of-grad: equal to the GGN / FIM for models linear in
 * θ (rel. 1e-4); for non-linear models H·dw = (∇L(θ+dw) − ∇L(θ−dw))/2 to rel. 1e-3 with ∇L from
 * tf.variableGrads through model.apply (independent of the library), for every layer class the
 * Hessian accepts; the implicit representation equals the dense one (mv, vTMv 1e-4, CG solve
 * 1e-3); Diag and BlockDiag are the dense diagonal and blocks. Models tfjs cannot differentiate
 * twice correctly and bad options get typed errors naming the culprit. Nothing leaks.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  Hessian,
  InvalidArgumentError,
  LayerCollection,
  LayerCollectionMismatchError,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatHessianImplicit,
  PMatImplicit,
  PMatLowRank,
  PVector,
  UnsupportedLayerError,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, nested, randomBatches, residual, sequenceDense } from '../support/models.js';
import { flatGradient, relativeError, host } from '../support/reference.js';

before(async () => {
  await useTestBackend();
});

type Batches = Array<{ xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor }>;

/** ∇θ (1/n) Σ_i CE(f(x_i), y_i) by tf.variableGrads through model.apply (first order only). */
function meanLossGradient(model: tf.LayersModel, lc: LayerCollection, batches: Batches): Float64Array {
  const n = batches.reduce((s, b) => s + b.ys.shape[0]!, 0);
  const total = new Float64Array(lc.numel());
  for (const { xs, ys } of batches) {
    const g = flatGradient(lc, () =>
      tf.tidy(() => {
        const f = (model.apply(xs, { training: false }) as tf.Tensor).reshape([ys.shape[0]!, -1]);
        return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.cast(ys, 'int32'), f.shape[1]!), f, undefined, 0, tf.Reduction.SUM) as tf.Scalar;
      }),
    );
    g.forEach((v, k) => (total[k]! += v / n));
  }
  return total;
}

/** H·dw from the dense Hessian against the central difference of gradients; returns the relative error. */
async function finiteDifferenceError(model: tf.LayersModel, batches: Batches, lc = LayerCollection.fromModel(model), step = 1e-3): Promise<number> {
  const H = await Hessian({ model, loader: batches, loss: 'cross_entropy', representation: PMatImplicit, layerCollection: lc });
  const direction = PVector.random(lc, 21);
  const dw = direction.scale(step / direction.norm());
  const hdw = host((await H.mv(dw)).toFlat());
  const w0 = PVector.fromModel(model, lc);
  dw.addToModel(model);
  const plus = meanLossGradient(model, lc, batches);
  w0.copyToModel(model);
  const back = dw.scale(-1);
  back.addToModel(model);
  const minus = meanLossGradient(model, lc, batches);
  w0.copyToModel(model);
  [direction, dw, w0, back].forEach((x) => x.dispose());
  return relativeError(hdw, plus.map((v, k) => (v - minus[k]!) / 2));
}

test('Hessian = GGN = FIM(classif_logits) for a model linear in θ with cross-entropy (rel. 1e-4); mse gives FIM(regression)', async (t) => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [5], biasInitializer: 'randomNormal' })] });
  const batches = randomBatches(model, 10, 4);
  const n0 = tf.memory().numTensors;
  const H = await Hessian({ model, loader: batches, loss: 'cross_entropy', representation: PMatDense });
  assert.equal(tf.memory().numTensors, n0 + 1, 'Hessian leaves only the matrix it returns');
  const F = await FIM({ model, loader: batches, representation: PMatDense, variant: 'classif_logits' });
  const err = relativeError(H.values(), F.values());
  const targets = batches.map((b) => ({ xs: b.xs, ys: tf.randomNormal([b.xs.shape[0]!, 4], 0, 1, 'float32', 3) }));
  const Hmse = await Hessian({ model, loader: targets, loss: 'mse', representation: PMatDense });
  const Freg = await FIM({ model, loader: batches, representation: PMatDense, variant: 'regression' });
  const errMse = relativeError(Hmse.values(), Freg.values());
  t.diagnostic(`cross_entropy vs FIM: ${err.toExponential(2)}; mse vs FIM regression: ${errMse.toExponential(2)}`);
  assert.ok(err < 1e-4, `cross_entropy: relative error ${err}`);
  assert.ok(errMse < 1e-4, `mse: relative error ${errMse}`);
  [H, F, Hmse, Freg].forEach((m) => m.dispose());
  targets.forEach((b) => b.ys.dispose());
  model.dispose();
  disposeBatches(batches);
});

const models: Array<[string, () => tf.LayersModel]> = [
  ['mlp (tanh)', () => mlp()],
  ['cnn (relu, tanh, stride 2)', () => cnn()],
  ['residual (relu, tanh, add)', () => residual()],
  ['sequence dense', () => sequenceDense()],
  ['nested', () => nested()],
];

for (const [name, make] of models) {
  test(`H·dw = (∇L(θ+dw) − ∇L(θ−dw))/2 with ‖dw‖ = 1e-3 (rel. 1e-3): ${name}`, async (t) => {
    const model = make();
    const batches = randomBatches(model, 8, 4);
    const err = await finiteDifferenceError(model, batches);
    t.diagnostic(`relative error ${err.toExponential(2)}`);
    assert.ok(err < 1e-3, `${name}: relative error ${err}`);
    model.dispose();
    disposeBatches(batches);
  });
}

test('implicit Hessian = dense Hessian on mv and vTMv (rel. 1e-4) and on solve (rel. 1e-3); Diag and BlockDiag are its diagonal and blocks', async (t) => {
  const model = mlp();
  const lc = LayerCollection.fromModel(model);
  const batches = randomBatches(model, 6, 6);
  const opts = { model, loader: batches, loss: 'cross_entropy' as const };
  const dense = await Hessian({ ...opts, representation: PMatDense });
  const implicit = await Hessian({ ...opts, representation: PMatImplicit });
  assert.ok(implicit instanceof PMatHessianImplicit);
  const v = PVector.random(lc, 5);
  const n0 = tf.memory().numTensors;
  const mvI = await implicit.mv(v);
  assert.equal(tf.memory().numTensors, n0 + 1, 'mv returns one tensor');
  const errMv = relativeError(host(mvI.toFlat()), host(dense.mv(v).toFlat()));
  const errQuad = Math.abs((await implicit.vTMv(v)) - dense.vTMv(v)) / Math.abs(dense.vTMv(v));
  // H is indefinite; a damping above its spectral radius makes H + λI positive definite.
  const regul = 1.5 * dense.norm(2);
  const xD = dense.solve(v, { regul });
  const xI = await implicit.solve(v, { regul, rtol: 1e-7, maxIter: 400 });
  const errSolve = relativeError(host(xI.toFlat()), host(xD.toFlat()));
  const n1 = tf.memory().numTensors;
  const diag = await Hessian({ ...opts, representation: PMatDiag });
  const bd = await Hessian({ ...opts, representation: PMatBlockDiag });
  assert.equal(tf.memory().numTensors, n1 + lc.layers.length, 'Diag holds its diagonal on the host only, BlockDiag one tensor per layer');
  const d = lc.numel();
  const full = dense.values();
  const blocks = new Float64Array(d * d);
  for (const e of lc.layers) {
    for (let r = 0; r < e.numel; r++) for (let c = 0; c < e.numel; c++) blocks[(e.offset + r) * d + e.offset + c] = full[(e.offset + r) * d + e.offset + c]!;
  }
  const errDiag = relativeError(diag.values(), Float64Array.from({ length: d }, (_, i) => full[i * d + i]!));
  const errBlocks = relativeError(host(bd.toTensor()), blocks);
  t.diagnostic(`mv ${errMv.toExponential(2)}, vTMv ${errQuad.toExponential(2)}, solve ${errSolve.toExponential(2)}, diag ${errDiag.toExponential(2)}, blocks ${errBlocks.toExponential(2)}`);
  assert.ok(errMv < 1e-4 && errQuad < 1e-4, `mv ${errMv}, vTMv ${errQuad}`);
  assert.ok(errSolve < 1e-3, `solve ${errSolve}`);
  assert.ok(errDiag < 1e-6 && errBlocks < 1e-6, `diag ${errDiag}, blocks ${errBlocks}`);
  [dense, v, mvI, xD, xI, diag, bd].forEach((m) => m.dispose());
  model.dispose();
  disposeBatches(batches);
});

/** Small models covering every layer class and activation the Hessian accepts. */
function zoo(): Array<[string, tf.LayersModel]> {
  let seed = 300;
  const init = () => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed: seed++ });
  const dense = (units: number, activation = 'linear', extra = {}) =>
    tf.layers.dense({ units, activation: activation as never, kernelInitializer: init(), biasInitializer: init(), ...extra });
  const seq = (layers: tf.layers.Layer[]) => tf.sequential({ layers });
  const image = (extra: tf.layers.Layer[]) =>
    seq([
      tf.layers.conv2d({ filters: 3, kernelSize: 2, inputShape: [5, 5, 2], activation: 'tanh', kernelInitializer: init(), biasInitializer: init() }),
      ...extra,
      tf.layers.flatten(),
      dense(3),
    ]);
  const frozen = (l: tf.layers.Layer) => ((l.trainable = false), l);
  const activations = ['elu', 'selu', 'relu6', 'sigmoid', 'hardSigmoid', 'softplus', 'softsign', 'swish', 'mish', 'gelu', 'gelu_new', 'softmax'];
  const x = tf.input({ shape: [5] });
  const a = dense(4, 'tanh').apply(x) as tf.SymbolicTensor;
  const b = dense(4, 'sigmoid').apply(x) as tf.SymbolicTensor;
  const merged = [tf.layers.multiply().apply([a, b]), tf.layers.average().apply([a, b]), tf.layers.concatenate().apply([a, b])] as tf.SymbolicTensor[];
  const out = dense(3).apply(tf.layers.concatenate().apply(merged) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const img = tf.input({ shape: [4, 4, 2] });
  const features = tf.layers.conv2d({ filters: 3, kernelSize: 2, activation: 'tanh', kernelInitializer: init(), biasInitializer: init() }).apply(img) as tf.SymbolicTensor;
  const pooled = [tf.layers.globalAveragePooling2d({}).apply(features), tf.layers.globalMaxPooling2d({}).apply(features)] as tf.SymbolicTensor[];
  return [
    ...activations.map((act): [string, tf.LayersModel] => [`activation ${act}`, seq([dense(6, act, { inputShape: [5] }), dense(3)])]),
    ['Activation, ReLU, LeakyReLU, ELU, Softmax layers', seq([dense(6, 'linear', { inputShape: [5] }), tf.layers.activation({ activation: 'tanh' }), dense(6), tf.layers.leakyReLU({ alpha: 0.3 }), dense(6), tf.layers.elu({}), dense(6), tf.layers.reLU({}), dense(4), tf.layers.softmax({}), dense(3)])],
    ['Multiply, Average, Concatenate', tf.model({ inputs: x, outputs: out })],
    ['Reshape, Permute, Dropout, SpatialDropout1D, GaussianNoise, GaussianDropout, AlphaDropout, GlobalAverage/MaxPooling1D', seq([
      dense(12, 'tanh', { inputShape: [5] }), tf.layers.reshape({ targetShape: [4, 3] }), tf.layers.permute({ dims: [2, 1] }), tf.layers.dropout({ rate: 0.5 }),
      tf.layers.spatialDropout1d({ rate: 0.5 }), tf.layers.gaussianNoise({ stddev: 1 }), tf.layers.gaussianDropout({ rate: 0.3 }), tf.layers.alphaDropout({ rate: 0.3 }),
      dense(4, 'tanh'), tf.layers.globalMaxPooling1d({}), dense(3)])],
    ['GlobalAveragePooling1D, LayerNormalization', seq([dense(12, 'tanh', { inputShape: [5] }), tf.layers.reshape({ targetShape: [3, 4] }), frozen(tf.layers.layerNormalization({})), tf.layers.globalAveragePooling1d({}), dense(3)])],
    ['ZeroPadding2D, Cropping2D, AveragePooling2D, BatchNormalization', image([tf.layers.zeroPadding2d({ padding: 1 }), tf.layers.cropping2D({ cropping: [[1, 0], [0, 1]] }), tf.layers.averagePooling2d({ poolSize: 2 }), frozen(tf.layers.batchNormalization({ movingMeanInitializer: 'randomNormal', movingVarianceInitializer: 'ones' }))])],
    ['GlobalAveragePooling2D, GlobalMaxPooling2D', tf.model({ inputs: img, outputs: dense(3).apply(tf.layers.concatenate().apply(pooled) as tf.SymbolicTensor) as tf.SymbolicTensor })],
  ];
}

test('every layer class the Hessian accepts has H·dw = central difference of gradients (rel. 1e-3)', async (t) => {
  for (const [name, model] of zoo()) {
    const batches = randomBatches(model, 6, 3);
    const err = await finiteDifferenceError(model, batches);
    t.diagnostic(`${name}: ${err.toExponential(2)}`);
    assert.ok(err < 1e-3, `${name}: relative error ${err}`);
    model.dispose();
    disposeBatches(batches);
  }
});

/** Models whose first trainable layer is collected through each layer kind other than Dense. */
function kinds(): Array<[string, tf.LayersModel, boolean]> {
  let seed = 500;
  const init = () => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed: seed++ });
  const dense = (units: number, extra = {}) => tf.layers.dense({ units, kernelInitializer: init(), biasInitializer: init(), ...extra });
  const seq = (layers: tf.layers.Layer[]) => tf.sequential({ layers });
  const conv = { activation: 'tanh' as const, biasInitializer: init() };
  return [
    ['conv1d', seq([tf.layers.conv1d({ filters: 3, kernelSize: 2, inputShape: [6, 2], kernelInitializer: init(), ...conv }), tf.layers.flatten(), dense(3)]), false],
    ['conv2d_transpose', seq([tf.layers.conv2dTranspose({ filters: 2, kernelSize: 2, strides: 2, inputShape: [3, 3, 2], kernelInitializer: init(), ...conv }), tf.layers.flatten(), dense(3)]), false],
    ['depthwise_conv2d', seq([tf.layers.depthwiseConv2d({ kernelSize: 2, depthMultiplier: 2, inputShape: [4, 4, 2], depthwiseInitializer: init(), ...conv }), tf.layers.flatten(), dense(3)]), false],
    ['separable_conv2d', seq([tf.layers.separableConv2d({ filters: 3, kernelSize: 2, inputShape: [4, 4, 2], depthwiseInitializer: init(), pointwiseInitializer: init(), ...conv }), tf.layers.flatten(), dense(3)]), false],
    ['batch_normalization', seq([dense(6, { inputShape: [5], activation: 'tanh' }), tf.layers.batchNormalization({ gammaInitializer: init(), betaInitializer: init(), movingMeanInitializer: 'randomNormal', movingVarianceInitializer: 'ones' }), tf.layers.activation({ activation: 'tanh' }), dense(3)]), false],
    ['layer_normalization', seq([dense(6, { inputShape: [5] }), tf.layers.layerNormalization({ gammaInitializer: init(), betaInitializer: init() }), tf.layers.activation({ activation: 'tanh' }), dense(3)]), false],
    ['embedding', seq([tf.layers.embedding({ inputDim: 10, outputDim: 4, inputLength: 3, embeddingsInitializer: init() }), tf.layers.flatten(), dense(5, { activation: 'tanh' }), dense(3)]), true],
    ['prelu', seq([dense(6, { inputShape: [5] }), tf.layers.prelu({ alphaInitializer: init() }), dense(3)]), false],
  ];
}

test('every layer kind the Hessian accepts, collected or traversed frozen, has H·dw = central difference of gradients (‖dw‖ = 1e-2, rel. 1e-3)', async (t) => {
  for (const [name, model, integerInputs] of kinds()) {
    const shape = model.inputs[0]!.shape.slice(1) as number[];
    const batches = [0, 1].map((k) => ({
      xs: integerInputs ? tf.randomUniform([4, ...shape], 0, 10, 'int32', k + 1) : tf.randomNormal([4, ...shape], 0, 1, 'float32', k + 1),
      ys: tf.randomUniform([4], 0, 3, 'int32', 10 + k),
    }));
    const all = LayerCollection.fromModel(model);
    assert.ok(all.layers.some((e) => e.kind.name === name), `${name} is collected`);
    const lastOnly = LayerCollection.fromLayers(model, [all.ids()[all.ids().length - 1]!]);
    const errAll = await finiteDifferenceError(model, batches, all, 1e-2);
    const errFrozen = await finiteDifferenceError(model, batches, lastOnly, 1e-2);
    t.diagnostic(`${name}: collected ${errAll.toExponential(2)}, traversed ${errFrozen.toExponential(2)}`);
    assert.ok(errAll < 1e-3 && errFrozen < 1e-3, `${name}: relative errors ${errAll}, ${errFrozen}`);
    model.dispose();
    disposeBatches(batches);
  }
});

function convThen(layer: tf.layers.Layer): tf.Sequential {
  return tf.sequential({
    layers: [tf.layers.conv2d({ filters: 2, kernelSize: 2, inputShape: [5, 5, 1], activation: 'tanh' }), layer, tf.layers.flatten(), tf.layers.dense({ units: 3 })],
  });
}

async function rejects(f: () => Promise<unknown>, type: new (...a: never[]) => Error, pattern: RegExp): Promise<void> {
  const n0 = tf.memory().numTensors;
  await assert.rejects(f, (e: Error) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
  assert.equal(tf.memory().numTensors, n0, 'tensors leaked on the error path');
}

test('layers tfjs cannot differentiate twice get an UnsupportedLayerError naming the layer and the op; layers before the collection do not matter', async (t) => {
  for (const [layer, op] of [
    [tf.layers.maxPooling2d({ poolSize: 2 }), 'MaxPoolGrad'],
    [tf.layers.upSampling2d({ size: [2, 2] }), 'ResizeNearestNeighborGrad'],
  ] as const) {
    const model = convThen(layer);
    const batches = randomBatches(model, 4, 4);
    const H = await Hessian({ model, loader: batches, loss: 'cross_entropy', representation: PMatImplicit });
    const v = PVector.random(H.layerCollection, 1);
    await rejects(() => H.mv(v), UnsupportedLayerError, new RegExp(`'${op}'.*'${layer.name}' \\(${layer.getClassName()}\\)`));
    await rejects(() => Hessian({ model, loader: batches, loss: 'cross_entropy', representation: PMatDense }), UnsupportedLayerError, new RegExp(op));
    // With only the Dense layer after it collected, the pooling layer is off the differentiated path.
    const lc = LayerCollection.fromLayers(model, [model.layers[3]!.name]);
    const err = await finiteDifferenceError(model, batches, lc, 1e-2);
    t.diagnostic(`${layer.getClassName()} before the collection: ${err.toExponential(2)}`);
    assert.ok(err < 1e-3, `relative error ${err}`);
    v.dispose();
    model.dispose();
    disposeBatches(batches);
  }
});

test('silently wrong second derivatives are refused up front: logSoftmax activation, unverified layer classes and kinds, custom-gradient losses', async () => {
  const xs = tf.randomNormal([4, 5], 0, 1, 'float32', 1);
  const ys = tf.tensor1d([0, 1, 2, 3], 'int32');
  const loader = { xs, ys };
  const logsm = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [5], activation: 'logSoftmax' as never })] });
  await rejects(() => Hessian({ model: logsm, loader, loss: 'cross_entropy', representation: PMatDense }), UnsupportedLayerError, new RegExp(`'${logsm.layers[0]!.name}'.*logSoftmax`));
  const custom = mlp({ head: 'logsoftmax' });
  await rejects(() => Hessian({ model: custom, loader, loss: 'cross_entropy', representation: PMatDense }), UnsupportedLayerError, /LogSoftmaxForTests.*allowUnverifiedLayers/);
  const rnn = tf.sequential({ layers: [tf.layers.simpleRNN({ units: 3, inputShape: [2, 5] }), tf.layers.dense({ units: 4 })] });
  const seqLoader = { xs: tf.randomNormal([4, 2, 5]), ys };
  await rejects(() => Hessian({ model: rnn, loader: seqLoader, loss: 'cross_entropy', representation: PMatDense }), UnsupportedLayerError, /layer kind 'generic'.*allowUnverifiedLayers/);
  seqLoader.xs.dispose();
  rnn.dispose();
  const model = mlp();
  const tfjsLoss = (y: tf.Tensor, f: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.cast(y, 'int32'), 4), f, undefined, 0, tf.Reduction.NONE);
  await rejects(() => Hessian({ model, loader, loss: tfjsLoss, representation: PMatDense }), InvalidArgumentError, /custom gradient/);
  const im = await Hessian({ model, loader, loss: tfjsLoss, representation: PMatImplicit });
  const v = PVector.random(im.layerCollection, 2);
  await rejects(() => im.mv(v), InvalidArgumentError, /custom gradient/);
  [xs, ys, v].forEach((x) => x.dispose());
  [logsm, custom, model].forEach((m) => m.dispose());
});

test('a loss written with elementary ops gives the same Hessian as the built-in cross_entropy (rel. 1e-5)', async (t) => {
  const model = residual();
  const batches = randomBatches(model, 6, 6);
  const manual = (y: tf.Tensor, f: tf.Tensor) => {
    const lse = tf.log(tf.sum(tf.exp(f), 1));
    return tf.sub(lse, tf.sum(tf.mul(tf.oneHot(tf.cast(y, 'int32'), f.shape[1]!), f), 1));
  };
  const a = await Hessian({ model, loader: batches, loss: manual, representation: PMatDense });
  const b = await Hessian({ model, loader: batches, loss: 'cross_entropy', representation: PMatDense });
  const err = relativeError(a.values(), b.values());
  t.diagnostic(`relative error ${err.toExponential(2)}`);
  assert.ok(err < 1e-5, `relative error ${err}`);
  [a, b].forEach((m) => m.dispose());
  model.dispose();
  disposeBatches(batches);
});

test('bad options get typed errors naming the option', async () => {
  const model = mlp();
  const xs = tf.randomNormal([4, 5], 0, 1, 'float32', 1);
  const ys = tf.tensor1d([0, 1, 2, 3], 'int32');
  const base = { model, loader: { xs, ys }, loss: 'cross_entropy' as const, representation: PMatDense };
  await rejects(() => Hessian({ ...base, loss: undefined as never }), InvalidArgumentError, /needs option 'loss'.*undefined/);
  await rejects(() => Hessian({ ...base, loss: 'hinge' as never }), InvalidArgumentError, /'loss'.*"hinge"/);
  await rejects(() => Hessian({ ...base, loader: { xs } }), InvalidArgumentError, /needs targets/);
  await rejects(() => Hessian({ ...base, representation: PMatLowRank as never }), InvalidArgumentError, /PMatLowRank.*not supported/);
  await rejects(() => Hessian({ ...base, allowUnverifiedLayers: 'yes' as never }), InvalidArgumentError, /'allowUnverifiedLayers'/);
  await rejects(() => Hessian({ ...base, model: undefined as never }), InvalidArgumentError, /'model'/);
  const other = PVector.random(LayerCollection.fromModel(cnn()), 1);
  const im = await Hessian({ ...base, representation: PMatImplicit });
  await rejects(() => im.mv(other), LayerCollectionMismatchError, /PMatHessianImplicit\.mv/);
  [xs, ys, other].forEach((x) => x.dispose());
  model.dispose();
});
