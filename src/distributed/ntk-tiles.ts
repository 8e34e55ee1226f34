/**
 * The empirical NTK K[o,i,o',j] = ⟨∂f_o(x_i)/∂θ, ∂f_o'(x_j)/∂θ⟩ (CONVENTIONS.md, [O, n, O, n]) in
 * tiles of example pairs: the examples are cut into B batch-aligned blocks, and tile (I, J), I ≤ J,
 * is the block K[·, I, ·, J]; the B(B+1)/2 tiles and their transposes fill K (K is symmetric).
 *
 * A tile is computed by `GramMatrix` on the batches of I followed by those of J: every pair of
 * batches (a ∈ I, b ∈ J) is then multiplied exactly as in the single-process kernel (same
 * batches, same order a < b, same row chunks), so the assembled K equals the local one
 * bit for bit. The price: an off-diagonal tile also computes the I×I and J×J blocks it discards,
 * about twice the block products of the single pass in all, and each block's gradients are
 * recomputed by every tile it is in (B + 1 passes over each example instead of one).
 *
 * A tile travels as its float64 entries, row-major [(o, i) for i in I] × [(o', j) for j in J],
 * little-endian, with the SHA-256 the partial store checks.
 */
import { DistributedError } from '../errors.js';
import { planShards } from './shard-plan.js';
import type { WorkUnit } from './flow.js';
import type { KernelDefinition } from './protocol.js';

/** Tile id of position `index` ('t0003'). */
export const tileId = (index: number) => `t${String(index).padStart(4, '0')}`;

/**
 * At least `minTiles` tiles (fewer when there are too few batches): B batch-aligned blocks, B the
 * smallest with B(B+1)/2 ≥ minTiles, and the tiles (i, j), i ≤ j, row by row.
 *
 * @example ntkTilePlan(512, 16, 6).length // 6: blocks of 176, 176 and 160 examples
 */
export function ntkTilePlan(n: number, batchSize: number, minTiles: number): WorkUnit[] {
  if (!Number.isInteger(minTiles) || minTiles < 1) throw new DistributedError(`distributedNTK: 'shards' must be a positive integer, received ${String(minTiles)}`);
  let blocks = 1;
  while ((blocks * (blocks + 1)) / 2 < minTiles) blocks++;
  const ranges = planShards(n, batchSize, blocks);
  const tiles: WorkUnit[] = [];
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i; j < ranges.length; j++) {
      const index = tiles.length;
      tiles.push({ index, id: tileId(index), start: ranges[i]!.start, end: ranges[i]!.end, columns: { start: ranges[j]!.start, end: ranges[j]!.end } });
    }
  }
  return tiles;
}

/**
 * The tile (rows I, columns J) from the kernel `K` (row-major (O·m)², rows o·m + r) of the
 * examples of I followed by those of J (m = |I| + |J|, or |I| when I = J).
 */
export function tileFromUnion(K: Float64Array, outputs: number, rows: number, columns: number, same: boolean): Float64Array {
  const m = same ? rows : rows + columns;
  const size = outputs * m;
  if (K.length !== size * size) throw new DistributedError(`ntk tile: a kernel of ${K.length} entries for ${outputs} outputs and ${m} examples`);
  const offset = same ? 0 : rows;
  const out = new Float64Array(outputs * rows * outputs * columns);
  const width = outputs * columns;
  for (let o = 0; o < outputs; o++) {
    for (let i = 0; i < rows; i++) {
      const src = (o * m + i) * size;
      const dst = (o * rows + i) * width;
      for (let p = 0; p < outputs; p++) out.set(K.subarray(src + p * m + offset, src + p * m + offset + columns), dst + p * columns);
    }
  }
  return out;
}

/** K (row-major (O·n)², rows o·n + i) from its tiles and their transposes; every entry must be covered. */
export function assembleKernel(kernel: KernelDefinition, tiles: ReadonlyArray<{ bytes: Uint8Array; start?: number; end?: number; columns?: { start: number; end: number } }>): Float64Array {
  const { outputs: O, examples: n } = kernel;
  const size = O * n;
  const K = new Float64Array(size * size);
  let covered = 0;
  for (const [t, tile] of tiles.entries()) {
    if (tile.start === undefined || tile.end === undefined || !tile.columns) throw new DistributedError(`ntk merge: tile ${t} has no example ranges`);
    const { start: r0, end: r1 } = tile;
    const { start: c0, end: c1 } = tile.columns;
    const rows = r1 - r0;
    const cols = c1 - c0;
    if (!(0 <= r0 && r0 < r1 && r1 <= n && 0 <= c0 && c0 < c1 && c1 <= n)) throw new DistributedError(`ntk merge: tile ${t} spans examples [${r0}, ${r1}) × [${c0}, ${c1}), outside the ${n} examples`);
    if (tile.bytes.byteLength !== 8 * O * rows * O * cols) throw new DistributedError(`ntk merge: tile ${t} has ${tile.bytes.byteLength} bytes, expected ${8 * O * rows * O * cols}`);
    // Copied out: the bytes of a stored partial need not be 8-byte aligned.
    const v = new Float64Array(tile.bytes.slice().buffer);
    const width = O * cols;
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < rows; i++) {
        const row = o * n + r0 + i;
        for (let p = 0; p < O; p++) {
          for (let j = 0; j < cols; j++) {
            const col = p * n + c0 + j;
            const k = v[(o * rows + i) * width + p * cols + j]!;
            K[row * size + col] = k;
            K[col * size + row] = k;
          }
        }
      }
    }
    covered += r0 === c0 ? rows * rows : 2 * rows * cols;
  }
  if (covered !== n * n) throw new DistributedError(`ntk merge: the tiles cover ${covered} of the ${n * n} example pairs`);
  return K;
}
