/**
 * PMatMixed: a block-diagonal matrix whose layer groups each use their own representation,
 * e.g. EKFAC for the layers with Kronecker factors and dense blocks elsewhere
 * (`PMatEKFACBlockDiag`). Cross terms between groups are zero; every operation combines the
 * groups' results. The groups are computed in one shared pass over the data
 * (statistics/shared-pass.ts).
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError } from '../../errors.js';
import { LayerCollection, type LayerEntry } from '../../layers/layer-collection.js';
import { computeInOnePass } from '../../statistics/shared-pass.js';
import type { Loader } from '../../data/loader.js';
import { PVector } from '../pvector.js';
import { type FisherSpec, type NormOrder, type PMat, type Representation, type SolveOptions, checkAlive, checkNormOrder, checkRegul, checkScalar, checkVector } from './pmat.js';
import { PMatBlockDiag } from './block-diag.js';
import { PMatEKFAC } from './ekfac.js';
import { checkOptions, closestName, describe } from '../arguments.js';
import type { RepresentationState, RestoreContext, StatePart } from './state.js';
import { layerKindByName, layerKindNames } from '../../layers/registry.js';
import { type Capabilities, capabilitiesOf } from './capabilities.js';

/** Names of the layer kinds, for the check of `byLayerKind`. */
const KIND_NAMES = layerKindNames();

/** Which representation each layer gets: by id, then by kind name, then by Kronecker support, then the default. */
export interface MixedMapping {
  /** The representation of every layer no other key names. */
  default: Representation<PMat>;
  /** By layer id; takes precedence over `byLayerKind` and `kronecker`. */
  byLayerId?: Record<string, Representation<PMat>>;
  /** Keyed by layer kind name: 'dense', 'conv2d', ... */
  byLayerKind?: Record<string, Representation<PMat>>;
  /** For the layers that have Kronecker factors (KFAC, EKFAC, QuasiDiag). */
  kronecker?: Representation<PMat>;
}

interface Group {
  readonly mat: PMat;
  /** Indices in the full collection of this group's layers, in order. */
  readonly layers: readonly number[];
  /** The optional operations `mat` offers, checked once when the group is formed. */
  readonly can: Capabilities;
}

function group(mat: PMat, layers: readonly number[]): Group {
  return { mat, layers, can: capabilitiesOf(mat) };
}

export class PMatMixed implements PMat {
  /** The name in saved files and messages: 'PMatMixed'. */
  static readonly representationName = 'PMatMixed';
  readonly layerCollection: LayerCollection;
  private readonly liveGroups: Group[];
  private disposed = false;

  private constructor(lc: LayerCollection, groups: Group[]) {
    this.layerCollection = lc;
    this.liveGroups = groups;
  }

  /** The groups; throws DisposedError once disposed. */
  private get groups(): Group[] {
    checkAlive(!this.disposed, 'PMatMixed');
    return this.liveGroups;
  }

  /**
   * A representation choosing one representation per layer.
   * @example FIM({ model, loader, representation: PMatMixed.fromMapping({ default: PMatBlockDiag, byLayerKind: { dense: PMatEKFAC } }) })
   */
  static fromMapping(mapping: MixedMapping, name = 'PMatMixed'): Representation<PMatMixed> {
    checkOptions(mapping, ['default', 'byLayerId', 'byLayerKind', 'kronecker'], 'PMatMixed.fromMapping', 'mapping');
    if (mapping === undefined) throw new InvalidArgumentError(`PMatMixed.fromMapping: 'mapping' is required ({ default, byLayerId?, byLayerKind?, kronecker? })`);
    for (const key of ['byLayerId', 'byLayerKind'] as const) {
      const m = mapping[key];
      if (m !== undefined && (typeof m !== 'object' || m === null || Array.isArray(m))) {
        throw new InvalidArgumentError(`PMatMixed.fromMapping: '${key}' must be an object, received ${describe(m)}`);
      }
    }
    for (const kind of Object.keys(mapping.byLayerKind ?? {})) {
      if (!layerKindByName(kind)) {
        const near = closestName(kind, KIND_NAMES);
        throw new InvalidArgumentError(
          `PMatMixed.fromMapping: 'byLayerKind' names an unknown layer kind '${kind}'${near ? ` (did you mean '${near}'?)` : ''}; layer kinds: ${KIND_NAMES.join(', ')}`,
        );
      }
    }
    const reps = [mapping.default, mapping.kronecker, ...Object.values(mapping.byLayerId ?? {}), ...Object.values(mapping.byLayerKind ?? {})];
    if (!mapping.default) throw new InvalidArgumentError(`PMatMixed.fromMapping: 'default' representation is required`);
    for (const r of reps) {
      if (r !== undefined && typeof (r as Partial<Representation<PMat>>).compute !== 'function') {
        throw new InvalidArgumentError(`PMatMixed.fromMapping: every entry must be a representation class such as PMatBlockDiag or PMatEKFAC`);
      }
    }
    return { representationName: name, compute: (spec) => PMatMixed.computeWith(spec, mapping) };
  }

  private static async computeWith(spec: FisherSpec, mapping: MixedMapping): Promise<PMatMixed> {
    const lc = spec.layerCollection;
    for (const id of Object.keys(mapping.byLayerId ?? {})) lc.get(id);
    const choice = (e: LayerEntry): Representation<PMat> =>
      mapping.byLayerId?.[e.id] ?? mapping.byLayerKind?.[e.kind.name] ?? (e.kind.kronecker ? mapping.kronecker : undefined) ?? mapping.default;
    const byRep = new Map<Representation<PMat>, number[]>();
    lc.layers.forEach((e, i) => byRep.set(choice(e), [...(byRep.get(choice(e)) ?? []), i]));
    // The groups compute concurrently and their passes over the data run as one.
    const settled = await computeInOnePass(
      spec,
      [...byRep].map(([rep, layers]) => async (shared: FisherSpec): Promise<Group> => {
        const sub = LayerCollection.fromLayers(spec.model, layers.map((i) => lc.layers[i]!.id));
        return group(await rep.compute({ ...shared, layerCollection: sub }), layers);
      }),
    );
    const groups = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const notStored = groups.find((g) => typeof g.mat.getDiag !== 'function' || typeof g.mat.toTensor !== 'function');
    if (failure || notStored) {
      groups.forEach((g) => g.mat.dispose());
      if (failure) throw failure.reason;
      const name = [...byRep].find(([, layers]) => layers === notStored!.layers)![0].representationName;
      throw new InvalidArgumentError(`PMatMixed: ${name} is not a stored representation (matrix-free ones cannot be mixed)`);
    }
    // A group that keeps its spec (EKFAC, for updateDiag) runs its later passes on its own: a
    // participant joins the shared pass once.
    return new PMatMixed(lc, groups);
  }

  /**
   * A PMatMixed from sub-matrices that partition `lc`'s layers: each part's matrix lives on the
   * layers `layerIds` (in `lc`'s order), every layer of `lc` in exactly one part. The matrices are
   * taken over.
   * @example PMatMixed.fromParts(lc, [{ matrix: kfacOnDense, layerIds: ['d1', 'd2'] }, { matrix: blockOnBn, layerIds: ['bn'] }])
   */
  static fromParts(lc: LayerCollection, parts: ReadonlyArray<{ matrix: PMat; layerIds: readonly string[] }>): PMatMixed {
    if (!Array.isArray(parts) || parts.length === 0) throw new InvalidArgumentError(`PMatMixed.fromParts: 'parts' must be a non-empty array of { matrix, layerIds }, received ${describe(parts)}`);
    const owner = new Map<string, number>();
    const groups = parts.map((p, j): Group => {
      const m = p?.matrix as PMat | undefined;
      if (!m || typeof m.getDiag !== 'function' || typeof m.toTensor !== 'function' || !m.layerCollection) {
        throw new InvalidArgumentError(`PMatMixed.fromParts: part ${j} is not a stored matrix (${describe(m)})`);
      }
      const ids = m.layerCollection.ids();
      if (!Array.isArray(p.layerIds) || ids.join('\u0000') !== p.layerIds.join('\u0000')) {
        throw new InvalidArgumentError(`PMatMixed.fromParts: part ${j} lives on layers [${ids.join(', ')}], not on the layers it names [${String(p.layerIds)}]`);
      }
      const layers = ids.map((id) => {
        if (owner.has(id)) throw new InvalidArgumentError(`PMatMixed.fromParts: layer '${id}' is in parts ${owner.get(id)} and ${j}`);
        owner.set(id, j);
        const i = lc.layers.findIndex((e) => e.id === id);
        if (i < 0) throw new InvalidArgumentError(`PMatMixed.fromParts: part ${j} names layer '${id}', which the layer collection does not hold (layers: ${lc.ids().join(', ')})`);
        const e = lc.layers[i]!;
        const sub = m.layerCollection.get(id);
        if (sub.numel !== e.numel || sub.layer !== e.layer) throw new InvalidArgumentError(`PMatMixed.fromParts: layer '${id}' of part ${j} is not the layer of the collection`);
        return i;
      });
      if (layers.some((x, k) => k > 0 && x < layers[k - 1]!)) throw new InvalidArgumentError(`PMatMixed.fromParts: the layers of part ${j} are not in the collection's order`);
      return group(m, layers);
    });
    const missing = lc.ids().filter((id) => !owner.has(id));
    if (missing.length) throw new InvalidArgumentError(`PMatMixed.fromParts: layer${missing.length > 1 ? 's' : ''} ${missing.map((id) => `'${id}'`).join(', ')} of the collection ${missing.length > 1 ? 'are' : 'is'} in no part`);
    return new PMatMixed(lc, groups);
  }

  /** The persisted state: one part per group, each with its registry name and state (given by `partState`). */
  toState(partState: (matrix: PMat) => { kind: string; state: RepresentationState }): RepresentationState {
    return { meta: {}, arrays: {}, parts: this.parts().map(({ matrix, layerIds }): StatePart => ({ ...partState(matrix), layerIds })) };
  }

  /** Rebuilds a PMatMixed from `toState()` on `lc`, each part by `context.restore`; nothing leaks when a part fails. */
  static fromState(lc: LayerCollection, state: RepresentationState, context: RestoreContext): PMatMixed {
    const parts = state.parts ?? [];
    if (parts.length === 0) throw new InvalidArgumentError('PMatMixed.fromState: the state has no parts');
    const seen = new Set<string>();
    for (const p of parts) {
      for (const id of p.layerIds) {
        if (seen.has(id) || !lc.has(id)) throw new InvalidArgumentError(`PMatMixed.fromState: layer '${id}' is ${seen.has(id) ? 'in two parts' : 'not in the layer collection'}`);
        seen.add(id);
      }
    }
    const built: Array<{ matrix: PMat; layerIds: readonly string[] }> = [];
    try {
      for (const p of parts) {
        const sub = LayerCollection.fromLayers(context.model, p.layerIds);
        built.push({ matrix: context.restore(p.kind, sub, p.state) as PMat, layerIds: p.layerIds });
      }
      return PMatMixed.fromParts(lc, built);
    } catch (e) {
      built.forEach((b) => b.matrix.dispose());
      throw e;
    }
  }

  /** The sub-matrices, with the ids of their layers. */
  parts(): ReadonlyArray<{
    /** The group's matrix, over the group's layers only. */
    matrix: PMat;
    /** The ids of the group's layers, in parameter order. */
    layerIds: string[];
  }> {
    return this.groups.map((g) => ({ matrix: g.mat, layerIds: g.layers.map((i) => this.layerCollection.layers[i]!.id) }));
  }

  private split(v: PVector, what: string): PVector[] {
    checkVector(v, this.layerCollection, `PMatMixed.${what}`);
    const data = v.data;
    return this.groups.map((g) => {
      const t = tf.tidy(() => tf.concat(g.layers.map((i) => tf.slice(data, [this.layerCollection.layers[i]!.offset], [this.layerCollection.layers[i]!.numel]))));
      return PVector.adopt(g.mat.layerCollection, t as tf.Tensor1D);
    });
  }

  /** Reassembles per-group flat tensors [d_g] (disposed here) into one PVector. */
  private join(parts: tf.Tensor1D[]): PVector {
    const byLayer: tf.Tensor[] = new Array(this.layerCollection.layers.length);
    const out = tf.tidy(() => {
      this.groups.forEach((g, gi) => {
        let at = 0;
        for (const i of g.layers) {
          const n = this.layerCollection.layers[i]!.numel;
          byLayer[i] = tf.slice(parts[gi]!, [at], [n]);
          at += n;
        }
      });
      return tf.concat(byLayer) as tf.Tensor1D;
    });
    tf.dispose(parts);
    return PVector.adopt(this.layerCollection, out);
  }

  private each(v: PVector, what: string, f: (m: PMat, x: PVector) => PVector): PVector {
    const xs = this.split(v, what);
    try {
      const ys = this.groups.map((g, i) => f(g.mat, xs[i]!));
      return this.join(ys.map((y) => y.data));
    } finally {
      xs.forEach((x) => x.dispose());
    }
  }

  trace(): number {
    return this.groups.reduce((s, g) => s + g.mat.trace(), 0);
  }

  norm(ord: NormOrder = 'fro'): number {
    checkNormOrder(ord, 'PMatMixed.norm');
    const n = this.groups.map((g) => g.mat.norm(ord));
    if (ord === 'fro') return Math.sqrt(n.reduce((a, x) => a + x * x, 0));
    return ord === 2 ? Math.max(...n) : Math.min(...n);
  }

  mv(v: PVector): PVector {
    return this.each(v, 'mv', (m, x) => m.mv(x));
  }

  vTMv(v: PVector): number {
    const xs = this.split(v, 'vTMv');
    try {
      return this.groups.reduce((s, g, i) => s + g.mat.vTMv(xs[i]!), 0);
    } finally {
      xs.forEach((x) => x.dispose());
    }
  }

  getDiag(): tf.Tensor1D {
    return this.join(this.groups.map((g) => g.mat.getDiag())).data;
  }

  toTensor(): tf.Tensor2D {
    const d = this.layerCollection.numel();
    const out = new Float32Array(d * d);
    for (const g of this.groups) {
      const index = g.layers.flatMap((i) => {
        const e = this.layerCollection.layers[i]!;
        return Array.from({ length: e.numel }, (_, j) => e.offset + j);
      });
      const sub = g.mat.toTensor();
      const values = sub.dataSync();
      sub.dispose();
      const n = index.length;
      for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) out[index[r]! * d + index[c]!] = values[r * n + c]!;
    }
    return tf.tensor2d(out, [d, d]);
  }

  solve(v: PVector, options?: SolveOptions): PVector {
    checkRegul(options, 'PMatMixed.solve');
    return this.each(v, 'solve', (m, x) => m.solve(x, options));
  }

  /** (M + regul·I)⁻¹, group by group (every group's representation must have inv). */
  inv(options?: SolveOptions): PMatMixed {
    checkRegul(options, 'PMatMixed.inv');
    return this.map('inv', (g) => g.can.invertible?.inv(options));
  }

  /** x·M, group by group. */
  scale(x: number): PMatMixed {
    checkScalar(x, 'PMatMixed.scale');
    return this.map('scale', (g) => g.can.scalable?.scale(x));
  }

  /** Σ over groups of log det(M_g + regul·I). */
  logdet(options?: SolveOptions): number {
    checkRegul(options, 'PMatMixed.logdet');
    return this.groups.reduce((s, g) => {
      if (!g.can.logdet) throw new InvalidArgumentError(`PMatMixed.logdet: ${g.mat.constructor.name} has no logdet`);
      return s + g.can.logdet.logdet(options);
    }, 0);
  }

  /** Runs updateDiag on every EKFAC group (one pass over `loader` each). */
  async updateDiag(loader: Loader): Promise<this> {
    if (loader === undefined || loader === null) throw new InvalidArgumentError(`PMatMixed.updateDiag: 'loader' is required (a tf.data.Dataset, a batch, or an array/iterable of batches), received ${describe(loader)}`);
    for (const g of this.groups) if (g.can.diagUpdatable) await g.can.diagUpdatable.updateDiag(loader);
    return this;
  }

  dispose(): void {
    this.liveGroups.forEach((g) => g.mat.dispose());
    this.disposed = true;
  }

  private map(what: string, f: (g: Group) => PMat | undefined): PMatMixed {
    const out: Group[] = [];
    try {
      for (const g of this.groups) {
        const m = f(g);
        if (!m) throw new InvalidArgumentError(`PMatMixed.${what}: the ${g.mat.constructor.name} group has no ${what}`);
        out.push(group(m, g.layers));
      }
    } catch (e) {
      out.forEach((g) => g.mat.dispose());
      throw e;
    }
    return new PMatMixed(this.layerCollection, out);
  }
}

/** EKFAC for the layers with Kronecker factors, dense blocks for every other layer. */
export const PMatEKFACBlockDiag: Representation<PMatMixed> = PMatMixed.fromMapping(
  { default: PMatBlockDiag, kronecker: PMatEKFAC },
  'PMatEKFACBlockDiag',
);
