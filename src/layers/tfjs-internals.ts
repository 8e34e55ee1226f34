/**
 * The only module that reaches into tfjs-layers fields that its type declarations mark private
 * or protected (`activation`, `kernel`, `bias`, model graph internals). tfjs is pinned at 4.22,
 * and everything else in the library goes through the typed accessors below.
 */
import { tf } from '../tf.js';

/** A layer's activation function object, as tfjs-layers stores it. */
export interface ActivationFunction {
  apply(x: tf.Tensor): tf.Tensor;
  getClassName(): string;
}

interface LayerInternals {
  activation?: ActivationFunction;
}

/** The fused activation of a Dense / Conv layer (identity when the layer has none). */
export function layerActivation(layer: tf.layers.Layer): ActivationFunction | undefined {
  return (layer as unknown as LayerInternals).activation;
}

/** The layer's class name as tfjs registers it for serialisation, e.g. 'Dense', 'Conv2D'. */
export function layerClassName(layer: tf.layers.Layer): string {
  return layer.getClassName();
}

/** Reads a string/number/array config entry with a runtime type check. */
export function configValue<T>(layer: tf.layers.Layer, key: string): T {
  const config = layer.getConfig() as Record<string, unknown>;
  return config[key] as T;
}

/** True for tf.Sequential and functional tf.LayersModel (both are Containers). */
export function isContainer(layer: tf.layers.Layer): layer is tf.LayersModel {
  return layer instanceof tf.LayersModel;
}

/** True for tf.Sequential. */
export function isSequential(model: tf.LayersModel): model is tf.Sequential {
  return model instanceof tf.Sequential;
}

/** The node of a functional graph, with the fields the executor walks. */
export interface GraphNode {
  outboundLayer: tf.layers.Layer;
  inputTensors: Array<{ id: number }>;
  outputTensors: Array<{ id: number }>;
  callArgs?: Record<string, unknown>;
}

/** Nodes of a functional model, input side first (tfjs-layers' own execution order). */
export function nodesInExecutionOrder(model: tf.LayersModel): GraphNode[] {
  const byDepth = (model as unknown as { nodesByDepth: Record<string, GraphNode[]> }).nodesByDepth;
  const depths = Object.keys(byDepth)
    .map(Number)
    .sort((a, b) => b - a);
  return depths.flatMap((d) => byDepth[String(d)] ?? []);
}

/** Symbolic ids of a functional model's inputs and outputs. */
export function graphEndpoints(model: tf.LayersModel): { inputs: number[]; outputs: number[] } {
  const m = model as unknown as { inputs: Array<{ id: number }>; outputs: Array<{ id: number }> };
  return { inputs: m.inputs.map((t) => t.id), outputs: m.outputs.map((t) => t.id) };
}

/**
 * A layer field that getConfig() does not report (e.g. Conv1D's `dataFormat`, which its
 * getConfig deletes), read from the layer object itself.
 */
export function layerField<T>(layer: tf.layers.Layer, key: string): T {
  return (layer as unknown as Record<string, unknown>)[key] as T;
}

/** The subset of tfjs-layers' LayerVariable used to substitute weights. */
interface ReadableWeight {
  read(): tf.Tensor;
}

/**
 * Runs `fn` while every trainable weight of `layer` reads as the matching tensor of `weights`
 * (layer.trainableWeights order), so that the layer's own `call` can be differentiated with
 * respect to tensors that are not its variables. tfjs-layers reads a weight only through
 * `LayerVariable.read()`; an own property shadows the prototype method for the duration.
 */
export function withWeightsReplaced<T>(layer: tf.layers.Layer, weights: readonly tf.Tensor[], fn: () => T): T {
  const vars = layer.trainableWeights as unknown as ReadableWeight[];
  vars.forEach((v, i) => {
    const given = weights[i]!;
    Object.defineProperty(v, 'read', { value: () => given, configurable: true, writable: true });
  });
  try {
    return fn();
  } finally {
    for (const v of vars) delete (v as unknown as Record<string, unknown>).read;
  }
}

/**
 * The numbers of input and output tensors of the layer's first call in a model graph, or
 * undefined for a layer that has not been called symbolically.
 */
export function callArity(layer: tf.layers.Layer): { inputs: number; outputs: number } | undefined {
  const node = layer.inboundNodes[0] as unknown as { inputTensors: unknown[]; outputTensors: unknown[] } | undefined;
  return node ? { inputs: node.inputTensors.length, outputs: node.outputTensors.length } : undefined;
}
