/**
 * PMatMixed in shards. `PMatMixed.fromMapping` holds representation classes (functions), which
 * cannot travel to workers; the declarative form here names them instead (the persistence names
 * of the registry: 'PMatBlockDiag', 'PMatEKFAC', …). The coordinator resolves it on the layer
 * collection into groups (a representation name and its layer ids, in the order PMatMixed forms
 * groups: by first layer), every worker recomputes exactly those groups in one shared pass, and
 * the partials merge group by group (the registry's PMatMixed merge). EKFAC groups take two
 * passes, as EKFAC alone does: KFAC factors, then the diagonal in the merged eigenbasis.
 */
import { DistributedError } from '../errors.js';
import type { LayerCollection, LayerEntry } from '../layers/layer-collection.js';
import { layerKindByName, layerKindNames } from '../layers/registry.js';
import { PMatMixed, PMatEKFACBlockDiag } from '../object/pspace/mixed.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatLowRank } from '../object/pspace/low-rank.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { PMatQuasiDiag } from '../object/pspace/quasi-diag.js';
import type { PMat, PMatBase, Representation } from '../object/pspace/pmat.js';
import { DISTRIBUTED_REPRESENTATIONS, type DistributedRepresentation, type MixedGroup } from './protocol.js';

/** The classes shards recompute by name. */
export const SHARDABLE: Readonly<Record<DistributedRepresentation, Representation<PMatBase>>> = { PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag };

/** Representations that need Kronecker factors on every layer they get. */
const NEEDS_KRONECKER: ReadonlySet<string> = new Set(['PMatKFAC', 'PMatEKFAC', 'PMatQuasiDiag']);

/**
 * A PMatMixed mapping by representation names: which representation each layer gets, by layer id,
 * then by layer kind name, then for the layers with Kronecker factors, then the default (the
 * precedence of `MixedMapping`).
 */
export interface NamedMixedMapping {
  default: DistributedRepresentation;
  byLayerId?: Readonly<Record<string, DistributedRepresentation>>;
  /** Keyed by layer kind name: 'dense', 'conv2d', … */
  byLayerKind?: Readonly<Record<string, DistributedRepresentation>>;
  kronecker?: DistributedRepresentation;
}

/** A PMatMixed representation that also says, by names, how it was built (so it can be sharded). */
export interface NamedMixedRepresentation extends Representation<PMatMixed> {
  readonly mixedMapping: NamedMixedMapping;
}

/** The named form of the library's fixed mixed representations. */
const KNOWN: ReadonlyMap<Representation<PMatBase>, NamedMixedMapping> = new Map([[PMatEKFACBlockDiag as Representation<PMatBase>, { default: 'PMatBlockDiag', kronecker: 'PMatEKFAC' } as const]]);

function classOf(name: unknown, where: string): Representation<PMat> {
  if (typeof name !== 'string' || !(DISTRIBUTED_REPRESENTATIONS as readonly string[]).includes(name)) {
    throw new DistributedError(`mixedRepresentation: ${where} must be one of ${DISTRIBUTED_REPRESENTATIONS.join(', ')}, received ${JSON.stringify(name)}`);
  }
  return SHARDABLE[name as DistributedRepresentation] as unknown as Representation<PMat>;
}

/**
 * A PMatMixed representation described by representation names, usable with `FIM` on one machine
 * and with `distributedFIM` on many (the function form `PMatMixed.fromMapping` cannot be sent to
 * workers). Block-diagonal across groups: M = diag(M_g), each group M_g in its representation.
 *
 * @example
 * const rep = mixedRepresentation({ default: 'PMatBlockDiag', byLayerKind: { dense: 'PMatEKFAC' } });
 * const { matrix, model } = await distributedFIM({ redis, model: '/shared/model.json', data: '/shared/x.idx', representation: rep });
 */
export function mixedRepresentation(mapping: NamedMixedMapping): NamedMixedRepresentation {
  if (typeof mapping !== 'object' || mapping === null) throw new DistributedError(`mixedRepresentation: 'mapping' must be { default, byLayerId?, byLayerKind?, kronecker? }, received ${String(mapping)}`);
  const unknown = Object.keys(mapping).filter((k) => !['default', 'byLayerId', 'byLayerKind', 'kronecker'].includes(k));
  if (unknown.length) throw new DistributedError(`mixedRepresentation: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (expected default, byLayerId, byLayerKind, kronecker)`);
  const copy: NamedMixedMapping = {
    default: mapping.default,
    ...(mapping.byLayerId ? { byLayerId: { ...mapping.byLayerId } } : {}),
    ...(mapping.byLayerKind ? { byLayerKind: { ...mapping.byLayerKind } } : {}),
    ...(mapping.kronecker ? { kronecker: mapping.kronecker } : {}),
  };
  const classes = (m: Readonly<Record<string, DistributedRepresentation>> | undefined, what: string) =>
    m === undefined ? undefined : Object.fromEntries(Object.entries(m).map(([k, v]) => [k, classOf(v, `${what}['${k}']`)]));
  for (const kind of Object.keys(copy.byLayerKind ?? {})) {
    if (!layerKindByName(kind)) throw new DistributedError(`mixedRepresentation: 'byLayerKind' names an unknown layer kind '${kind}'; layer kinds: ${layerKindNames().join(', ')}`);
  }
  const byLayerId = classes(copy.byLayerId, 'byLayerId');
  const byLayerKind = classes(copy.byLayerKind, 'byLayerKind');
  const local = PMatMixed.fromMapping({
    default: classOf(copy.default, "'default'"),
    ...(byLayerId ? { byLayerId } : {}),
    ...(byLayerKind ? { byLayerKind } : {}),
    ...(copy.kronecker ? { kronecker: classOf(copy.kronecker, "'kronecker'") } : {}),
  });
  return { representationName: 'PMatMixed', compute: (spec) => local.compute(spec), mixedMapping: copy };
}

/** The named mapping of `r` when it is a mixed representation that can be sharded, or null. */
export function namedMappingOf(r: Representation<PMatBase>): NamedMixedMapping | null {
  const named = (r as Partial<NamedMixedRepresentation>).mixedMapping;
  return named ?? KNOWN.get(r) ?? null;
}

/**
 * The groups of `mapping` on `lc`: each layer's representation by the mapping's precedence,
 * grouped by representation in order of first layer (as PMatMixed groups them).
 */
export function mixedGroups(lc: LayerCollection, mapping: NamedMixedMapping): MixedGroup[] {
  for (const id of Object.keys(mapping.byLayerId ?? {})) {
    if (!lc.has(id)) throw new DistributedError(`distributedFIM: the mixed mapping's 'byLayerId' names layer '${id}', which the layer collection does not hold (layers: ${lc.ids().join(', ')})`);
  }
  const choice = (e: LayerEntry): DistributedRepresentation => mapping.byLayerId?.[e.id] ?? mapping.byLayerKind?.[e.kind.name] ?? (e.kind.kronecker ? mapping.kronecker : undefined) ?? mapping.default;
  const groups = new Map<DistributedRepresentation, string[]>();
  for (const e of lc.layers) {
    const name = choice(e);
    if (NEEDS_KRONECKER.has(name) && !e.kind.kronecker) {
      throw new DistributedError(`distributedFIM: the mixed mapping gives ${name} to layer '${e.id}' (${e.kind.name}), which has no Kronecker factors; map it to PMatBlockDiag, PMatDiag or PMatDense`);
    }
    groups.set(name, [...(groups.get(name) ?? []), e.id]);
  }
  return [...groups].map(([representation, layerIds]) => ({ representation, layerIds }));
}

/**
 * What a shard computes for the groups of a mixed pass: PMatMixed with one representation object
 * per group (two groups never fuse), EKFAC groups as their KFAC factors (the first of their
 * two passes).
 */
export function mixedShardRepresentation(groups: ReadonlyArray<MixedGroup>): Representation<PMatMixed> {
  const perGroup = groups.map((g): Representation<PMat> => {
    const cls = SHARDABLE[g.representation === 'PMatEKFAC' ? 'PMatKFAC' : g.representation];
    if (!cls) throw new DistributedError(`worker: unknown representation '${g.representation}' in a mixed pass`);
    return { representationName: cls.representationName, compute: (spec) => cls.compute(spec) as Promise<PMat> };
  });
  const byLayerId = Object.fromEntries(groups.flatMap((g, i) => g.layerIds.map((id) => [id, perGroup[i]!])));
  return PMatMixed.fromMapping({ default: perGroup[0]!, byLayerId });
}
