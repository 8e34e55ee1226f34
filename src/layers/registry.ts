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

/**
 * One line per kind. `secondOrderVerified`: the kind's pre-activation, differentiated twice in θ
 * by tfjs, matches finite differences of gradients (test/metrics/hessian.test.ts checks each such
 * kind); the Hessian refuses layers of other kinds unless `allowUnverifiedLayers` is set.
 */
const entries: ReadonlyArray<{ kind: LayerKind; secondOrderVerified: boolean }> = [
  { kind: denseKind, secondOrderVerified: true },
  { kind: conv1dKind, secondOrderVerified: true },
  { kind: conv2dKind, secondOrderVerified: true },
  { kind: conv2dTransposeKind, secondOrderVerified: true },
  { kind: depthwiseConv2dKind, secondOrderVerified: true },
  { kind: separableConv2dKind, secondOrderVerified: true },
  { kind: batchNormalizationKind, secondOrderVerified: true },
  { kind: layerNormalizationKind, secondOrderVerified: true },
  { kind: embeddingKind, secondOrderVerified: true },
  { kind: preluKind, secondOrderVerified: true },
];
const kinds: readonly LayerKind[] = entries.map((e) => e.kind);

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

/** Names of the registered kinds ('dense', 'conv2d', ...), the generic kind last. */
export function layerKindNames(): string[] {
  return [...kinds, genericKind].map((k) => k.name);
}

/** Names of the kinds whose second derivatives are verified (see `entries`). */
export function secondOrderVerifiedKinds(): string[] {
  return entries.filter((e) => e.secondOrderVerified).map((e) => e.kind.name);
}

/** Layer classes handled by a kind whose second derivatives are verified. */
export function secondOrderVerifiedClasses(): string[] {
  return entries.filter((e) => e.secondOrderVerified).flatMap((e) => [...e.kind.classNames]);
}

/** Looks a kind up by its name ('dense', 'conv2d', ..., 'generic'). */
export function layerKindByName(name: string): LayerKind | undefined {
  return [...kinds, genericKind].find((k) => k.name === name);
}
