/**
 * The model and data of a CLI run: a model.json, a data file reshaped to the model's input,
 * optional labels, split into batches. Every mismatch is a one-line CliError. Node only.
 */
import { tf } from '../tf.js';
import { LayerCollection, UnsupportedLayerError } from '../index.js';
import { supportedLayerClasses } from '../layers/registry.js';
import { CliError } from './errors.js';
import { integerLabels, readExamples, readLabels } from './data-io.js';
import { boundedFlag, integerFlag } from './flags.js';
import { loadModelFile } from './model-io.js';

export interface Inputs {
  model: tf.LayersModel;
  batches: Array<{ xs: tf.Tensor; ys?: tf.Tensor }>;
  n: number;
  /** Number of model outputs O (last axis of the output). */
  outputs: number;
  /** Whether targets are attached to the batches. */
  hasLabels: boolean;
}

export interface InputOptions {
  model: string;
  data: string;
  labels?: string;
  /** Keep only the first `count` examples. */
  count?: number;
  batchSize: number;
  /** Multiply inputs by this (default 1/255 for uint8 IDX data, 1 otherwise). */
  scale?: number;
  /** Labels are required (the 'empirical' variant). */
  needLabels: boolean;
  /**
   * Check labels against the model's classes: in [0, O) for O outputs, in {0, 1} for one output
   * (binary). Default true; false where labels are not class indices.
   */
  labelsAreClasses?: boolean;
}

/**
 * Parses a positive integer option (the decimal grammar; at most 10⁹, or the flag's documented
 * bound when it has one in FLAG_BOUNDS).
 */
export function positiveInt(value: string | undefined, name: string, fallback?: number): number {
  if (name === '--batch-size' || name === '--count' || name === '--mc' || name === '--top') return boundedFlag(value, name, fallback);
  return integerFlag(value, name, 1, 1e9, fallback);
}

/** Classes that labels index for a model with `outputs` outputs (one output: a binary label). */
function classesOf(outputs: number): number {
  return outputs === 1 ? 2 : outputs;
}

/** Loads the model and the data, checks that they fit together, and batches the data. */
export async function loadInputs(o: InputOptions): Promise<Inputs> {
  const model = await loadModelFile(o.model);
  try {
    return await feedModel(model, o);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The data of `o` checked against `model` and batched. */
async function feedModel(model: tf.LayersModel, o: InputOptions): Promise<Inputs> {
  if (model.inputs.length !== 1) throw new CliError(`the model has ${model.inputs.length} inputs; the CLI feeds models with one input`);
  const inputShape = model.inputs[0]!.shape.slice(1);
  if (inputShape.some((s) => s === null)) throw new CliError(`the model input has unknown dimensions [${inputShape.map((s) => s ?? '?')}]; the CLI needs fixed sizes`);
  const perModel = (inputShape as number[]).reduce((a, b) => a * b, 1);
  const data = await readExamples(o.data, '--data', o.count);
  const per = data.values.length / data.n;
  if (per !== perModel) {
    throw new CliError(`--data: examples in ${o.data} have shape [${data.exampleShape}] (${per} values) but the model expects [${inputShape}] (${perModel} values)`);
  }
  let labels = data.labels ? integerLabels(data.labels, `--data: ${o.data}: "ys"`) : undefined;
  if (o.labels) {
    const read = await readLabels(o.labels, o.count);
    if (read.total !== data.total) throw new CliError(`--labels: ${read.total} labels in ${o.labels} for ${data.total} examples in ${o.data}`);
    labels = read.labels;
  }
  if (o.needLabels && !labels) throw new CliError(`the 'empirical' variant needs labels: pass --labels FILE (or JSON data with "ys")`);
  const outputShape = model.outputs[0]!.shape;
  const outputs = (outputShape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  if (labels && (o.labelsAreClasses ?? true)) {
    const classes = classesOf(outputs);
    const bad = labels.findIndex((y) => y >= classes);
    if (bad >= 0) {
      const where = o.labels ? `--labels: ${o.labels}` : `--data: ${o.data}: "ys"`;
      throw new CliError(`${where}: label ${bad} is ${labels[bad]}, but the model has ${outputs} output${outputs > 1 ? 's' : ''}, so labels are class indices in [0, ${classes})`);
    }
  }
  const n = Math.min(o.count ?? data.n, data.n);
  const scale = o.scale ?? (data.uint8 ? 1 / 255 : 1);
  const batches: Inputs['batches'] = [];
  for (let start = 0; start < n; start += o.batchSize) {
    const end = Math.min(n, start + o.batchSize);
    const values = data.values.slice(start * per, end * per);
    if (scale !== 1) for (let i = 0; i < values.length; i++) values[i]! *= scale;
    const xs = tf.tensor(values, [end - start, ...(inputShape as number[])]);
    batches.push(labels ? { xs, ys: tf.tensor1d(labels.slice(start, end), 'int32') } : { xs });
  }
  return { model, batches, n, outputs, hasLabels: labels !== undefined };
}

/**
 * The model's layer collection, with the CLI's wording when a layer is not supported (the
 * library's error suggests an API option; here the way out is a flag).
 */
export function collectLayers(model: tf.LayersModel, ignoreUnsupported: boolean): LayerCollection {
  try {
    return LayerCollection.fromModel(model, { ignoreUnsupported });
  } catch (e) {
    if (!(e instanceof UnsupportedLayerError)) throw e;
    const layer = /layer '([^']+)' of class (\w+)/.exec(e.message);
    const what = layer ? `layer '${layer[1]}' (${layer[2]})` : 'a layer';
    throw new CliError(`unsupported layer: ${what} has trainable weights but no layer kind supports it (supported: ${supportedLayerClasses().join(', ')}); pass --ignore-unsupported to leave its parameters out`);
  }
}
