/**
 * The models and seeded data of `npm run bench` (issue 6):
 * - MLP 784-512-512-10 (relu), 2,048 examples;
 * - CNN 28x28x1 → conv3x3x16 same → conv3x3x32 stride 2 → dense 10, 1,024 examples;
 * - residual CNN on 32x32x3 with BatchNormalization, 512 examples (see `residualCnn`);
 * - CNN 32x32x3 → conv3x3x16 same → conv3x3x32 stride 2 valid → conv3x3x64 stride 2 valid (relu
 *   after each) → global average pooling → dense 10, 1,024 examples (see `cnn32`).
 * Every batch has 128 examples; inputs are N(0, 1), labels uniform in 0..9, both seeded (tfjs
 * treats seed 0 as "no seed", so every seed here is ≥ 1).
 */
import * as tf from '@tensorflow/tfjs';

/** One batch of the bench: inputs and integer labels. */
export interface BenchBatch {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

/** A workload: a model, its data and the sizes the tables and memory formulas report. */
export interface Workload {
  /** Short name used in the tables and the JSON, e.g. 'MLP 784-512-512-10'. */
  name: string;
  /** One line on the architecture. */
  description: string;
  model: tf.LayersModel;
  /** Batches of `batch` examples, `examples` in all. */
  loader: BenchBatch[];
  examples: number;
  batch: number;
}

export const BATCH = 128;

/** `examples` seeded examples of the model's input shape, in batches of BATCH. */
export function seededData(model: tf.LayersModel, examples: number, seed: number): BenchBatch[] {
  const shape = model.inputs[0]!.shape.slice(1) as number[];
  return Array.from({ length: Math.ceil(examples / BATCH) }, (_, k) => {
    const b = Math.min(BATCH, examples - k * BATCH);
    return {
      xs: tf.randomNormal([b, ...shape], 0, 1, 'float32', seed + 2 * k + 1),
      ys: tf.randomUniform([b], 0, 10, 'int32', seed + 2 * k + 2),
    };
  });
}

export function mlp(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 512, inputShape: [784], activation: 'relu' }));
  m.add(tf.layers.dense({ units: 512, activation: 'relu' }));
  m.add(tf.layers.dense({ units: 10 }));
  return m;
}

export function cnn(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [28, 28, 1] }));
  m.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, activation: 'relu' }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 10 }));
  return m;
}

/**
 * The convolutional workload whose NNGeometry times are the anchors of the CNN rows:
 * 32x32x3 → conv3x3x16 same relu (32x32) → conv3x3x32 stride 2 valid relu (15x15) →
 * conv3x3x64 stride 2 valid relu (7x7) → global average pooling → dense 10 (d = 24,490).
 */
export function cnn32(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [32, 32, 3] }));
  m.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu' }));
  m.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu' }));
  m.add(tf.layers.globalAveragePooling2d({}));
  m.add(tf.layers.dense({ units: 10 }));
  return m;
}

/**
 * A small residual CNN on 32x32x3 (functional model):
 * conv3x3x16 stride 2 same (no bias) → BN → relu → [conv3x3x16 → BN → relu → conv3x3x16 → BN]
 * + skip → relu → conv3x3x32 stride 2 same → relu → global average pooling → dense 10.
 * The first convolution has stride 2 (16x16 maps in the residual block) to keep the whole bench
 * under 15 minutes: per-example convolution gradients at 32x32 cost 4× as much. The BN layers'
 * moving statistics and γ, β are set to seeded non-trivial values (a fresh layer has μ = 0,
 * σ² = 1, γ = 1, β = 0, which would hide mistakes in the normalisation).
 */
export function residualCnn(): tf.LayersModel {
  const conv = (filters: number, strides = 1) => tf.layers.conv2d({ filters, kernelSize: 3, strides, padding: 'same', useBias: false });
  const bns: tf.layers.Layer[] = [];
  const bn = () => {
    const layer = tf.layers.batchNormalization();
    bns.push(layer);
    return layer;
  };
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const input = tf.input({ shape: [32, 32, 3] });
  const stem = apply(tf.layers.reLU(), apply(bn(), apply(conv(16, 2), input)));
  let r = apply(tf.layers.reLU(), apply(bn(), apply(conv(16), stem)));
  r = apply(bn(), apply(conv(16), r));
  let h = apply(tf.layers.reLU(), apply(tf.layers.add(), [stem, r]));
  h = apply(tf.layers.reLU(), apply(tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: 'same' }), h));
  h = apply(tf.layers.globalAveragePooling2d({}), h);
  const model = tf.model({ inputs: input, outputs: apply(tf.layers.dense({ units: 10 }), h) });
  bns.forEach((layer, i) => {
    const c = 16;
    const s = 1000 + 10 * i;
    layer.setWeights([
      tf.randomUniform([c], 0.5, 1.5, 'float32', s + 1), // γ
      tf.randomNormal([c], 0, 0.1, 'float32', s + 2), // β
      tf.randomNormal([c], 0, 0.2, 'float32', s + 3), // moving mean
      tf.randomUniform([c], 0.5, 2, 'float32', s + 4), // moving variance
    ]);
  });
  return model;
}

/** The workloads of `npm run bench`; `quick` uses 256 examples each. */
export function workloads(quick: boolean): Workload[] {
  const make = (name: string, description: string, model: tf.LayersModel, examples: number, seed: number): Workload => ({
    name,
    description,
    model,
    loader: seededData(model, quick ? 256 : examples, seed),
    examples: quick ? 256 : examples,
    batch: BATCH,
  });
  return [
    make('MLP 784-512-512-10', 'Dense 784→512 relu → 512 relu → 10', mlp(), 2048, 0),
    make('CNN 28x28x1-c16-c32s2-10', 'conv3x3x16 same relu → conv3x3x32 stride 2 relu → flatten → dense 10', cnn(), 1024, 100),
    make(
      'ResNet 32x32x3-BN',
      'conv3x3x16 s2 + BN + relu → residual block (2 × conv3x3x16 + BN, add, relu) → conv3x3x32 s2 relu → global average pooling → dense 10',
      residualCnn(),
      512,
      200,
    ),
    make('CNN 32x32x3', 'conv3x3x16 same relu → conv3x3x32 s2 valid relu → conv3x3x64 s2 valid relu → global average pooling → dense 10', cnn32(), 1024, 300),
  ];
}

export function disposeWorkload(w: Workload): void {
  w.loader.forEach((b) => tf.dispose([b.xs, b.ys]));
  w.model.dispose();
}

/**
 * One plain training step over `batches`, the unit the bench divides by: for each batch the
 * gradient of the mean softmax cross-entropy of the logits with respect to every trainable weight
 * (tf.variableGrads, forward and backward), its value read back, everything released.
 */
export function plainStep(model: tf.LayersModel, batches: BenchBatch[]): () => void {
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  return () => {
    for (const { xs, ys } of batches) {
      const { value, grads } = tf.variableGrads(
        () => tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(ys, 10), model.apply(xs) as tf.Tensor) as tf.Scalar),
        vars,
      );
      value.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
    }
  };
}
