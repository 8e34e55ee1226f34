/**
 * The variant of a Fisher must match what the model's last layer outputs (CONVENTIONS.md:
 * `classif_logits` reads the output as logits, `classif_probs` as probabilities). A Keras-style
 * classifier usually ends in a softmax; read as logits, its probabilities give another, much
 * smaller matrix, with no error. This module finds a final softmax / log-softmax / sigmoid — the
 * output layer's own `activation`, an `Activation` layer or a `Softmax` layer, also inside a
 * nested model — and refuses the variants that misread it, naming the variant to use.
 *
 * Accepted pairs, and why:
 * - softmax → `classif_probs` (the same Fisher as `classif_logits` on the pre-softmax logits);
 * - log-softmax → `classif_logsoftmax`, or `classif_logits`: softmax(log p) = p, and the Fisher
 *   of logits is invariant to adding a constant to every logit, so both are exact;
 * - sigmoid → no variant reads Bernoulli probabilities: the way out is the logit output;
 * - `regression` and `empirical` do not read the output as a distribution's parameters: always
 *   accepted.
 */
import type { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';

/** A final activation that decides which variants are valid. */
export type OutputActivation = 'softmax' | 'log_softmax' | 'sigmoid';

/** The last layer that computes the model's (single) output, looking inside nested models. */
function outputLayer(model: tf.LayersModel): tf.layers.Layer | undefined {
  const symbolic = model.outputs[0] as (tf.SymbolicTensor & { sourceLayer?: tf.layers.Layer }) | undefined;
  const layer = symbolic?.sourceLayer ?? model.layers[model.layers.length - 1];
  if (layer && 'outputs' in layer && Array.isArray((layer as tf.LayersModel).outputs) && (layer as tf.LayersModel).layers) {
    return outputLayer(layer as tf.LayersModel);
  }
  return layer;
}

/** 'softmax', 'logSoftmax', 'log_softmax', 'sigmoid' → the normalised name; others undefined. */
function normalise(name: unknown): OutputActivation | undefined {
  if (typeof name !== 'string') return undefined;
  const key = name.toLowerCase().replace(/_/g, '');
  return key === 'softmax' ? 'softmax' : key === 'logsoftmax' ? 'log_softmax' : key === 'sigmoid' ? 'sigmoid' : undefined;
}

/**
 * The final softmax, log-softmax or sigmoid of `model`'s output with the layer that applies it,
 * or undefined when the output is not squashed by one of them.
 *
 * @example
 * finalActivation(tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4], activation: 'softmax' })] }))
 * // { activation: 'softmax', layer: 'dense_Dense1' }
 */
export function finalActivation(model: tf.LayersModel): { activation: OutputActivation; layer: string } | undefined {
  const layer = outputLayer(model);
  if (!layer) return undefined;
  const config = layer.getConfig() as { activation?: unknown };
  const activation = layer.getClassName() === 'Softmax' ? 'softmax' : normalise(config.activation);
  return activation ? { activation, layer: layer.name } : undefined;
}

/** The variants each final activation makes wrong, with the variant to use instead. */
const MISREAD: Record<OutputActivation, { wrong: readonly string[]; use: string }> = {
  softmax: {
    wrong: ['classif_logits', 'classif_logsoftmax', 'classif_binary_logits', 'segmentation_logits'],
    use: "variant 'classif_probs' (the same Fisher as 'classif_logits' on the logits before the softmax)",
  },
  log_softmax: {
    wrong: ['classif_probs', 'classif_binary_logits'],
    use: "variant 'classif_logsoftmax' (or 'classif_logits': both are exact on log-probabilities)",
  },
  sigmoid: {
    wrong: ['classif_logits', 'classif_logsoftmax', 'classif_probs', 'classif_binary_logits', 'segmentation_logits'],
    use: "the logits: give the last layer activation 'linear' (apply the sigmoid outside the model) and use variant 'classif_binary_logits'",
  },
};

/**
 * Throws InvalidArgumentError when `variant` misreads the output of `model`'s final activation,
 * naming the layer, its activation and the variant to use.
 *
 * @example
 * checkOutputActivation(softmaxClassifier, 'classif_logits', 'FIM');
 * // InvalidArgumentError: FIM: model 'm' ends in a softmax (layer 'dense_2'): its outputs are probabilities, ...
 */
export function checkOutputActivation(model: tf.LayersModel, variant: string, where: string): void {
  const final = finalActivation(model);
  if (!final) return;
  const rule = MISREAD[final.activation];
  if (!rule.wrong.includes(variant)) return;
  const reads = final.activation === 'log_softmax' ? 'log-probabilities' : 'probabilities';
  throw new InvalidArgumentError(
    `${where}: model '${model.name}' ends in a ${final.activation.replace('_', '-')} (layer '${final.layer}'): its outputs are ${reads}, ` +
      `which variant '${variant}' would misread as ${variant === 'classif_probs' ? 'probabilities' : 'logits'}; use ${rule.use}`,
  );
}
