/**
 * The generic kind: any layer with trainable weights (SimpleRNN, LSTM, GRU, Bidirectional,
 * TimeDistributed, custom layers, ...) through tfjs autodiff. The layer's whole output y is
 * treated as its "pre-activation" — the probe is added to y and the activation is the identity —
 * so the engine's probe gradient is g = ∂f̃/∂y, and by the chain rule, per example i,
 *
 *   ∇θ f̃(x_i) = ∂⟨g_i, layer(x_i; θ)⟩/∂θ   (g_i held constant),
 *
 * computed by `tf.variableGrads` restricted to the layer's weights: one small backward pass per
 * example through this layer only (tfjs has no vmap). Exact for any layer whose output for one
 * example depends on that example only (true in inference mode). The contractions follow from
 * the per-example gradients (per-example-kind.ts), except Σ_i u_i ∇θ f̃(x_i), which is one
 * backward pass of ⟨u ∘ g, layer(x)⟩ over the whole batch.
 *
 * No Kronecker factors: KFAC, EKFAC and QuasiDiag refuse such layers (the error names
 * PMatEKFACBlockDiag). Refused: layers with several inputs or outputs (the executor hands a
 * kind one input tensor and adds one probe) and stateful RNNs (each call would advance the state).
 *
 * Cost: B·O backward passes through the layer per batch of B examples and O square-root outputs
 * (e.g. LSTM(32) over 20 steps on wasm: ~25 ms each, against ~30 ms for one batched pass).
 */
import { tf } from '../tf.js';
import { UnsupportedLayerError } from '../errors.js';
import type { LayerKind } from './layer-kind.js';
import { parameterSpecs } from './linear-kind.js';
import { concatRows, perExampleLayerKind } from './per-example-kind.js';
import { callArity, configValue, withWeightsReplaced } from './tfjs-internals.js';

/** The layer's output for x in inference mode; refuses layers with several outputs. */
function output(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const y = layer.apply(x, { training: false });
  if (Array.isArray(y)) {
    tf.dispose(y as tf.Tensor[]);
    throw new UnsupportedLayerError(
      `layer '${layer.name}' of class ${layer.getClassName()} returns ${y.length} tensors; the generic layer kind handles layers with ` +
        `one output (for RNNs: returnState false). Exclude it with LayerCollection.fromLayers or set layer.trainable = false.`,
    );
  }
  return y as tf.Tensor;
}

/** ∂⟨g, layer(x)⟩/∂θ for the layer's trainable weights, flattened and concatenated, [numel]. */
function vjp(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor): tf.Tensor1D {
  const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(output(layer, x), g)) as tf.Scalar, vars);
  value.dispose();
  // A weight the output does not depend on gets no gradient from tfjs: its row is zero.
  const flat = vars.map((v) => (grads[v.name] ?? tf.zerosLike(v)).reshape([-1]));
  const out = (flat.length === 1 ? flat[0]!.clone() : tf.concat(flat)) as tf.Tensor1D;
  tf.dispose([...Object.values(grads), ...flat]);
  return out;
}

export const genericKind: LayerKind = perExampleLayerKind({
  name: 'generic',
  classNames: [],
  parameters(layer) {
    const arity = callArity(layer);
    if (arity && (arity.inputs !== 1 || arity.outputs !== 1)) {
      throw new UnsupportedLayerError(
        `layer '${layer.name}' of class ${layer.getClassName()} takes ${arity.inputs} input(s) and returns ${arity.outputs} output(s); the generic ` +
          `layer kind handles layers with one of each. Exclude it (ignoreUnsupported, LayerCollection.fromLayers) or set layer.trainable = false.`,
      );
    }
    if (configValue<boolean | undefined>(layer, 'stateful')) {
      // Every call would read and advance the state carried over from the previous batch.
      throw new UnsupportedLayerError(`layer '${layer.name}' of class ${layer.getClassName()} is stateful; rebuild it with stateful: false.`);
    }
    return parameterSpecs(layer, []);
  },
  preactivation(layer, x, given) {
    if (!given) return output(layer, x);
    // Differentiable in the given tensors: the layer's own call, reading them as its weights.
    return withWeightsReplaced(layer, given, () => output(layer, x));
  },
  activate: (_layer, s) => s,
  perExampleGradients(layer, x, g) {
    return tf.tidy(() => {
      const b = x.shape[0]!;
      const rows: tf.Tensor[] = [];
      for (let i = 0; i < b; i++) {
        rows.push(tf.tidy(() => vjp(layer, tf.slice(x, [i], [1]), tf.slice(g, [i], [1]))));
      }
      return concatRows([tf.stack(rows)]);
    });
  },
  weightedGradientSum(layer, x, g, u) {
    return tf.tidy(() => vjp(layer, x, tf.mul(g, u.reshape([-1, ...g.shape.slice(1).map(() => 1)]))));
  },
});
