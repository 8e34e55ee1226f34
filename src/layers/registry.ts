/**
 * The registry of supported layer kinds: adding a kind is one file plus one line here.
 */
import type { tf } from '../tf.js';
import type { LayerKind } from './layer-kind.js';
import { denseKind } from './dense.js';
import { conv2dKind } from './conv2d.js';

const kinds: LayerKind[] = [denseKind, conv2dKind];

/** The kind handling this layer's class, or undefined. */
export function findLayerKind(layer: tf.layers.Layer): LayerKind | undefined {
  const cls = layer.getClassName();
  return kinds.find((k) => k.classNames.includes(cls));
}

/** Names of all registered kinds (for error messages). */
export function supportedLayerClasses(): string[] {
  return kinds.flatMap((k) => [...k.classNames]);
}

/** Looks a kind up by its name ('dense', 'conv2d', ...). */
export function layerKindByName(name: string): LayerKind | undefined {
  return kinds.find((k) => k.name === name);
}
