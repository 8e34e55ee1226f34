/**
 * The persisted state of a matrix or vector: what `toState()` returns and `fromState(lc, state,
 * context)` rebuilds. The file format (src/persistence/format.ts) stores it as a JSON header
 * (meta, array names, parts) and the arrays' raw bytes; float64 stays float64, so a round trip
 * is exact. The types live apart from the registry so that representation classes can use them
 * without importing one another.
 */
import type { tf } from '../../tf.js';
import { InvalidArgumentError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import type { FisherSpec, PMatBase } from './pmat.js';

/** A scalar of a state's meta data (strings, finite numbers, booleans, null). */
export type StateScalar = string | number | boolean | null;

/**
 * A persisted state: scalars, named float arrays and, for a matrix made of sub-matrices
 * (PMatMixed), its parts.
 * @example { meta: { kfacType: 'expand' }, arrays: { a0: A, g0: G } }
 */
export interface RepresentationState {
  /** Scalars: sizes, options, the recorded definition ('definition.*'). */
  readonly meta: Readonly<Record<string, StateScalar>>;
  /** Array names are letters, digits and '_' (starting with a letter). */
  readonly arrays: Readonly<Record<string, Float32Array | Float64Array>>;
  /** Sub-matrices (PMatMixed), saved recursively. */
  readonly parts?: ReadonlyArray<StatePart>;
}

/** One sub-matrix of a state: its registry name, the ids of its layers (in order) and its state. */
export interface StatePart {
  /** The sub-matrix's registry name ('PMatKFAC'). */
  readonly kind: string;
  /** The ids of its layers, in parameter order. */
  readonly layerIds: readonly string[];
  /** Its own state. */
  readonly state: RepresentationState;
}

/** What `fromState` may need beyond the layer collection. */
export interface RestoreContext {
  /** The model the state is loaded onto. */
  readonly model: tf.LayersModel;
  /** Rebuilds a sub-matrix by its registry name (PMatMixed's groups). */
  restore(kind: string, lc: LayerCollection, state: RepresentationState): PMatBase;
  /**
   * The definition of a matrix (variant and options, see `definitionOf`) recorded in `meta`
   * under keys 'definition.*', rebuilt on `lc` without data, for later passes (EKFAC's
   * updateDiag); null when the state records none.
   */
  spec(lc: LayerCollection, meta: RepresentationState['meta']): FisherSpec | null;
}

/** Reads a meta entry that must be one of `allowed`, or throws naming it. */
export function metaChoice<T extends string>(meta: RepresentationState['meta'], key: string, allowed: readonly T[], where: string): T {
  const v = meta[key];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`${where}: '${key}' must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, found ${JSON.stringify(v)}`);
  }
  return v as T;
}

/** Reads a float64 array of a state, or throws naming it. */
export function stateArray(state: RepresentationState, name: string, where: string, length?: number): Float64Array {
  const a = state.arrays[name];
  if (!(a instanceof Float64Array)) throw new InvalidArgumentError(`${where}: array '${name}' is ${a ? 'float32, expected float64' : 'missing'}`);
  if (length !== undefined && a.length !== length) throw new InvalidArgumentError(`${where}: array '${name}' has ${a.length} values, expected ${length}`);
  return a;
}
