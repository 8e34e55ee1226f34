/**
 * The backward pass of k square-root outputs at once, from one recorded forward pass.
 *
 * tfjs re-runs the forward pass inside every `tf.grads` call, so back-propagating the O
 * square-root outputs of a batch one by one costs O forward and O backward passes. Here the
 * forward pass runs once (executor `onCall` records every leaf-layer call) and the cotangents of
 * k outputs travel together, stacked along the batch axis (row o·B + i is output o, example i):
 * the backward matrix products see k·B rows, and the weights, masks and saved activations are
 * shared by the k copies. Cost per batch: 1 forward + (k·B-row) backward passes with respect to
 * the activations only (no weight gradients, nothing before the first collected layer).
 *
 * Rules, by what a call is:
 * - a collected layer: its fused activation (hand-written rules below) and its pre-activation's
 *   `inputCotangent` (Dense, Conv2D); the gradient at the pre-activation is what the engine's
 *   visitors receive;
 * - reshapes, inference-mode dropout and noise, Add, Concatenate, Activation: hand-written;
 * - anything else (pooling, normalisation, recurrent and custom layers, kinds without a rule):
 *   tfjs autodiff of the layer applied to its inputs tiled k times, which is exact for any layer
 *   whose output for one example depends on that example only (inference mode).
 */
import { tf } from '../tf.js';
import type { LayerEntry } from '../layers/layer-collection.js';
import { configValue, layerActivation } from '../layers/tfjs-internals.js';
import { forwardLayer, type LayerCall } from './executor.js';

/** The batch repeated k times along axis 0 (output-major stacking). */
function tileBatch(t: tf.Tensor, k: number): tf.Tensor {
  // Concatenation along axis 0 is a block copy; tfjs-wasm's Tile kernel is several times slower.
  return k === 1 ? t : tf.concat(Array.from({ length: k }, () => t), 0);
}

/** g [k·B, ...shape] times d [B, ...shape], d shared by the k copies. */
function timesShared(g: tf.Tensor, d: tf.Tensor, k: number): tf.Tensor {
  if (k === 1) return tf.mul(g, d);
  return tf.mul(g.reshape([k, ...d.shape]), d).reshape(g.shape);
}

/**
 * ∂⟨g, fn(ins)⟩/∂ins[j] for the wanted j, by tfjs autodiff on the inputs tiled k times.
 * Errors inside the taped function are rethrown after it, so no tape is abandoned.
 */
function tiledCotangents(
  fn: (ins: tf.Tensor[]) => readonly tf.Tensor[],
  ins: readonly tf.Tensor[],
  wanted: readonly boolean[],
  gys: ReadonlyArray<tf.Tensor | undefined>,
  k: number,
): Array<tf.Tensor | undefined> {
  const tiled = ins.map((t) => tileBatch(t, k));
  const positions = wanted.flatMap((w, j) => (w ? [j] : []));
  let failure: unknown;
  const grads = tf.grads((...w: tf.Tensor[]) => {
    try {
      const all = [...tiled];
      positions.forEach((j, n) => (all[j] = w[n]!));
      const outs = fn(all);
      const terms = outs.flatMap((y, m) => (gys[m] ? [tf.sum(tf.mul(y, gys[m]!))] : []));
      return (terms.length === 1 ? terms[0]! : tf.addN(terms)) as tf.Scalar;
    } catch (e) {
      failure = e;
      return tf.addN(w.map((t) => tf.sum(tf.mul(t, 0)))) as tf.Scalar;
    }
  })(positions.map((j) => tiled[j]!));
  if (failure !== undefined) throw failure;
  const out: Array<tf.Tensor | undefined> = ins.map(() => undefined);
  positions.forEach((j, n) => (out[j] = grads[n]));
  return out;
}

/**
 * Derivative of an elementwise activation from its input s and output y, or undefined for the
 * activations without a hand-written rule (differentiated by tfjs instead).
 */
function activationDerivative(name: string, s: tf.Tensor, y: tf.Tensor): tf.Tensor | undefined {
  switch (name) {
    case 'relu':
      return tf.cast(tf.greater(s, 0), 'float32');
    case 'relu6':
      return tf.cast(tf.logicalAnd(tf.greater(s, 0), tf.less(s, 6)), 'float32');
    case 'tanh':
      return tf.sub(1, tf.square(y));
    case 'sigmoid':
      return tf.mul(y, tf.sub(1, y));
    case 'elu': // tfjs-layers' elu has α = 1: derivative exp(s) = y + 1 below 0
      return tf.where(tf.greater(s, 0), tf.onesLike(s), tf.add(y, 1));
    case 'softplus':
      return tf.sigmoid(s);
    default:
      return undefined;
  }
}

/**
 * ∂⟨g, act(s)⟩/∂s for an activation `act` given by the layer's activation object, with y = act(s);
 * `apply` recomputes act when no rule exists.
 */
function activationCotangent(
  layer: tf.layers.Layer,
  s: tf.Tensor,
  y: tf.Tensor,
  g: tf.Tensor,
  k: number,
  apply: (s: tf.Tensor) => tf.Tensor,
): tf.Tensor {
  if (y === s) return g; // identity ('linear' returns its input)
  const name = layerActivation(layer)?.getClassName();
  if (name === 'linear') return g;
  if (name === 'softmax' && s.shape.length >= 2) {
    // y ∘ (g − ⟨g, y⟩) over the last axis
    const yk = k === 1 ? y : y.reshape([1, ...y.shape]);
    const gk = k === 1 ? g : g.reshape([k, ...y.shape]);
    return tf.mul(yk, tf.sub(gk, tf.sum(tf.mul(gk, yk), -1, true))).reshape(g.shape);
  }
  const d = name === undefined ? undefined : activationDerivative(name, s, y);
  if (d) return timesShared(g, d, k);
  return tiledCotangents((ins) => [apply(ins[0]!)], [s], [true], [g], k)[0]!;
}

const IDENTITY_IN_INFERENCE = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']);

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Input cotangents of an uncollected leaf layer's call. */
function layerCotangents(call: LayerCall, gys: ReadonlyArray<tf.Tensor | undefined>, wanted: readonly boolean[], k: number): Array<tf.Tensor | undefined> {
  const { layer, inputs, outputs } = call;
  const cls = layer.getClassName();
  const g = gys[0];
  if (outputs.length === 1 && g) {
    const x = inputs[0]!;
    const y = outputs[0]!;
    const stackedShape = (t: tf.Tensor) => [k * t.shape[0]!, ...t.shape.slice(1)];
    if (inputs.length === 1 && (cls === 'Flatten' || cls === 'Reshape')) return [g.reshape(stackedShape(x))];
    if (inputs.length === 1 && IDENTITY_IN_INFERENCE.has(cls) && sameShape(x.shape, y.shape)) return [g];
    if (inputs.length === 1 && cls === 'Activation') {
      return [activationCotangent(layer, x, y, g, k, (s) => forwardLayer(layer, [s], call.callArgs)[0]!)];
    }
    if (cls === 'Add' && inputs.every((t) => sameShape(t.shape, y.shape))) return inputs.map((_, j) => (wanted[j] ? g : undefined));
    if (cls === 'Concatenate') {
      const rank = y.shape.length;
      const raw = configValue<number | undefined>(layer, 'axis') ?? -1;
      const axis = raw < 0 ? rank + raw : raw;
      if (axis > 0 && axis < rank) {
        const parts = tf.split(g, inputs.map((t) => t.shape[axis]!), axis);
        return parts.map((p, j) => (wanted[j] ? p : undefined));
      }
    }
  }
  return tiledCotangents((ins) => forwardLayer(layer, ins, call.callArgs), inputs, wanted, gys, k);
}

/** Input cotangent of a collected layer from its pre-activation cotangent g. */
function collectedInputCotangent(entry: LayerEntry, x: tf.Tensor, g: tf.Tensor, k: number): tf.Tensor {
  const rule = entry.kind.inputCotangent;
  if (rule) return rule.call(entry.kind, entry.layer, x, g);
  return tiledCotangents((ins) => [entry.kind.preactivation(entry.layer, ins[0]!)], [x], [true], [g], k)[0]!;
}

/**
 * The tensors of a recorded forward pass through which cotangents must flow: every output of
 * a collected layer and everything computed from one. Inputs of the model and what depends on
 * them only need no cotangent.
 */
export function tensorsNeedingCotangents(calls: readonly LayerCall[]): Set<tf.Tensor> {
  const needs = new Set<tf.Tensor>();
  for (const call of calls) {
    if (call.entry || call.inputs.some((t) => needs.has(t))) call.outputs.forEach((t) => needs.add(t));
  }
  return needs;
}

/**
 * Back-propagates `seed` (k stacked cotangents of `output`, [k·B, ...output.shape[1:]]) through
 * the recorded calls. Returns, for each collected layer, the cotangent of its pre-activation,
 * [k·B, ...s.shape[1:]] (zeros for a layer the output does not depend on). Call in a tidy scope.
 */
export function batchedBackward(
  calls: readonly LayerCall[],
  needs: ReadonlySet<tf.Tensor>,
  output: tf.Tensor,
  seed: tf.Tensor,
  k: number,
): Map<string, tf.Tensor> {
  const cotangents = new Map<tf.Tensor, tf.Tensor>([[output, seed]]);
  const accumulate = (t: tf.Tensor, g: tf.Tensor) => {
    const prior = cotangents.get(t);
    cotangents.set(t, prior ? tf.add(prior, g) : g);
  };
  const grads = new Map<string, tf.Tensor>();
  for (let c = calls.length - 1; c >= 0; c--) {
    const call = calls[c]!;
    // Taken out before the inputs receive theirs: a layer may return its input object itself.
    const gys = call.outputs.map((t) => {
      const g = cotangents.get(t);
      cotangents.delete(t);
      return g;
    });
    const wanted = call.inputs.map((t) => needs.has(t));
    if (call.entry) {
      const s = call.preactivation!;
      const gy = gys[0];
      const gs = gy
        ? activationCotangent(call.layer, s, call.outputs[0]!, gy, k, (t) => call.entry!.kind.activate(call.layer, t))
        : tf.zeros([k * s.shape[0]!, ...s.shape.slice(1)]);
      grads.set(call.entry.id, gs);
      if (gy && wanted[0]) accumulate(call.inputs[0]!, collectedInputCotangent(call.entry, call.inputs[0]!, gs, k));
      continue;
    }
    if (gys.every((g) => g === undefined) || !wanted.some(Boolean)) continue;
    const filled = gys.map((g, m) => g ?? (gys.some(Boolean) && call.outputs.length > 1 ? tf.zerosLike(tileBatch(call.outputs[m]!, k)) : undefined));
    layerCotangents(call, filled, wanted, k).forEach((g, j) => {
      if (g && wanted[j]) accumulate(call.inputs[j]!, g);
    });
  }
  return grads;
}
