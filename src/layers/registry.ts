/**
 * The registry of supported layer kinds: adding a kind is one file plus one line here. Layers
 * of other classes with trainable weights fall back to the generic (autodiff) kind.
 */
import type { tf } from '../tf.js';
import type { LayerKind } from './layer-kind.js';
import { denseKind } from './dense.js';
import { conv1dKind } from './conv1d.js';
import { conv2dKind } from './conv2d.js';
import { conv2dTransposeKind } from './conv2d-transpose.js';
import { depthwiseConv2dKind } from './depthwise-conv2d.js';
import { separableConv2dKind } from './separable-conv2d.js';
import { batchNormalizationKind } from './batch-normalization.js';
import { layerNormalizationKind } from './layer-normalization.js';
import { embeddingKind } from './embedding.js';
import { preluKind } from './prelu.js';
import { genericKind } from './generic.js';

const kinds: LayerKind[] = [
  denseKind,
  conv1dKind,
  conv2dKind,
  conv2dTransposeKind,
  depthwiseConv2dKind,
  separableConv2dKind,
  batchNormalizationKind,
  layerNormalizationKind,
  embeddingKind,
  preluKind,
];

/** The kind handling this layer's class, or undefined (the generic kind is not looked up here). */
export function findLayerKind(layer: tf.layers.Layer): LayerKind | undefined {
  const cls = layer.getClassName();
  return kinds.find((k) => k.classNames.includes(cls));
}

/** The kind of any layer with trainable weights: autodiff through the layer (generic.ts). */
export function genericLayerKind(): LayerKind {
  return genericKind;
}

/** Names of all registered classes (for error messages). */
export function supportedLayerClasses(): string[] {
  return kinds.flatMap((k) => [...k.classNames]);
}

/** Looks a kind up by its name ('dense', 'conv2d', ..., 'generic'). */
export function layerKindByName(name: string): LayerKind | undefined {
  return [...kinds, genericKind].find((k) => k.name === name);
}
