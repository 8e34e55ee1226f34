/**
 * Forward passes for layers outside the layer collection that tfjs cannot differentiate through
 * by itself, although gradients must flow through them to the collected layers before them:
 * - BatchNormalization without scale or center (tfjs's batchNorm gradient fails on the missing
 *   scale or offset);
 * - Conv1D, Conv2D and SeparableConv2D with dilation > 1 (tfjs has no gradient for dilated
 *   convolutions, not even with respect to the input).
 * Each computes the same function as tfjs-layers' inference-mode call (checked by the executor
 * tests against model.predict), from the layer's weights whether or not they are trainable.
 */
import type { tf } from '../tf.js';
import { UnsupportedLayerError } from '../errors.js';
import { batchNormInference } from './batch-normalization.js';
import { findLayerKind } from './registry.js';
import { configValue } from './tfjs-internals.js';

const DILATED = ['Conv1D', 'Conv2D', 'SeparableConv2D'];

function dilated(layer: tf.layers.Layer): boolean {
  const d = configValue<number | number[] | undefined>(layer, 'dilationRate');
  return (Array.isArray(d) ? d : [d ?? 1]).some((v) => v !== 1);
}

/** The layer's output for one input through differentiable ops, or undefined to use layer.apply. */
export function differentiableForward(layer: tf.layers.Layer, ins: readonly tf.Tensor[]): tf.Tensor | undefined {
  if (ins.length !== 1) return undefined;
  const cls = layer.getClassName();
  if (cls === 'BatchNormalization') {
    const scaleOrCenterMissing = configValue<boolean>(layer, 'scale') === false || configValue<boolean>(layer, 'center') === false;
    return scaleOrCenterMissing ? batchNormInference(layer, ins[0]!) : undefined;
  }
  if (!DILATED.includes(cls) || !dilated(layer)) return undefined;
  const kind = findLayerKind(layer)!;
  try {
    // layer.weights lists kernel(s) then bias in creation order, trainable or not.
    const s = kind.preactivation(layer, ins[0]!, layer.weights.map((w) => w.read()));
    return kind.activate(layer, s);
  } catch (e) {
    if (e instanceof UnsupportedLayerError) return undefined; // a configuration the kind refuses
    throw e;
  }
}
