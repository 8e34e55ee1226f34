/**
 * Which parameters a curvature matrix is about, and in what order (CONVENTIONS.md): the
 * trainable weights of the supported layers, in the order of `model.trainableWeights` with
 * nested models expanded in place, each flattened row-major in its tfjs shape.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, LayerCollectionMismatchError, UnsupportedLayerError } from '../errors.js';
import type { LayerKind, ParameterSpec } from './layer-kind.js';
import { findLayerKind, genericLayerKind, supportedLayerClasses } from './registry.js';
import { leafLayers } from './leaf-layers.js';
import { checkOptions, describe } from '../validation.js';

/** One layer of a collection. */
export interface LayerEntry {
  /** Layer name, prefixed by the names of enclosing nested models ('inner/dense_1'). */
  readonly id: string;
  /** The tfjs layer. */
  readonly layer: tf.layers.Layer;
  /** Its kind: parameter layout, pre-activation and the contractions of (x, g). */
  readonly kind: LayerKind;
  /** Its trainable weights in `model.trainableWeights` order (kernel then bias, ...). */
  readonly parameters: readonly ParameterSpec[];
  /** Number of scalar parameters of the layer. */
  readonly numel: number;
  /** Position of the layer's first parameter in the flat parameter vector. */
  readonly offset: number;
}

/** Options of `LayerCollection.fromModel`. */
export interface FromModelOptions {
  /**
   * Handle layers with trainable weights that no specific kind supports (SimpleRNN, LSTM, GRU,
   * custom layers, or a configuration a kind refuses, such as channelsFirst convolutions) with
   * the generic kind, exact through tfjs autodiff but without Kronecker factors and one backward
   * pass per example through the layer. Default true.
   */
  generic?: boolean;
  /**
   * Skip the layers with trainable weights that no kind accepts (with `generic: false`, those
   * without a specific kind; with the generic kind, e.g. custom layers with several inputs),
   * instead of throwing. Their parameters are then simply not part of the matrices. Default false.
   */
  ignoreUnsupported?: boolean;
}

/**
 * The kind of a layer with trainable weights under `options`: its registered kind if that
 * accepts the layer's configuration, else the generic kind if allowed and it accepts the layer;
 * undefined to skip the layer (`ignoreUnsupported`). Otherwise the first refusal is thrown.
 */
function resolveKind(id: string, layer: tf.layers.Layer, options: FromModelOptions): LayerKind | undefined {
  const generic = options.generic ?? true;
  const kind = findLayerKind(layer);
  const candidates = [...(kind ? [kind] : []), ...(generic ? [genericLayerKind()] : [])];
  let refusal: UnsupportedLayerError | undefined;
  for (const candidate of candidates) {
    try {
      candidate.parameters(layer);
      return candidate;
    } catch (e) {
      if (!(e instanceof UnsupportedLayerError)) throw e;
      refusal ??= e;
    }
  }
  if (options.ignoreUnsupported) return undefined;
  throw (
    refusal ??
    new UnsupportedLayerError(
      `layer '${id}' of class ${layer.getClassName()} has trainable weights but no specific layer kind ` +
        `(those: ${supportedLayerClasses().join(', ')}), and the generic kind is off ({ generic: false }). Allow the generic ` +
        `kind, pass { ignoreUnsupported: true } to leave its parameters out, set layer.trainable = false, or build a ` +
        `collection by hand with LayerCollection.fromLayers.`,
    )
  );
}

/** Which parameters a matrix or vector is over, in the order of `model.trainableWeights`: the supported layers, each with its kind, offset and size in the flat parameter vector. */
export class LayerCollection {
  /** The collected layers, in parameter order. */
  readonly layers: readonly LayerEntry[];
  private readonly byId: Map<string, LayerEntry>;
  private readonly total: number;
  /** The model the collection was read from, which fixes the order of a union (`merge`). */
  private readonly source: tf.LayersModel | undefined;

  private constructor(items: ReadonlyArray<{ id: string; layer: tf.layers.Layer; kind: LayerKind }>, source?: tf.LayersModel) {
    this.source = source;
    let offset = 0;
    const seen = new Set<string>();
    this.layers = items.map(({ id, layer, kind }) => {
      if (seen.has(id)) throw new InvalidArgumentError(`layer id '${id}' appears twice in the layer collection`);
      seen.add(id);
      const parameters = kind.parameters(layer);
      const numel = parameters.reduce((a, p) => a + p.size, 0);
      const entry: LayerEntry = { id, layer, kind, parameters, numel, offset };
      offset += numel;
      return entry;
    });
    this.total = offset;
    this.byId = new Map(this.layers.map((e) => [e.id, e]));
  }

  /**
   * The collection of every trainable, supported layer of `model` (Sequential or functional,
   * nested models included).
   *
   * Layers without a specific kind use the generic (autodiff) kind unless `generic: false`.
   *
   * @throws UnsupportedLayerError with `generic: false`, for a layer with trainable weights that
   *   no specific kind supports, unless `ignoreUnsupported` is set.
   * @example
   * const lc = LayerCollection.fromModel(model);
   * lc.numel(); // number of parameters
   */
  static fromModel(model: tf.LayersModel, options: FromModelOptions = {}): LayerCollection {
    if (!(model instanceof tf.LayersModel)) {
      throw new InvalidArgumentError(`LayerCollection.fromModel: 'model' must be a tf.LayersModel or tf.Sequential, received ${describe(model)}`);
    }
    checkOptions(options, ['generic', 'ignoreUnsupported'], 'LayerCollection.fromModel');
    const items: Array<{ id: string; layer: tf.layers.Layer; kind: LayerKind }> = [];
    for (const { id, layer } of leafLayers(model)) {
      if (layer.trainableWeights.length === 0) continue;
      const kind = resolveKind(id, layer, options);
      if (kind) items.push({ id, layer, kind });
    }
    return new LayerCollection(items, model);
  }

  /**
   * A collection of hand-picked layers of `model`, given by id (as in `fromModel`) or by layer
   * object, kept in model order. Layers without a specific kind use the generic kind unless
   * `generic: false`.
   */
  static fromLayers(
    model: tf.LayersModel,
    layers: ReadonlyArray<string | tf.layers.Layer>,
    options: Pick<FromModelOptions, 'generic'> = {},
  ): LayerCollection {
    if (!(model instanceof tf.LayersModel)) {
      throw new InvalidArgumentError(`LayerCollection.fromLayers: 'model' must be a tf.LayersModel or tf.Sequential, received ${describe(model)}`);
    }
    if (!Array.isArray(layers)) {
      throw new InvalidArgumentError(`LayerCollection.fromLayers: 'layers' must be an array of layer ids or layer objects, received ${describe(layers)}`);
    }
    checkOptions(options, ['generic'], 'LayerCollection.fromLayers');
    const all = [...leafLayers(model)];
    const wanted = new Set<string>();
    for (const l of layers) {
      const hit = all.find((e) => (typeof l === 'string' ? e.id === l : e.layer === l));
      if (!hit) {
        const name = typeof l === 'string' ? l : l.name;
        throw new InvalidArgumentError(`LayerCollection.fromLayers: no layer '${name}' in the model (layers: ${all.map((e) => e.id).join(', ')})`);
      }
      wanted.add(hit.id);
    }
    const items = all
      .filter((e) => wanted.has(e.id))
      .map(({ id, layer }) => {
        if (layer.trainableWeights.length === 0) {
          throw new UnsupportedLayerError(`layer '${id}' of class ${layer.getClassName()} cannot be collected: it has no trainable weights`);
        }
        return { id, layer, kind: resolveKind(id, layer, { generic: options.generic ?? true })! };
      });
    return new LayerCollection(items, model);
  }

  /** Total number of parameters d. */
  numel(): number {
    return this.total;
  }

  /** The entry with this id; throws if absent. */
  get(id: string): LayerEntry {
    const e = this.byId.get(id);
    if (!e) throw new InvalidArgumentError(`no layer '${id}' in this layer collection (layers: ${this.ids().join(', ')})`);
    return e;
  }

  /**
   * Whether the collection holds the layer `id`.
   *
   * @example
   * ```ts
   * if (lc.has('dense_1')) console.log(lc.get('dense_1').numel);
   * ```
   */
  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** The layer ids, in parameter order. */
  ids(): string[] {
    return this.layers.map((e) => e.id);
  }

  /** Same layer ids, kinds and parameter shapes, in the same order. */
  equals(other: LayerCollection): boolean {
    checkCollection(other, 'equals');
    if (this === other) return true;
    if (this.layers.length !== other.layers.length) return false;
    return this.layers.every((e, i) => {
      const o = other.layers[i]!;
      return (
        e.id === o.id &&
        e.kind.name === o.kind.name &&
        e.parameters.length === o.parameters.length &&
        e.parameters.every((p, j) => p.shape.join(',') === o.parameters[j]!.shape.join(','))
      );
    });
  }

  /**
   * The union of both collections' layers. When both were read from the same model, the union
   * is in that model's order (the parameter order of CONVENTIONS.md), so `a.merge(b)` and
   * `b.merge(a)` are the same collection; otherwise it is this collection's layers, then those of
   * `other` it does not already have.
   */
  merge(other: LayerCollection): LayerCollection {
    checkCollection(other, 'merge');
    const items = [...this.layers, ...other.layers.filter((e) => !this.byId.has(e.id))];
    if (this.source === undefined || this.source !== other.source) return new LayerCollection(items);
    const rank = new Map([...leafLayers(this.source)].map((e, i) => [e.id, i]));
    items.sort((a, b) => rank.get(a.id)! - rank.get(b.id)!);
    return new LayerCollection(items, this.source);
  }

  /** The layers present in both collections, in this collection's order. */
  intersect(other: LayerCollection): LayerCollection {
    checkCollection(other, 'intersect');
    return new LayerCollection(this.layers.filter((e) => other.byId.has(e.id)), this.source);
  }

  /** Throws LayerCollectionMismatchError unless `other` equals this collection. */
  assertSame(other: LayerCollection, what: string): void {
    if (!this.equals(other)) {
      throw new LayerCollectionMismatchError(
        `${what} is defined on a different layer collection ([${other.ids().join(', ')}], d=${other.numel()}) ` +
          `than this object ([${this.ids().join(', ')}], d=${this.numel()}). Build both from the same collection.`,
      );
    }
  }

  /**
   * The layers of `model` that correspond to this collection's entries (same ids, same
   * parameter shapes), e.g. to write a vector into a copy of the model.
   */
  layersOf(model: tf.LayersModel): tf.layers.Layer[] {
    const found = new Map([...leafLayers(model)].map((e) => [e.id, e.layer]));
    return this.layers.map((e) => {
      const layer = found.get(e.id);
      const shapes = layer?.trainableWeights.map((w) => w.shape.join(','));
      if (!layer || shapes?.join(';') !== e.parameters.map((p) => p.shape.join(',')).join(';')) {
        throw new LayerCollectionMismatchError(
          `the model has no layer '${e.id}' with parameter shapes ${e.parameters.map((p) => `[${p.shape.join(',')}]`).join(' ')}; ` +
            `it is not the model this layer collection was built from.`,
        );
      }
      return layer;
    });
  }
}


function checkCollection(other: unknown, op: string): void {
  if (!(other instanceof LayerCollection)) {
    throw new InvalidArgumentError(`LayerCollection.${op}: the argument must be a LayerCollection, received ${describe(other)}`);
  }
}
