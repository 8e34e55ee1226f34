/**
 * Tiny seeded models and data shared by the tests: every weight comes from a seeded
 * initializer so that results are reproducible.
 */
import { tf } from '../../src/tf.js';

let seed = 1;
const init = () => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed: seed++ });

/** Dense options with seeded kernel and (non-zero) bias. */
function dense(units: number, extra: Partial<Parameters<typeof tf.layers.dense>[0]> = {}): tf.layers.Layer {
  return tf.layers.dense({ units, kernelInitializer: init(), biasInitializer: init(), ...extra });
}

function conv(filters: number, extra: Partial<Parameters<typeof tf.layers.conv2d>[0]>): tf.layers.Layer {
  return tf.layers.conv2d({ filters, kernelSize: 3, kernelInitializer: init(), biasInitializer: init(), ...extra });
}

/** log-softmax as a layer (tfjs-layers has no such activation). */
class LogSoftmax extends tf.layers.Layer {
  static className = 'LogSoftmaxForTests';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.logSoftmax(Array.isArray(inputs) ? inputs[0]! : inputs);
  }
}
tf.serialization.registerClass(LogSoftmax);

export type OutputHead = 'logits' | 'logsoftmax' | 'probs';

/** MLP 5 → 7 (tanh) → 4. */
export function mlp(options: { bias?: boolean; head?: OutputHead } = {}): tf.Sequential {
  const useBias = options.bias ?? true;
  const m = tf.sequential();
  m.add(dense(7, { inputShape: [5], activation: 'tanh', useBias }));
  m.add(dense(4, { useBias, activation: options.head === 'probs' ? 'softmax' : 'linear' }));
  if (options.head === 'logsoftmax') m.add(new LogSoftmax({}));
  return m;
}

/** CNN [6,6,2] → conv3x3 stride 2 same (relu) → conv valid (k2, dilation or not) → flatten → dense 3. */
export function cnn(options: { dilation?: number } = {}): tf.Sequential {
  const m = tf.sequential();
  m.add(conv(3, { inputShape: [6, 6, 2], strides: 2, padding: 'same', activation: 'relu' }));
  if (options.dilation && options.dilation > 1) {
    m.add(conv(2, { kernelSize: 2, padding: 'same', dilationRate: options.dilation }));
  } else {
    m.add(conv(2, { kernelSize: 2, padding: 'valid', activation: 'tanh' }));
  }
  m.add(tf.layers.flatten());
  m.add(dense(3));
  return m;
}

/** Functional model with a residual add: x → d1 (relu) → d2; out = dense(d1 + d2). */
export function residual(): tf.LayersModel {
  const x = tf.input({ shape: [5] });
  const h1 = dense(6, { activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  const h2 = dense(6, { activation: 'tanh' }).apply(h1) as tf.SymbolicTensor;
  const sum = tf.layers.add().apply([h1, h2]) as tf.SymbolicTensor;
  const out = dense(3).apply(sum) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out });
}

/** Dense on sequences [n, T=3, 4] → dense 5 (tanh), flattened → dense 3. */
export function sequenceDense(): tf.Sequential {
  const m = tf.sequential();
  m.add(dense(5, { inputShape: [3, 4], activation: 'tanh' }));
  m.add(tf.layers.flatten());
  m.add(dense(3));
  return m;
}

/** A functional model wrapping a nested Sequential between two Dense layers. */
export function nested(): tf.LayersModel {
  const inner = tf.sequential({ name: `inner_${seed}` });
  inner.add(dense(4, { inputShape: [6], activation: 'tanh' }));
  inner.add(dense(5));
  const x = tf.input({ shape: [3] });
  const h = dense(6, { activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  const y = inner.apply(h) as tf.SymbolicTensor;
  const out = dense(2).apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out });
}

/** Seeded standard-normal inputs of the model's input shape, split in batches. */
export function randomBatches(model: tf.LayersModel, n: number, batchSize: number, dataSeed = 7): Array<{ xs: tf.Tensor; ys: tf.Tensor }> {
  const shape = model.inputs[0]!.shape.slice(1) as number[];
  const outDim = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }> = [];
  for (let start = 0, k = 0; start < n; start += batchSize, k++) {
    const b = Math.min(batchSize, n - start);
    batches.push({
      xs: tf.randomNormal([b, ...shape], 0, 1, 'float32', dataSeed + k),
      ys: tf.randomUniform([b], 0, outDim, 'int32', dataSeed + 100 + k),
    });
  }
  return batches;
}

export function disposeBatches(batches: Array<{ xs: tf.Tensor; ys?: tf.Tensor }>): void {
  for (const b of batches) tf.dispose([b.xs, ...(b.ys ? [b.ys] : [])]);
}

/**
 * Models whose shared-position layers see inputs and output gradients constant over positions
 * when fed constant inputs: a 'valid' conv (no zero padding at the borders) or a Dense on
 * sequences, followed by global average pooling (so every position gets the same gradient).
 */
export function constantPositionsConv(): tf.Sequential {
  const m = tf.sequential();
  m.add(conv(3, { inputShape: [5, 5, 2], padding: 'valid', activation: 'linear' }));
  m.add(tf.layers.globalAveragePooling2d({}));
  m.add(dense(3));
  return m;
}

export function constantPositionsSequence(): tf.Sequential {
  const m = tf.sequential();
  m.add(dense(4, { inputShape: [3, 2] }));
  m.add(tf.layers.globalAveragePooling1d({}));
  m.add(dense(3));
  return m;
}
