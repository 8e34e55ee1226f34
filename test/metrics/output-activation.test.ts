/**
 * Keras-style classifiers end in a softmax: FIM and FIMMonteCarlo refuse a variant that would
 * misread the final activation's output (probabilities as logits, log-probabilities as
 * probabilities, a sigmoid's probabilities as Bernoulli logits), naming the layer and the
 * variant to use — a layer's own activation, an Activation layer, a Softmax layer, inside a
 * nested model — and the variant they name gives the Fisher of the same network on its logits
 * (the softmax moved out of the model). The CLI follows the same rule.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import { FIM, FIMMonteCarlo, InvalidArgumentError, PMatDense, saveModel, type Variant } from '../../src/index.js';
import { finalActivation } from '../../src/metrics/output-activation.js';
import { main } from '../../src/cli/main.js';
import { useTestBackend } from '../support/backend.js';

before(async () => {
  await useTestBackend();
});

const init = (seed: number) => tf.initializers.glorotNormal({ seed });
/** Dense 5 → tanh → Dense 4 with `activation` (the logits network when 'linear'). */
function classifier(activation: 'linear' | 'softmax' | 'sigmoid'): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({ units: 5, inputShape: [3], activation: 'tanh', kernelInitializer: init(1) }),
      tf.layers.dense({ units: 4, activation, kernelInitializer: init(2), biasInitializer: tf.initializers.randomNormal({ seed: 3 }) }),
    ],
  });
}
/** The logits network followed by an Activation layer (functional), or a Softmax layer. */
function withActivationLayer(kind: 'softmax' | 'logSoftmax' | 'Softmax layer'): tf.LayersModel {
  const input = tf.input({ shape: [3] });
  const logits = classifier('linear').apply(input) as tf.SymbolicTensor;
  const layer = kind === 'Softmax layer' ? tf.layers.softmax() : tf.layers.activation({ activation: kind as 'softmax' });
  return tf.model({ inputs: input, outputs: layer.apply(logits) as tf.SymbolicTensor });
}
const xs = () => [tf.tensor2d(Array.from({ length: 24 }, (_, k) => Math.sin(1.7 * k)), [8, 3]), tf.tensor2d(Array.from({ length: 18 }, (_, k) => Math.cos(0.9 * k)), [6, 3])];

async function dense(model: tf.LayersModel, variant: Variant): Promise<Float64Array> {
  const batches = xs().map((x) => ({ xs: x }));
  try {
    const F = await FIM({ model, loader: batches, representation: PMatDense, variant });
    const values = Float64Array.from(F.values());
    F.dispose();
    return values;
  } finally {
    batches.forEach((b) => b.xs.dispose());
  }
}
function relativeError(a: Float64Array, b: Float64Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}
/** Runs `metric` on fresh batches; expects InvalidArgumentError and no tensor left behind; returns its message. */
async function refusal(metric: (loader: Array<{ xs: tf.Tensor }>) => Promise<unknown>): Promise<string> {
  const loader = xs().map((x) => ({ xs: x }));
  const before = tf.memory().numTensors;
  const error = await metric(loader).then(() => undefined, (e: unknown) => e);
  assert.equal(tf.memory().numTensors, before, 'a refusal leaks nothing');
  loader.forEach((b) => b.xs.dispose());
  assert.ok(error instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(error)}`);
  return error.message;
}

test('finalActivation finds a layer activation, an Activation layer, a Softmax layer and one inside a nested model', () => {
  const models = {
    softmax: classifier('softmax'),
    sigmoid: classifier('sigmoid'),
    linear: classifier('linear'),
    activationLayer: withActivationLayer('softmax'),
    logSoftmax: withActivationLayer('logSoftmax'),
    softmaxLayer: withActivationLayer('Softmax layer'),
  };
  // A classifier used as a layer of a functional model: the output's source layer is the inner model.
  const input = tf.input({ shape: [3] });
  const nested = tf.model({ inputs: input, outputs: classifier('softmax').apply(input) as tf.SymbolicTensor });
  assert.equal(finalActivation(models.softmax)?.activation, 'softmax');
  assert.equal(finalActivation(models.softmax)?.layer, models.softmax.layers[1]!.name);
  assert.equal(finalActivation(models.sigmoid)?.activation, 'sigmoid');
  assert.equal(finalActivation(models.linear), undefined);
  assert.equal(finalActivation(models.activationLayer)?.activation, 'softmax');
  assert.equal(finalActivation(models.logSoftmax)?.activation, 'log_softmax');
  assert.equal(finalActivation(models.softmaxLayer)?.activation, 'softmax');
  assert.equal(finalActivation(nested)?.activation, 'softmax');
  [...Object.values(models), nested].forEach((m) => m.dispose());
});

test('a softmax classifier: classif_logits (the default) is refused naming classif_probs, which equals the logits Fisher of the network without the softmax', async () => {
  const probs = classifier('softmax');
  const logits = classifier('linear');
  for (const model of [probs, withActivationLayer('softmax'), withActivationLayer('Softmax layer')]) {
    for (const variant of ['classif_logits', 'classif_logsoftmax', 'classif_binary_logits'] as const) {
      const message = await refusal((loader) => FIM({ model, loader, representation: PMatDense, variant }));
      assert.match(message, new RegExp(`ends in a softmax \\(layer '${model.layers[model.layers.length - 1]!.name}'\\).*use variant 'classif_probs'`));
    }
    if (model !== probs) model.dispose();
  }
  const message = await refusal((loader) => FIM({ model: probs, loader, representation: PMatDense }));
  assert.match(message, /variant 'classif_logits' would misread as logits/);
  // Same weights (same seeds): the softmax network read as probabilities = the logits network read as logits.
  const err = relativeError(await dense(probs, 'classif_probs'), await dense(logits, 'classif_logits'));
  assert.ok(err < 1e-4, `classif_probs on the softmax model vs classif_logits on its logits: ${err}`);
  probs.dispose();
  logits.dispose();
});

test('a log-softmax classifier: classif_probs is refused; classif_logits and classif_logsoftmax are both exact', async () => {
  const model = withActivationLayer('logSoftmax');
  const logits = classifier('linear');
  assert.match(await refusal((loader) => FIM({ model, loader, representation: PMatDense, variant: 'classif_probs' })), /ends in a log-softmax.*classif_logsoftmax/);
  const reference = await dense(logits, 'classif_logits');
  for (const variant of ['classif_logits', 'classif_logsoftmax'] as const) {
    const err = relativeError(await dense(model, variant), reference);
    assert.ok(err < 1e-4, `${variant} on log-probabilities: ${err}`);
  }
  model.dispose();
  logits.dispose();
});

test('a sigmoid output: Bernoulli logits and classification variants are refused with the way out; regression is accepted', async () => {
  const model = classifier('sigmoid');
  for (const variant of ['classif_binary_logits', 'classif_logits', 'classif_probs'] as const) {
    assert.match(await refusal((loader) => FIM({ model, loader, representation: PMatDense, variant })), /ends in a sigmoid.*activation 'linear'.*classif_binary_logits/);
  }
  assert.ok((await dense(model, 'regression')).some((v) => v !== 0));
  model.dispose();
});

test('FIMMonteCarlo follows the same rule', async () => {
  const model = classifier('softmax');
  assert.match(await refusal((loader) => FIMMonteCarlo({ model, loader, representation: PMatDense, variant: 'classif_logits', seed: 1 })), /use variant 'classif_probs'/);
  model.dispose();
});

test("the CLI refuses a softmax model's default variant with the same message (exit code 2) and computes --variant classif_probs", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-softmax-'));
  const model = classifier('softmax');
  const errors: string[] = [];
  const error = console.error;
  const log = console.log;
  try {
    await saveModel(model, join(dir, 'model'));
    writeFileSync(join(dir, 'x.json'), JSON.stringify(Array.from({ length: 6 }, (_, i) => [Math.sin(i), Math.cos(i), 0.5])));
    console.error = (...a: unknown[]) => void errors.push(a.join(' '));
    console.log = () => undefined;
    const args = ['fim', '--model', join(dir, 'model'), '--data', join(dir, 'x.json'), '--representation', 'dense', '--backend', 'cpu', '--quiet'];
    assert.equal(await main(args), 2);
    assert.equal(await main([...args, '--variant', 'classif_probs', '--json', join(dir, 'f.json')]), 0);
  } finally {
    console.error = error;
    console.log = log;
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(errors.join('\n'), /^nngeometry: .*ends in a softmax.*use variant 'classif_probs'/m);
});
