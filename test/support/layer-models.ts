/**
 * Tiny seeded models for the layer kinds of issue 4 (one or two layers of the kind under test,
 * then a Dense head) and the three end-to-end architectures (residual CNN with
 * BatchNormalization, transformer-style block, LSTM classifier). Every weight, including the
 * BatchNormalization moving statistics, comes from a seeded initializer or is set from seeded
 * values, so that results are reproducible and no parameter sits at a special value (γ = 1,
 * β = 0, α = 0) that could hide a layout error.
 */
import { tf } from '../../src/tf.js';

let seed = 1000;
const init = (stddev = 0.5) => tf.initializers.randomNormal({ mean: 0, stddev, seed: seed++ });
const positive = () => tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed++ });

/** Seeded uniform values in [lo, hi) of the given shape. */
function uniform(shape: number[], lo: number, hi: number): tf.Tensor {
  return tf.randomUniform(shape, lo, hi, 'float32', seed++);
}

function dense(units: number, extra: Partial<Parameters<typeof tf.layers.dense>[0]> = {}): tf.layers.Layer {
  return tf.layers.dense({ units, kernelInitializer: init(), biasInitializer: init(), ...extra });
}

/** Sets random moving statistics on every BatchNormalization layer of the model. */
function randomiseMovingStatistics(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const weights = layer.getWeights();
    const fresh = weights.map((w, k) => {
      const isVariance = layer.weights[k]!.name.endsWith('moving_variance');
      const isMean = layer.weights[k]!.name.endsWith('moving_mean');
      if (isVariance) return uniform(w.shape, 0.5, 2);
      if (isMean) return uniform(w.shape, -0.5, 0.5);
      return w.clone();
    });
    layer.setWeights(fresh);
    tf.dispose(fresh); // getWeights returns the variables' own tensors: not ours to dispose
  }
}

function head(m: tf.Sequential, outputs = 3): tf.Sequential {
  m.add(tf.layers.flatten());
  m.add(dense(outputs));
  return m;
}

export function conv1dModel(options: { dilation?: number } = {}): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv1d({ inputShape: [7, 2], filters: 3, kernelSize: 3, padding: 'same', activation: 'tanh', kernelInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.conv1d({ filters: 2, kernelSize: 2, strides: options.dilation ? 1 : 2, padding: 'valid', dilationRate: options.dilation ?? 1, kernelInitializer: init(), biasInitializer: init() }));
  return head(m);
}

export function conv2dTransposeModel(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv2dTranspose({ inputShape: [3, 3, 2], filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.conv2dTranspose({ filters: 2, kernelSize: 2, strides: 3, padding: 'valid', useBias: false, kernelInitializer: init() }));
  m.add(tf.layers.conv2d({ filters: 2, kernelSize: 3, strides: 3, kernelInitializer: init(), biasInitializer: init() }));
  return head(m);
}

export function depthwiseModel(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.depthwiseConv2d({ inputShape: [5, 5, 2], kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'tanh', depthwiseInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.depthwiseConv2d({ kernelSize: 2, strides: 2, padding: 'valid', useBias: false, depthwiseInitializer: init() }));
  return head(m);
}

export function separableModel(options: { dilation?: number } = {}): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.separableConv2d({ inputShape: [5, 5, 2], filters: 3, kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'tanh', depthwiseInitializer: init(), pointwiseInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.separableConv2d({ filters: 2, kernelSize: 2, strides: options.dilation ? 1 : 2, dilationRate: options.dilation ?? 1, padding: 'valid', useBias: false, depthwiseInitializer: init(), pointwiseInitializer: init() }));
  return head(m);
}

/** conv → BN (image, channels last) → relu → flatten → dense → BN (features; scale/center as asked) → dense. */
export function batchNormModel(options: { scale?: boolean; center?: boolean } = {}): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [4, 4, 2], filters: 3, kernelSize: 2, kernelInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.batchNormalization({ gammaInitializer: positive(), betaInitializer: init() }));
  m.add(tf.layers.activation({ activation: 'relu' }));
  m.add(tf.layers.flatten());
  m.add(dense(4, { activation: 'tanh' }));
  m.add(tf.layers.batchNormalization({ scale: options.scale ?? true, center: options.center ?? true, gammaInitializer: positive(), betaInitializer: init() }));
  m.add(dense(3));
  randomiseMovingStatistics(m);
  return m;
}

/** dense on a sequence → LayerNormalization (last axis) → LayerNormalization over (T, features) → head. */
export function layerNormModel(): tf.Sequential {
  const m = tf.sequential();
  m.add(dense(4, { inputShape: [3, 2], activation: 'tanh' }));
  m.add(tf.layers.layerNormalization({ gammaInitializer: positive(), betaInitializer: init() }));
  m.add(tf.layers.layerNormalization({ axis: [1, 2], gammaInitializer: positive(), betaInitializer: init() }));
  return head(m);
}

export const VOCAB = 6;

/** Integer tokens [T = 4] (an int32 input) → Embedding(6, 3) → tanh dense on the sequence → head. */
export function embeddingModel(): tf.LayersModel {
  const x = tf.input({ shape: [4], dtype: 'int32' });
  const e = tf.layers.embedding({ inputDim: VOCAB, outputDim: 3, embeddingsInitializer: init() }).apply(x) as tf.SymbolicTensor;
  const h = dense(2, { activation: 'tanh' }).apply(e) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: dense(3).apply(flat) as tf.SymbolicTensor });
}

/** dense → PReLU (one α per unit) → conv → PReLU (α shared over the image axes) → head. */
export function preluModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [4, 4, 2], filters: 3, kernelSize: 2, kernelInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.prelu({ alphaInitializer: init() }));
  m.add(tf.layers.conv2d({ filters: 2, kernelSize: 2, kernelInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.prelu({ sharedAxes: [1, 2], alphaInitializer: init() }));
  return head(m);
}

/** A layer with its own weight used through tf ops: y = tanh(x W) ∘ s (the generic kind). */
export class ScaledTanh extends tf.layers.Layer {
  static className = 'ScaledTanhForTests';
  private w!: tf.LayerVariable;
  private s!: tf.LayerVariable;
  constructor(private readonly units: number = 3) {
    super({});
  }
  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    this.w = this.addWeight('w', [shape[shape.length - 1]!, this.units], 'float32', init());
    this.s = this.addWeight('s', [this.units], 'float32', init());
    this.built = true;
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape.slice(0, -1), this.units];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const y = tf.matMul(x.reshape([-1, x.shape[x.shape.length - 1]!]), this.w.read());
      return tf.mul(tf.tanh(y), this.s.read()).reshape([...x.shape.slice(0, -1), this.units]);
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units };
  }
  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls(config.units as never) as T;
  }
}
tf.serialization.registerClass(ScaledTanh);

/** SimpleRNN, GRU and a custom layer: every one through the generic kind. */
export function genericModel(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.simpleRNN({ inputShape: [3, 2], units: 3, returnSequences: true, kernelInitializer: init(), recurrentInitializer: init(), biasInitializer: init() }));
  m.add(tf.layers.gru({ units: 2, returnSequences: true, kernelInitializer: init(), recurrentInitializer: init(), biasInitializer: init() }));
  m.add(new ScaledTanh(3));
  return head(m);
}

/** Seeded tokens in [0, VOCAB) (tf.randomUniform with dtype int32 can return −1). */
export function randomTokens(shape: number[], dataSeed: number): tf.Tensor {
  return tf.tidy(() => tf.cast(tf.floor(tf.randomUniform(shape, 0, VOCAB - 1e-3, 'float32', dataSeed)), 'int32'));
}

/** Seeded batches for any model: standard-normal float inputs, tokens in [0, VOCAB) for int32 inputs. */
export function layerBatches(model: tf.LayersModel, n: number, batchSize: number, dataSeed = 21): Array<{ xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor }> {
  const outDim = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const batches: Array<{ xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor }> = [];
  for (let start = 0, k = 0; start < n; start += batchSize, k++) {
    const b = Math.min(batchSize, n - start);
    const xs = model.inputs.map((input, j) => {
      const shape = [b, ...(input.shape.slice(1) as number[])];
      return input.dtype === 'int32' ? randomTokens(shape, dataSeed + 17 * k + j) : tf.randomNormal(shape, 0, 1, 'float32', dataSeed + 17 * k + j);
    });
    batches.push({ xs: xs.length === 1 ? xs[0]! : xs, ys: tf.randomUniform([b], 0, outDim, 'int32', dataSeed + 100 + k) });
  }
  return batches;
}

export function disposeLayerBatches(batches: Array<{ xs: tf.Tensor | tf.Tensor[]; ys?: tf.Tensor }>): void {
  for (const b of batches) tf.dispose([...(Array.isArray(b.xs) ? b.xs : [b.xs]), ...(b.ys ? [b.ys] : [])]);
}

// ---------------------------------------------------------------------------------------------
// End-to-end architectures

/** [6, 6, 2] → conv → BN → relu → conv → BN → add (residual) → relu → global pool → dense 3. */
export function residualCnn(): tf.LayersModel {
  const conv = (filters: number, extra: object = {}) =>
    tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', kernelInitializer: init(0.3), biasInitializer: init(), ...extra });
  const bn = () => tf.layers.batchNormalization({ gammaInitializer: positive(), betaInitializer: init() });
  const relu = () => tf.layers.activation({ activation: 'relu' });
  const x = tf.input({ shape: [6, 6, 2] });
  const h = relu().apply(bn().apply(conv(3).apply(x))) as tf.SymbolicTensor;
  const r = bn().apply(conv(3).apply(relu().apply(bn().apply(conv(3).apply(h))))) as tf.SymbolicTensor;
  const sum = relu().apply(tf.layers.add().apply([h, r])) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({}).apply(sum) as tf.SymbolicTensor;
  const model = tf.model({ inputs: x, outputs: dense(3).apply(pooled) as tf.SymbolicTensor });
  randomiseMovingStatistics(model);
  return model;
}

/** A learned additive position embedding P [T, D] (a custom layer: the generic kind). */
export class PositionEmbedding extends tf.layers.Layer {
  static className = 'PositionEmbeddingForTests';
  private p!: tf.LayerVariable;
  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = inputShape as tf.Shape;
    this.p = this.addWeight('positions', [shape[1]!, shape[2]!], 'float32', init(0.3));
    this.built = true;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.add(Array.isArray(inputs) ? inputs[0]! : inputs, this.p.read());
  }
}
tf.serialization.registerClass(PositionEmbedding);

/**
 * Tokens [T = 4] → Embedding(6, 4) + learned positions → pre-LN self-attention
 * (softmax(q kᵀ) v from Dense projections, with Dot and softmax layers) → residual →
 * LN → Dense(8, relu) → Dense(4) → residual → global average pooling → Dense(3).
 */
export function transformerBlock(options: { positions?: boolean } = {}): tf.LayersModel {
  const ln = () => tf.layers.layerNormalization({ gammaInitializer: positive(), betaInitializer: init(0.2) });
  const x = tf.input({ shape: [4], dtype: 'int32' });
  let e = tf.layers.embedding({ inputDim: VOCAB, outputDim: 4, embeddingsInitializer: init() }).apply(x) as tf.SymbolicTensor;
  if (options.positions ?? true) e = new PositionEmbedding({}).apply(e) as tf.SymbolicTensor;
  const h = ln().apply(e) as tf.SymbolicTensor;
  const [q, k, v] = [0, 1, 2].map(() => dense(4, { useBias: false }).apply(h) as tf.SymbolicTensor);
  const scores = tf.layers.dot({ axes: [2, 2] }).apply([q!, k!]) as tf.SymbolicTensor; // [B, T, T]
  const weights = tf.layers.activation({ activation: 'softmax' }).apply(scores) as tf.SymbolicTensor;
  const attended = tf.layers.dot({ axes: [2, 1] }).apply([weights, v!]) as tf.SymbolicTensor; // [B, T, 4]
  const r = tf.layers.add().apply([e, dense(4).apply(attended) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const f = dense(4).apply(dense(8, { activation: 'relu' }).apply(ln().apply(r)) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling1d({}).apply(tf.layers.add().apply([r, f])) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: dense(3).apply(pooled) as tf.SymbolicTensor });
}

/** [T = 4, 2] → LSTM(3) → Dense(3). */
export function lstmClassifier(): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.lstm({ inputShape: [4, 2], units: 3, kernelInitializer: init(), recurrentInitializer: init(), biasInitializer: init() }));
  m.add(dense(3));
  return m;
}
