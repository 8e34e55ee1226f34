/**
 * The representation registry: one entry per representation, declaring its name (in files and
 * messages), what FIM takes (`representation`), which objects it saves and loads (`persist`:
 * toState / fromState), whether and how partial results merge (`merge`: the example-weighted
 * mean of matrices computed on disjoint data, or `mergedThrough` another representation whose
 * merge it is built from), how many bytes an object stores (`storedBytes`), and how the CLI
 * offers it (`cli`). Persistence, mergePartial, the worker pool and its threads, the CLI and the
 * error messages loop over `REGISTRY`; a new representation is its own file plus one entry here
 * (docs/architecture.md, "Adding a representation").
 *
 * Browser-safe: no Node module is imported.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError } from '../../errors.js';
import type { LayerCollection, LayerEntry } from '../../layers/layer-collection.js';
import { PVector } from '../pvector.js';
import type { FisherSpec, PMat, PMatBase, Representation } from './pmat.js';
import type { RepresentationState, RestoreContext } from './state.js';
import { PMatDense } from './dense.js';
import { PMatDiag } from './diag.js';
import { PMatBlockDiag } from './block-diag.js';
import { PMatLowRank } from './low-rank.js';
import { PMatKFAC } from './kfac.js';
import { factorRowsOf, factorsFromRows, holdsFactor, mergeFactor } from '../../statistics/kronecker-factors.js';
import { PMatEKFAC, kfacEigenBlocks } from './ekfac.js';
import { PMatQuasiDiag } from './quasi-diag.js';
import { PMatEye } from './eye.js';
import { PMatImplicit } from './implicit.js';
import { PMatEKFACBlockDiag, PMatMixed } from './mixed.js';

/** Estimated cost of one representation for a layer collection, n examples and O outputs. */
export interface RepresentationCost {
  /** Bytes the matrix stores. */
  bytes: number;
  /** Multiply-adds of the accumulation beyond the forward/backward passes themselves. */
  flops: number;
}

/** How the CLI, `npm start` and the demo offer a representation. */
export interface CliDescription {
  /** CLI name: 'dense', 'kfac', ... */
  readonly name: string;
  /** One line for `--help` and the README. */
  readonly summary: string;
  /** Every layer must have Kronecker factors (`entry.kind.kronecker`). */
  readonly needsKronecker: boolean;
  /** EKFAC: after the factors, `updateDiag` makes a second pass for the exact eigenbasis diagonal. */
  readonly updatesDiagonal: boolean;
  /** Stores nothing: every operation is a pass over the data. */
  readonly matrixFree: boolean;
  /** Estimated bytes and multiply-adds for `lc`, n examples and O outputs (the CLI's cost table). */
  cost(lc: LayerCollection, n: number, outputs: number): RepresentationCost;
}

/** An object the registry can save: a stored matrix or a PVector. */
export type Persistable = PMat | PVector;

/** One representation (or PVector) and what it supports. */
export interface RegistryEntry {
  /** Name in saved files and in messages (the class's representationName). */
  readonly name: string;
  /** What FIM({ representation }) takes, when the entry is computed from data. */
  readonly representation?: Representation<PMatBase>;
  /** Whether `x` is an object of this entry (for save and merge). */
  readonly owns?: (x: unknown) => boolean;
  /** Saving and loading: the state of an object, and the object of a state on `lc`. */
  readonly persist?: {
    /** The object's state: scalars, arrays and parts. */
    toState(x: Persistable): RepresentationState;
    /** The object of `state` rebuilt on `lc`; checks every size before allocating a tensor. */
    fromState(lc: LayerCollection, state: RepresentationState, context: RestoreContext): Persistable;
  };
  /**
   * The matrix of one pass over all the parts' data, from matrices of the same representation
   * on `lc` computed on disjoint parts, with example weights w (summing to 1).
   */
  readonly merge?: (parts: readonly PMat[], w: readonly number[], lc: LayerCollection) => PMat;
  /** Partial results are computed (and merged) in this representation, then turned into this one by `fromMerged` (EKFAC from merged KFAC factors). */
  readonly mergedThrough?: Representation<PMatBase>;
  /**
   * With `mergedThrough`: this representation's matrix of `spec` from the merged matrix of the
   * `mergedThrough` representation (which the caller still owns and disposes).
   */
  readonly fromMerged?: (merged: PMat, spec: FisherSpec) => PMat;
  /**
   * Bytes an object stores (float64 host arrays, float32 tensors; lazily built caches not
   * counted), or null when a part of it is of an unknown representation: the CLI's tables.
   */
  readonly storedBytes?: (x: Persistable | PMatBase) => number | null;
  /** How the CLI offers the representation. */
  readonly cli?: CliDescription;
}

/** Typed construction of an entry for objects of class `cls`. */
function entry<T extends Persistable | PMatBase>(e: {
  name: string;
  representation?: Representation<PMatBase>;
  cls?: { readonly prototype: T };
  toState?: (x: T) => RepresentationState;
  fromState?: (lc: LayerCollection, state: RepresentationState, context: RestoreContext) => T;
  merge?: (parts: readonly T[], w: readonly number[], lc: LayerCollection) => T;
  mergedThrough?: Representation<PMatBase>;
  fromMerged?: (merged: PMat, spec: FisherSpec) => PMat;
  storedBytes?: (x: T) => number | null;
  cli?: CliDescription;
}): RegistryEntry {
  const proto = e.cls?.prototype as object | undefined;
  return {
    name: e.name,
    ...(e.representation ? { representation: e.representation } : {}),
    ...(proto ? { owns: (x: unknown) => typeof x === 'object' && x !== null && Object.prototype.isPrototypeOf.call(proto, x) } : {}),
    ...(e.toState && e.fromState ? { persist: { toState: e.toState as (x: Persistable) => RepresentationState, fromState: e.fromState as (lc: LayerCollection, state: RepresentationState, context: RestoreContext) => Persistable } } : {}),
    ...(e.merge ? { merge: e.merge as unknown as RegistryEntry['merge'] } : {}),
    ...(e.mergedThrough ? { mergedThrough: e.mergedThrough } : {}),
    ...(e.fromMerged ? { fromMerged: e.fromMerged } : {}),
    ...(e.storedBytes ? { storedBytes: e.storedBytes as (x: Persistable | PMatBase) => number | null } : {}),
    ...(e.cli ? { cli: e.cli } : {}),
  };
}

/** Σ_j w_j a_j, entry by entry. */
function weightedMean(arrays: readonly Float64Array[], w: readonly number[]): Float64Array {
  const out = new Float64Array(arrays[0]!.length);
  arrays.forEach((a, j) => {
    if (a.length !== out.length) throw new InvalidArgumentError('merge: the partial results have different sizes');
    for (let k = 0; k < a.length; k++) out[k]! += w[j]! * a[k]!;
  });
  return out;
}

/** [K, C] Kronecker factor sizes of a layer, or [numel, 1] for a layer without factors. */
function factorSizes(e: LayerEntry): [number, number] {
  return e.kind.kronecker ? e.kind.kronecker.factorSizes(e.layer) : [e.numel, 1];
}
const sum = (lc: LayerCollection, f: (e: LayerEntry) => number) => lc.layers.reduce((a, e) => a + f(e), 0);
const kroneckerSize = (e: LayerEntry) => factorSizes(e)[0] ** 2 + factorSizes(e)[1] ** 2;

/** The matrix's state and registry name (for PMatMixed's parts). */
function partState(m: PMat): { kind: string; state: RepresentationState } {
  const e = entryOf(m);
  if (!e?.persist) throw new InvalidArgumentError(`save: a part of a PMatMixed, ${describeObject(m)}, cannot be saved (saveable: ${saveableNames().join(', ')})`);
  return { kind: e.name, state: e.persist.toState(m) };
}

/** Every representation, in the order the CLI lists them; then the saveable objects FIM does not compute. */
export const REGISTRY: readonly RegistryEntry[] = [
  entry({
    name: 'PMatDense', representation: PMatDense, cls: PMatDense,
    toState: (m) => m.toState(), fromState: (lc, s) => PMatDense.fromState(lc, s),
    merge: (parts, w, lc) => new PMatDense(lc, weightedMean(parts.map((m) => m.values()), w)),
    storedBytes: (m) => m.values().byteLength,
    cli: { name: 'dense', summary: 'the full d×d matrix (float64)', needsKronecker: false, updatesDiagonal: false, matrixFree: false, cost: (lc, n, o) => ({ bytes: 8 * lc.numel() ** 2, flops: n * o * lc.numel() ** 2 }) },
  }),
  entry({
    name: 'PMatBlockDiag', representation: PMatBlockDiag, cls: PMatBlockDiag,
    toState: (m) => m.toState(), fromState: (lc, s) => PMatBlockDiag.fromState(lc, s),
    merge: (parts, w, lc) => PMatBlockDiag.fromBlocks(lc, lc.layers.map((e) => weightedMean(parts.map((m) => m.block(e.id)), w))),
    storedBytes: (m) => sum(m.layerCollection, (e) => m.block(e.id).byteLength),
    cli: {
      name: 'blockdiag', summary: 'one dense block per layer, no cross-layer terms', needsKronecker: false, updatesDiagonal: false, matrixFree: false,
      cost: (lc, n, o) => ({ bytes: 8 * sum(lc, (e) => e.numel ** 2), flops: n * o * sum(lc, (e) => e.numel ** 2) }),
    },
  }),
  entry({
    name: 'PMatDiag', representation: PMatDiag, cls: PMatDiag,
    toState: (m) => m.toState(), fromState: (lc, s) => PMatDiag.fromState(lc, s),
    merge: (parts, w, lc) => new PMatDiag(lc, weightedMean(parts.map((m) => m.values()), w)),
    storedBytes: (m) => m.values().byteLength,
    cli: { name: 'diag', summary: 'the exact diagonal', needsKronecker: false, updatesDiagonal: false, matrixFree: false, cost: (lc, n, o) => ({ bytes: 8 * lc.numel(), flops: n * o * lc.numel() }) },
  }),
  entry({
    name: 'PMatLowRank', representation: PMatLowRank, cls: PMatLowRank,
    toState: (m) => m.toState(), fromState: (lc, s) => PMatLowRank.fromState(lc, s),
    // M = Σ_j w_j J_jᵀJ_j = [√w_j J_j]ᵀ[√w_j J_j]: stack the scaled factors.
    merge: (parts, w, lc) => new PMatLowRank(lc, tf.tidy(() => tf.concat(parts.map((m, j) => tf.mul(m.factor, Math.sqrt(w[j]!))), 0) as tf.Tensor2D)),
    storedBytes: (m) => m.factor.size * 4,
    cli: {
      name: 'lowrank', summary: 'JᵀJ/n from the stacked per-example gradients J (n·O rows)', needsKronecker: false, updatesDiagonal: false, matrixFree: false,
      cost: (lc, n, o) => ({ bytes: 4 * n * o * lc.numel(), flops: n * o * lc.numel() }),
    },
  }),
  entry({
    name: 'PMatKFAC', representation: PMatKFAC, cls: PMatKFAC,
    toState: (m) => m.toState(), fromState: (lc, s) => PMatKFAC.fromState(lc, s),
    // Both factors are means over examples, so merging them reproduces the single-pass KFAC.
    merge: (parts, w, lc) => {
      const first = parts[0]!;
      if (parts.some((m) => m.kfacType !== first.kfacType)) throw new InvalidArgumentError('merge: the KFAC parts use different kfacType conventions');
      const factors = lc.layers.map((e) => {
        const fs = parts.map((m) => m.layerFactors(e.id));
        // A factor held as rows merges as rows while they stay few (mergeFactor).
        const input = mergeFactor(fs, w, 'a');
        const output = mergeFactor(fs, w, 'g');
        // A separate bias block (Conv2DTranspose) is an exact mean over examples too.
        if (fs[0]!.bias && fs.some((f) => !f.bias)) throw new InvalidArgumentError(`merge: the KFAC parts disagree on the bias block of layer '${e.id}'`);
        const bias = fs[0]!.bias ? { bias: weightedMean(fs.map((f) => f.bias!), w) } : {};
        const { k, c } = fs[0]!;
        if ('dense' in input && 'dense' in output) return { k, c, a: input.dense, g: output.dense, ...bias };
        return factorsFromRows({ k, c, ...bias, ...('rows' in input ? { aRows: input.rows } : { a: input.dense }), ...('rows' in output ? { gRows: output.rows } : { g: output.dense }) });
      });
      return new PMatKFAC(lc, factors, first.kfacType);
    },
    storedBytes: (m) =>
      sum(m.layerCollection, (e) => {
        const f = m.layerFactors(e.id);
        const side = (s: 'a' | 'g') => (holdsFactor(f, s) ? (s === 'a' ? f.a : f.g) : factorRowsOf(f, s)!).byteLength;
        return side('a') + side('g') + (f.bias?.byteLength ?? 0);
      }),
    cli: {
      name: 'kfac', summary: 'Kronecker-factored blocks A ⊗ G per layer (Martens & Grosse 2015)', needsKronecker: true, updatesDiagonal: false, matrixFree: false,
      cost: (lc, n, o) => ({ bytes: 8 * sum(lc, kroneckerSize), flops: n * o * sum(lc, kroneckerSize) }),
    },
  }),
  entry({
    name: 'PMatEKFAC', representation: PMatEKFAC, cls: PMatEKFAC,
    toState: (m) => m.toState(), fromState: (lc, s, c) => PMatEKFAC.fromState(lc, s, c),
    // Eigenbases of different parts differ: threads compute KFAC factors, merged, then EKFAC's.
    mergedThrough: PMatKFAC,
    fromMerged: (merged, spec) => {
      const kfac = merged as PMatKFAC;
      return new PMatEKFAC(spec.layerCollection, kfacEigenBlocks(spec.layerCollection.layers.map((e) => kfac.layerFactors(e.id))), 'kfac', spec);
    },
    storedBytes: (m) => m.eigenBlocks().reduce((a, b) => a + b.uA.byteLength + b.uG.byteLength + b.diagonal.byteLength, 0),
    cli: {
      name: 'ekfac', summary: 'KFAC eigenbases with the exact diagonal in them (George et al. 2018; two passes)', needsKronecker: true, updatesDiagonal: true, matrixFree: false,
      cost: (lc, n, o) => ({ bytes: 8 * sum(lc, (e) => kroneckerSize(e) + e.numel), flops: n * o * sum(lc, (e) => kroneckerSize(e) + e.numel) }),
    },
  }),
  entry({
    name: 'PMatQuasiDiag', representation: PMatQuasiDiag, cls: PMatQuasiDiag,
    toState: (m) => m.toState(), fromState: (lc, s) => PMatQuasiDiag.fromState(lc, s),
    merge: (parts, w, lc) =>
      PMatQuasiDiag.fromBlocks(
        lc,
        lc.layers.map((e) => {
          const bs = parts.map((m) => m.layerBlock(e.id));
          if (bs.some((b) => (b.cross === null) !== (bs[0]!.cross === null))) throw new InvalidArgumentError(`merge: the QuasiDiag parts disagree on the cross terms of layer '${e.id}'`);
          return { diag: weightedMean(bs.map((b) => b.diag), w), cross: bs[0]!.cross ? weightedMean(bs.map((b) => b.cross!), w) : null };
        }),
      ),
    storedBytes: (m) =>
      sum(m.layerCollection, (e) => {
        const b = m.layerBlock(e.id);
        return b.diag.byteLength + (b.cross?.byteLength ?? 0);
      }),
    cli: {
      name: 'quasidiag', summary: 'diagonal plus weight–bias cross terms per unit (Ollivier 2015)', needsKronecker: true, updatesDiagonal: false, matrixFree: false,
      cost: (lc, n, o) => ({ bytes: 16 * lc.numel(), flops: 2 * n * o * lc.numel() }),
    },
  }),
  entry({
    name: 'PMatEKFACBlockDiag', representation: PMatEKFACBlockDiag,
    cli: {
      name: 'ekfac-blockdiag', summary: 'EKFAC where a layer has Kronecker factors, a dense block elsewhere (two passes)', needsKronecker: false, updatesDiagonal: true, matrixFree: false,
      cost: (lc, n, o) => {
        const size = (e: LayerEntry) => (e.kind.kronecker ? kroneckerSize(e) + e.numel : e.numel ** 2);
        return { bytes: 8 * sum(lc, size), flops: n * o * sum(lc, size) };
      },
    },
  }),
  entry({
    name: 'PMatImplicit', representation: PMatImplicit, cls: PMatImplicit,
    storedBytes: () => 0,
    cli: { name: 'implicit', summary: 'matrix-free: each product is a pass over the data', needsKronecker: false, updatesDiagonal: false, matrixFree: true, cost: () => ({ bytes: 0, flops: 0 }) },
  }),
  entry({
    name: 'PMatMixed', cls: PMatMixed,
    toState: (m) => m.toState(partState), fromState: (lc, s, c) => PMatMixed.fromState(lc, s, c),
    // Group by group, when every part has the same groups and each group's representation merges.
    merge: (parts, w, lc) => {
      const layout = (m: PMatMixed) => m.parts().map((p) => `${entryOf(p.matrix)?.name}:${p.layerIds.join(',')}`).join(';');
      if (parts.some((m) => layout(m) !== layout(parts[0]!))) throw new InvalidArgumentError('merge: the PMatMixed parts have different groups or group representations');
      const groups = parts.map((m) => m.parts());
      const merged: Array<{ matrix: PMat; layerIds: readonly string[] }> = [];
      try {
        groups[0]!.forEach((g, i) => merged.push({ matrix: mergeMatrices(groups.map((gs) => gs[i]!.matrix), w, g.matrix.layerCollection), layerIds: g.layerIds }));
        return PMatMixed.fromParts(lc, merged);
      } catch (e) {
        merged.forEach((m) => m.matrix.dispose());
        throw e;
      }
    },
    storedBytes: (m) => {
      let total = 0;
      for (const part of m.parts()) {
        const bytes = storedBytesOf(part.matrix);
        if (bytes === null) return null;
        total += bytes;
      }
      return total;
    },
  }),
  entry({ name: 'PMatEye', cls: PMatEye, toState: (m) => m.toState(), fromState: (lc, s) => PMatEye.fromState(lc, s) }),
  entry({ name: 'PVector', cls: PVector, toState: (v) => v.toState(), fromState: (lc, s) => PVector.fromState(lc, s) }),
];

/** The entry of an object (by its class), or undefined. */
export function entryOf(x: unknown): RegistryEntry | undefined {
  return REGISTRY.find((e) => e.owns?.(x));
}

/** The entry named `name` (as in saved files), or undefined. */
export function entryNamed(name: string): RegistryEntry | undefined {
  return REGISTRY.find((e) => e.name === name);
}

/** The entry of a representation passed to FIM, or undefined. */
export function entryOfRepresentation(r: unknown): RegistryEntry | undefined {
  return REGISTRY.find((e) => e.representation !== undefined && e.representation === r);
}

/** Names of the objects `save` accepts. */
export function saveableNames(): string[] {
  return REGISTRY.filter((e) => e.persist).map((e) => e.name);
}

/** Names of the matrices `mergePartial` accepts. */
export function mergeableNames(): string[] {
  return REGISTRY.filter((e) => e.merge).map((e) => e.name);
}

/** Names of the representations FIM computes. */
export function representationNames(): string[] {
  return REGISTRY.filter((e) => e.representation).map((e) => e.name);
}

/** Representations whose partial results merge (directly or through another one): what the worker pool may split. */
export function mergeableRepresentations(): Array<Representation<PMatBase>> {
  return REGISTRY.filter((e) => e.representation && (e.merge || (e.mergedThrough && e.fromMerged))).map((e) => e.representation!);
}

/**
 * The representation a worker thread computes for the name the main thread sends: one whose
 * partial results merge directly (the main thread sends a `mergedThrough` representation's
 * name), or undefined.
 */
export function threadRepresentation(name: string): Representation<PMatBase> | undefined {
  const e = entryNamed(name);
  return e?.representation && e.merge ? e.representation : undefined;
}

/** Bytes `x` stores (its entry's `storedBytes`), or null for an object no entry measures. */
export function storedBytesOf(x: unknown): number | null {
  const e = entryOf(x);
  return e?.storedBytes ? e.storedBytes(x as Persistable | PMatBase) : null;
}

/** The merged matrix of same-representation parts on `lc` (weights summing to 1). */
export function mergeMatrices(parts: readonly PMat[], w: readonly number[], lc: LayerCollection): PMat {
  const e = entryOf(parts[0]);
  if (!e?.merge) throw new InvalidArgumentError(`merge: ${describeObject(parts[0])} cannot be merged (supported: ${mergeableNames().join(', ')})`);
  return e.merge(parts, w, lc);
}

function describeObject(x: unknown): string {
  return typeof x === 'object' && x !== null ? `a ${x.constructor?.name ?? 'object'}` : typeof x;
}
