/**
 * The shape of a pass's merge: with S partials and a fan-in k, one merge job over all S would
 * fetch and decode every partial on one worker (the cost that grows with the number of workers);
 * instead merge jobs over groups of at most k partials run on several workers at once, and their
 * results are merged in turn, up to one root. The tree depends only on (S, k), never on which or
 * how many workers run it, and every merge adds its children in index order, so the result is
 * the same bytes for any number of workers. Its critical path decodes about k·⌈log_k S⌉
 * partials instead of S.
 */
import { InvalidArgumentError } from '../errors.js';

/** A merge job: its level (0 the root), its position in its level, and its children in order. */
export interface MergeNode {
  readonly level: number;
  readonly index: number;
  /** Index of the first child: a unit index when the children are units, a node index otherwise. */
  readonly first: number;
  /** Unit indices (leaf merges) or merge nodes of the next level, in order. */
  readonly children: ReadonlyArray<number | MergeNode>;
}

/**
 * The merge tree of `units` partials with at most `fanIn` children per merge job: contiguous,
 * near-equal groups, level by level, all units at the same depth.
 *
 * @example mergeTree(64, 8) // a root over 8 merge jobs of 8 shards each
 */
export function mergeTree(units: number, fanIn: number): MergeNode {
  if (!Number.isInteger(units) || units < 1) throw new InvalidArgumentError(`mergeTree: 'units' must be a positive integer, received ${String(units)}`);
  if (!(fanIn === Infinity || (Number.isInteger(fanIn) && fanIn >= 2))) throw new InvalidArgumentError(`mergeTree: 'mergeFanIn' must be an integer ≥ 2, received ${String(fanIn)}`);
  // Bottom-up: groups of contiguous children, as even as possible.
  type Draft = { children: Array<number | Draft> };
  const group = <T,>(items: T[]): Draft[] => {
    const count = Math.ceil(items.length / fanIn);
    return Array.from({ length: count }, (_, g) => ({ children: items.slice(Math.floor((g * items.length) / count), Math.floor(((g + 1) * items.length) / count)) as Array<number | Draft> }));
  };
  let level: Array<number | Draft> = Array.from({ length: units }, (_, i) => i);
  while (level.length > fanIn) level = group(level);
  const root: Draft = { children: level };
  // Top-down: levels and positions.
  const counters: number[] = [];
  const place = (d: Draft, depth: number): MergeNode => {
    const index = counters[depth] ?? 0;
    counters[depth] = index + 1;
    const children = d.children.map((c) => (typeof c === 'number' ? c : place(c, depth + 1)));
    const head = children[0]!;
    return { level: depth, index, first: typeof head === 'number' ? head : head.index, children };
  };
  return place(root, 0);
}
