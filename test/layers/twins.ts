/**
 * Brute-force references for layers tfjs cannot differentiate itself: a Sequential "twin" that
 * computes the same function with layers tfjs can differentiate, and the map from each original
 * parameter to its position among the twin's parameters, so that J_original = J_twin[:, map]
 * and F_original = F_twin[map, map] (reference.ts's selectSubmatrix). Built with plain JS loops,
 * independent of the library:
 * - Conv1D / SeparableConv2D with dilation d > 1 (tfjs has no gradient for dilated convolutions):
 *   the kernel written out with d − 1 zeros between taps, dilation 1;
 * - BatchNormalization with scale or center false (tfjs's batchNorm gradient fails on a missing
 *   scale or offset): the full layer with γ = 1 or β = 0, whose extra parameters are not mapped.
 */
import { tf } from '../../src/tf.js';

type Config = Record<string, unknown>;

const dilationOf = (config: Config): number => {
  const d = config.dilationRate as number | number[] | undefined;
  return Array.isArray(d) ? d[0]! : (d ?? 1);
};

/**
 * A kernel with `spatial` leading axes dilated by d: values at the taps, zeros between; and for
 * each original entry (row-major) its index in the dilated kernel.
 */
function dilateTaps(kernel: tf.Tensor, spatial: number, d: number): { values: Float32Array; shape: number[]; index: number[] } {
  const shape = kernel.shape as number[];
  const big = shape.map((s, k) => (k < spatial ? (s - 1) * d + 1 : s));
  const inner = shape.slice(spatial).reduce((a, b) => a * b, 1);
  const values = new Float32Array(big.reduce((a, b) => a * b, 1));
  const src = kernel.dataSync();
  const index: number[] = [];
  const taps = shape.slice(0, spatial).reduce((a, b) => a * b, 1);
  for (let t = 0; t < taps; t++) {
    // position of tap t in the dilated grid
    let rest = t;
    let pos = 0;
    for (let k = 0; k < spatial; k++) {
      const stride = shape.slice(k + 1, spatial).reduce((a, b) => a * b, 1);
      const coord = Math.floor(rest / stride);
      rest %= stride;
      const bigStride = big.slice(k + 1, spatial).reduce((a, b) => a * b, 1);
      pos += coord * d * bigStride;
    }
    for (let j = 0; j < inner; j++) {
      values[pos * inner + j] = src[t * inner + j]!;
      index.push(pos * inner + j);
    }
  }
  return { values, shape: big, index };
}

interface TwinLayer {
  config: Config;
  weights: tf.Tensor[];
  /** For each original trainable parameter, its index among the twin layer's trainable parameters. */
  index: number[];
  /** Tensors created here (the others are the original layer's own variables). */
  fresh: tf.Tensor[];
}

function twinOf(layer: tf.layers.Layer): TwinLayer {
  const config = { ...(layer.getConfig() as Config) };
  const cls = layer.getClassName();
  const weights = layer.getWeights();
  // tfjs 4.22's SeparableConv2D.getConfig omits depthMultiplier.
  if (cls === 'SeparableConv2D') config.depthMultiplier = weights[0]!.shape[3];
  const identity = (n: number) => Array.from({ length: n }, (_, j) => j);
  const trainableSize = layer.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y as number), 1), 0);
  const d = dilationOf(config);
  if ((cls === 'Conv1D' || cls === 'SeparableConv2D') && d > 1) {
    const spatial = cls === 'Conv1D' ? 1 : 2;
    const { values, shape, index } = dilateTaps(weights[0]!, spatial, d);
    const size = values.length;
    const rest = weights.slice(1);
    const restSize = rest.reduce((a, w) => a + w.size, 0);
    const kernel = tf.tensor(values, shape);
    return {
      config: { ...config, kernelSize: shape.slice(0, spatial), dilationRate: 1 },
      weights: [kernel, ...rest],
      index: [...index, ...identity(restSize).map((j) => size + j)],
      fresh: [kernel],
    };
  }
  if (cls === 'BatchNormalization' && (config.scale === false || config.center === false)) {
    const c = weights[weights.length - 1]!.shape[0]!;
    const gamma = config.scale === false ? tf.ones([c]) : weights[0]!;
    const beta = config.center === false ? tf.zeros([c]) : weights[config.scale === false ? 0 : 1]!;
    const index = [...(config.scale === false ? [] : identity(c)), ...(config.center === false ? [] : identity(c).map((j) => c + j))];
    const fresh = [config.scale === false ? gamma : undefined, config.center === false ? beta : undefined].filter((t): t is tf.Tensor => !!t);
    return { config: { ...config, scale: true, center: true }, weights: [gamma, beta, ...weights.slice(-2)], index, fresh };
  }
  return { config, weights, index: identity(trainableSize), fresh: [] };
}

/** The differentiable twin of a Sequential model and the parameter map (see the file comment). */
export function differentiableTwin(model: tf.Sequential): { twin: tf.Sequential; map: Int32Array } {
  const twin = tf.sequential();
  const map: number[] = [];
  let offset = 0;
  model.layers.forEach((layer, li) => {
    const t = twinOf(layer);
    const extra = li === 0 ? { batchInputShape: model.inputs[0]!.shape } : {};
    const Ctor = layer.constructor as new (c: Config) => tf.layers.Layer;
    const copy = new Ctor({ ...t.config, ...extra, name: `${layer.name}_twin` });
    twin.add(copy);
    if (t.weights.length) copy.setWeights(t.weights);
    tf.dispose(t.fresh);
    // A frozen layer contributes no parameters.
    if (layer.trainableWeights.length > 0) for (const j of t.index) map.push(offset + j);
    offset += copy.trainableWeights.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y as number), 1), 0);
  });
  return { twin, map: Int32Array.from(map) };
}

/** Whether a Sequential model has a layer that needs a twin for its brute-force reference. */
export function needsTwin(model: tf.LayersModel): boolean {
  return model.layers.some((l) => {
    const c = l.getConfig() as Config;
    const cls = l.getClassName();
    return ((cls === 'Conv1D' || cls === 'SeparableConv2D') && dilationOf(c) > 1) || (cls === 'BatchNormalization' && (c.scale === false || c.center === false));
  });
}
