/**
 * Eager execution of a tfjs-layers model that exposes what the curvature computations need:
 * the input of every collected layer, and a place to add a "probe" to its pre-activation.
 * Differentiating the output with respect to zero probes gives, in one backward pass, the
 * gradient of the output at every collected layer's pre-activation (substrate.md §2).
 *
 * The traversal is tfjs-layers' own: Sequential models layer by layer, functional models node
 * by node in order of decreasing depth; nested models recursively. Every layer runs in
 * inference mode (training: false), so Dropout is the identity and BatchNormalization uses its
 * moving statistics.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, UnsupportedLayerError } from '../errors.js';
import type { LayerEntry } from '../layers/layer-collection.js';
import { differentiableForward } from '../layers/uncollected-forward.js';
import { configValue, graphEndpoints, isContainer, isSequential, nodesInExecutionOrder } from '../layers/tfjs-internals.js';

export interface ExecutionHooks {
  /** Collected layers, by layer object. */
  readonly collected: ReadonlyMap<tf.layers.Layer, LayerEntry>;
  /** Probes added to pre-activations, by layer id. */
  readonly probes?: ReadonlyMap<string, tf.Tensor>;
  /**
   * Parameter tensors replacing the weights of collected layers, by layer id (in the layer's
   * parameter order), so that outputs can be differentiated with respect to them.
   */
  readonly weights?: ReadonlyMap<string, readonly tf.Tensor[]>;
  /** Receives each collected layer's input and pre-activation. */
  readonly onLayer?: (entry: LayerEntry, input: tf.Tensor, preactivation: tf.Tensor) => void;
  /** Receives every call of a leaf layer (not of a nested model), in execution order. */
  readonly onCall?: (call: LayerCall) => void;
}

/** One call of a leaf layer in a forward pass: what a hand-written backward pass needs. */
export interface LayerCall {
  /** The layer called. */
  readonly layer: tf.layers.Layer;
  /** Its input tensors [B, ...], in call order. */
  readonly inputs: readonly tf.Tensor[];
  /** Its output tensors [B, ...]. */
  readonly outputs: readonly tf.Tensor[];
  /** Extra call arguments of the functional graph's node. */
  readonly callArgs: Record<string, unknown>;
  /** For a collected layer: its entry and its pre-activation (outputs[0] = act(preactivation)). */
  readonly entry?: LayerEntry;
  /** For a collected layer: its pre-activation s, the tensor whose gradient the visitors receive. */
  readonly preactivation?: tf.Tensor;
}

/**
 * Runs `model` on concrete `inputs` and returns its outputs. Call inside a tidy scope; tensors
 * handed to `onLayer` are intermediates of that scope (keep what you need).
 *
 * @throws InvalidArgumentError if a collected layer runs twice in one pass (shared weights).
 */
export function executeModel(model: tf.LayersModel, inputs: tf.Tensor[], hooks: ExecutionHooks): tf.Tensor[] {
  const calls = new Map<tf.layers.Layer, number>();
  return runContainer(model, inputs, hooks, calls);
}

function runContainer(
  model: tf.LayersModel,
  inputs: tf.Tensor[],
  hooks: ExecutionHooks,
  calls: Map<tf.layers.Layer, number>,
): tf.Tensor[] {
  if (isSequential(model)) {
    let x = inputs;
    for (const layer of model.layers) {
      if (layer.getClassName() === 'InputLayer') continue;
      x = runLayer(layer, x, {}, hooks, calls);
    }
    return x;
  }
  const values = new Map<number, tf.Tensor>();
  const { inputs: inIds, outputs: outIds } = graphEndpoints(model);
  if (inIds.length !== inputs.length) {
    throw new InvalidArgumentError(`model '${model.name}' has ${inIds.length} inputs but ${inputs.length} input tensors were given`);
  }
  inIds.forEach((id, i) => values.set(id, inputs[i]!));
  for (const node of nodesInExecutionOrder(model)) {
    const layer = node.outboundLayer;
    if (layer.getClassName() === 'InputLayer') continue;
    const ins = node.inputTensors.map((t) => {
      const v = values.get(t.id);
      if (!v) throw new InvalidArgumentError(`internal: input of layer '${layer.name}' was not computed`);
      return v;
    });
    const outs = runLayer(layer, ins, node.callArgs ?? {}, hooks, calls);
    node.outputTensors.forEach((t, i) => values.set(t.id, outs[i]!));
  }
  return outIds.map((id) => values.get(id)!);
}

function runLayer(
  layer: tf.layers.Layer,
  ins: tf.Tensor[],
  callArgs: Record<string, unknown>,
  hooks: ExecutionHooks,
  calls: Map<tf.layers.Layer, number>,
): tf.Tensor[] {
  if (isContainer(layer)) return runContainer(layer, ins, hooks, calls);
  refuseMasks(layer);
  const entry = hooks.collected.get(layer);
  if (entry) {
    if (ins.length !== 1) {
      throw new UnsupportedLayerError(
        `layer '${entry.id}' is called on ${ins.length} inputs; collected layers take one input. ` +
          `Exclude it with LayerCollection.fromLayers or set layer.trainable = false.`,
      );
    }
    const count = (calls.get(layer) ?? 0) + 1;
    calls.set(layer, count);
    if (count > 1) {
      throw new InvalidArgumentError(
        `layer '${entry.id}' is called more than once in one forward pass (shared weights); ` +
          `this is not supported yet. Exclude it with LayerCollection.fromLayers or set layer.trainable = false.`,
      );
    }
    const x = ins[0]!;
    let s = entry.kind.preactivation(layer, x, hooks.weights?.get(entry.id));
    const probe = hooks.probes?.get(entry.id);
    if (probe) s = tf.add(s, probe);
    hooks.onLayer?.(entry, x, s);
    const y = entry.kind.activate(layer, s);
    hooks.onCall?.({ layer, inputs: ins, outputs: [y], callArgs, entry, preactivation: s });
    return [y];
  }
  const outs = forwardLayer(layer, ins, callArgs);
  hooks.onCall?.({ layer, inputs: ins, outputs: outs, callArgs });
  return outs;
}

/** An uncollected leaf layer's inference-mode output, through differentiable ops. */
export function forwardLayer(layer: tf.layers.Layer, ins: readonly tf.Tensor[], callArgs: Record<string, unknown>): tf.Tensor[] {
  const own = differentiableForward(layer, ins);
  if (own) return [own];
  const out = layer.apply(ins.length === 1 ? ins[0]! : [...ins], { ...callArgs, training: false });
  return Array.isArray(out) ? (out as tf.Tensor[]) : [out as tf.Tensor];
}

/**
 * tfjs-layers passes masks (from Masking or Embedding with maskZero) to the layers after them
 * (RNNs skip masked steps); this executor does not, so such a model would silently give the
 * matrix of another function. Refuse it instead.
 */
function refuseMasks(layer: tf.layers.Layer): void {
  const cls = layer.getClassName();
  if (cls === 'Masking' || (cls === 'Embedding' && configValue<boolean | undefined>(layer, 'maskZero'))) {
    throw new UnsupportedLayerError(
      `layer '${layer.name}' (${cls}) produces a mask, which the library's executor does not propagate to the layers ` +
        `after it; rebuild the model without masking (e.g. Embedding with maskZero: false).`,
    );
  }
}
