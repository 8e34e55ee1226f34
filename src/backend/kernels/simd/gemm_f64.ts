/**
 * The float64 product of the eigensolver on the SIMD module's helper threads.
 *
 * The Eigen module (wasm/eigen_linalg.cpp) links wasi-libc and libc++, which cannot run on a
 * shared memory, so its own products stay on one thread. For its large products it calls the
 * import `env.nn_gemm_parallel` instead (wasm/blocked_gemm.hpp), which the linalg loader binds to
 * {@link gemmF64Parallel}: the operands are copied from the Eigen module's memory into the
 * threaded SIMD module's shared memory, `nn_dgemm` (wasm/simd_kernels.c) runs there split into
 * chunks of columns (or rows) of C taken by the calling thread and the helpers, and C is copied
 * back. The copies are O(mk + kn + mn) against the product's 2mnk flops.
 *
 * `nn_dgemm` performs the same floating-point operations in the same order as the Eigen
 * module's own product (the same depth blocks of 256, each summed from 0 and added to C in
 * order) and no split cuts the depth, so the result is bit-identical whether the product ran
 * in the Eigen module or here, on any number of threads and in any tiling of C.
 *
 * The shared memory is never grown past SIMD_MEMORY_RETAIN_BYTES (a shared memory cannot be
 * given back while the helpers hold it): C is cut into tiles whose A rows, B columns and C tile
 * fit, and each tile is copied in, computed and copied out in turn.
 */
import { Override } from './override.js';
import { SIMD_CHUNKS_PER_THREAD, SIMD_MEMORY_RETAIN_BYTES, simdKernels, simdThreads, type SimdModule } from './module.js';

/**
 * Flops per chunk at most (about 1.5 ms on one core) where the product is wide enough: the thread
 * that ends first waits for the chunks the others are in, and on a loaded machine the OS may
 * have paused a helper in the middle of one, so small chunks keep that wait short.
 */
export const F64_CHUNK_FLOPS = 32e6;

/** Columns (or rows) of C per chunk at least (see f64Chunks). */
export const F64_CHUNK_MIN_WIDTH = 128;

const chunkFlops = new Override(F64_CHUNK_FLOPS);

/** Runs `fn` with chunks of at most `flops` flops (benches compare chunk sizes in one process). */
export function withF64ChunkFlops<T>(flops: number, fn: () => T): T {
  return chunkFlops.with(flops, fn);
}

/**
 * A helper that took less than this fraction of its fair share of a product's chunks ((threads −
 * 1) / threads of them, with at least two chunks per thread) did not get a core: other processes
 * keep the machine busy, and the copies and the waits for the paused helper then cost more than
 * the helper gains (at n = 2,048, 5-10 % slower on a machine loaded by two other processes).
 */
export const F64_HELPER_SHARE_MIN = 0.4;

/**
 * For how long products then stay in the caller's module before the helpers are tried again
 * (two starved products in a row start a decline).
 */
export const F64_DECLINE_MS = 500;

/** performance.now() until which products are declined (helpers without a core). */
let declinedUntil = 0;

/** Products in a row whose helpers took too few chunks. */
let starved = 0;

/** Whether products are being declined because the helpers got no core lately (for tests and benches). */
export function f64GemmDeclined(): boolean {
  return performance.now() < declinedUntil;
}

/** Ends a decline now: the next product tries the helpers again (tests; benches between routes). */
export function resetF64GemmDecline(): void {
  declinedUntil = 0;
  starved = 0;
}

/** Bytes of operands (A rows, B columns, C tile) one tile may hold besides the memory cap (tests lower it). */
const tileBytes = new Override(Infinity);

/**
 * Runs `fn` with the operands of each tile (A rows, B columns and C tile) limited to `bytes`, so
 * that tests reach the tiled path on small products.
 */
export function withF64GemmBudget<T>(bytes: number, fn: () => T): T {
  return tileBytes.with(bytes, fn);
}

/**
 * Products run by {@link gemmF64Parallel} since the process started, their tiles, flops (2mnk),
 * wall milliseconds including the copies, and the declines begun (for tests and benches).
 */
export const f64GemmCounters = { products: 0, tiles: 0, flops: 0, ms: 0, declines: 0 };

/**
 * Copies the rows × cols column-major panel at double offset `from` (leading dimension `ld`) of
 * `src` to `dst` at double offset `to`, packed (leading dimension `rows`).
 */
function copyIn(src: Float64Array, from: number, ld: number, rows: number, cols: number, dst: Float64Array, to: number): void {
  if (ld === rows) {
    dst.set(src.subarray(from, from + rows * cols), to);
    return;
  }
  for (let j = 0; j < cols; j++) dst.set(src.subarray(from + j * ld, from + j * ld + rows), to + j * rows);
}

/** The reverse of `copyIn`: a packed panel back into a column-major panel with leading dimension `ld`. */
function copyOut(src: Float64Array, from: number, rows: number, cols: number, dst: Float64Array, to: number, ld: number): void {
  if (ld === rows) {
    dst.set(src.subarray(from, from + rows * cols), to);
    return;
  }
  for (let j = 0; j < cols; j++) dst.set(src.subarray(from + j * rows, from + (j + 1) * rows), to + j * ld);
}

/**
 * C (m × n) (+)= A (m × k) · B (k × n), column-major float64 operands at byte offsets `a`, `b`,
 * `c` of `source` with leading dimensions `lda`, `ldb`, `ldc` (in doubles), on the SIMD module's
 * helper threads. Returns false, touching nothing, when this process has no helper threads for a
 * product of this size (browsers, worker threads, `setSimdThreads(1)`, helpers stopped, SIMD
 * kernels off, a depth too large for the shared memory, or helpers that got no core in the last
 * F64_DECLINE_MS): the caller then runs its own product.
 * The result is bit-identical to the Eigen module's `gemmAccumulate` / `gemmAssign`.
 *
 * ```ts
 * // in the Eigen module's imports: env.nn_gemm_parallel
 * (m, n, k, a, lda, b, ldb, c, ldc, acc) => (gemmF64Parallel(memory.buffer, m, n, k, a, lda, b, ldb, c, ldc, acc !== 0) ? 1 : 0)
 * ```
 */
export function gemmF64Parallel(
  source: ArrayBufferLike, m: number, n: number, k: number, a: number, lda: number, b: number, ldb: number,
  c: number, ldc: number, accumulate: boolean,
): boolean {
  // One thread configured (the default in browsers and worker threads): do not even load the module.
  if (m <= 0 || n <= 0 || k <= 0 || simdThreads() <= 1) return false;
  const simd = simdKernels();
  if (simd == null) return false;
  const threads = simd.threadsFor(2 * m * n * k);
  if (threads <= 1 || f64GemmDeclined()) return false;
  const work = simd.exports.nn_dgemm_work(n, k);
  // Doubles left for the operands: the retained memory less what lies below the first buffer
  // (static data and the helpers' stacks), the work slots and the alignment of four buffers.
  const [base] = simd.layout([0]);
  const room = Math.min(Math.floor(tileBytes.value / 8), Math.floor((SIMD_MEMORY_RETAIN_BYTES - base!) / 8) - threads * work - 8);
  const tile = tileOf(m, n, k, room);
  if (tile == null) return false;
  const { rows: h, cols: w } = tile;
  const floats = [2 * h * k, 2 * k * w, 2 * h * w, 2 * threads * work];
  const [pa, pb, pc, pw] = simd.layout(floats);
  const src = new Float64Array(source);
  const dst = new Float64Array(simd.memory.buffer);
  const [da, db, dc] = [pa! / 8, pb! / 8, pc! / 8];
  const start = performance.now();
  for (let j0 = 0; j0 < n; j0 += w) {
    const cols = Math.min(w, n - j0);
    copyIn(src, b / 8 + j0 * ldb, ldb, k, cols, dst, db);
    for (let i0 = 0; i0 < m; i0 += h) {
      const rows = Math.min(h, m - i0);
      if (j0 === 0 || h < m) copyIn(src, a / 8 + i0, lda, rows, k, dst, da);
      const cFrom = c / 8 + j0 * ldc + i0;
      if (accumulate) copyIn(src, cFrom, ldc, rows, cols, dst, dc);
      runTile(simd, [rows, cols, k, pa!, rows, pb!, k, pc!, rows, accumulate ? 1 : 0, pw!], threads, () => {
        if (accumulate) copyIn(src, cFrom, ldc, rows, cols, dst, dc);
      });
      copyOut(dst, dc, rows, cols, src, cFrom, ldc);
      f64GemmCounters.tiles++;
    }
  }
  f64GemmCounters.products++;
  f64GemmCounters.flops += 2 * m * n * k;
  f64GemmCounters.ms += performance.now() - start;
  return true;
}

/** Columns of a tile at least, where rows can be given up for them (see tileOf). */
const F64_TILE_MIN_COLS = 512;

/**
 * Rows and columns of a tile of C whose A rows (rows × k), B columns (k × cols) and C tile fit
 * in `room` doubles: all of C when it fits; else all rows (A copied once) and as many columns as
 * fit, when that is at least F64_TILE_MIN_COLS of them; else fewer rows (in fours), so that the
 * tile is that wide (a tall A that nearly filled the room left tiles of a few dozen columns,
 * each chunk of which packed all of B's rows). Null when not even 4 rows and 4 columns fit.
 */
function tileOf(m: number, n: number, k: number, room: number): { rows: number; cols: number } | null {
  const colsFor = (rows: number) => Math.floor((room - rows * k) / (k + rows));
  const wide = Math.min(n, F64_TILE_MIN_COLS);
  let rows = m;
  if (colsFor(m) < wide) {
    // The most rows (in fours) with `wide` columns: rows·k + k·wide + rows·wide ≤ room.
    rows = Math.floor(Math.min(m, (room - k * wide) / (k + wide)) / 4) * 4;
    if (rows < Math.min(m, 4)) rows = Math.floor(Math.min(m, room / 2 / k) / 4) * 4;
  }
  if (rows < Math.min(m, 4)) return null;
  const fit = colsFor(rows);
  const cols = fit >= n ? n : Math.floor(fit / 4) * 4;
  return cols >= Math.min(n, 4) && cols > 0 ? { rows, cols } : null;
}

/**
 * Chunks of a rows × cols × depth product on `threads` threads: SIMD_CHUNKS_PER_THREAD per
 * thread, more for large products (chunks of at most `chunkFlops`), but chunks at least
 * F64_CHUNK_MIN_WIDTH columns (or rows) wide: every chunk packs all of A's rows (or B's columns)
 * that its columns (rows) need, about 1/(2·width) of its own flops in copies.
 */
export function f64Chunks(rows: number, cols: number, depth: number, threads: number): number {
  const pieces = Math.max(threads, Math.floor(Math.max(rows, cols) / F64_CHUNK_MIN_WIDTH));
  const wanted = Math.max(SIMD_CHUNKS_PER_THREAD * threads, Math.ceil((2 * rows * cols * depth) / chunkFlops.value));
  return Math.max(1, Math.min(wanted, pieces, Math.max(Math.ceil(cols / 4), Math.ceil(rows / 4))));
}

/**
 * Runs one tile on `threads` threads. Should a helper fail, the module turns its helpers off
 * and throws; C's tile is then restored (`restore`) and the tile run again on this thread, so
 * the product completes with the same result. Should the helpers take too few chunks
 * (F64_HELPER_SHARE_MIN) in two products in a row, the next products are declined for
 * F64_DECLINE_MS.
 */
function runTile(simd: SimdModule, args: [number, number, number, number, number, number, number, number, number, number, number], threads: number, restore: () => void): void {
  const rows = args[0], cols = args[1], depth = args[2];
  const chunks = f64Chunks(rows, cols, depth, threads);
  const used = Math.min(threads, chunks);
  try {
    const own = simd.run('nn_dgemm', args, { chunks, threads: used });
    if (chunks >= 2 * used && chunks - own < F64_HELPER_SHARE_MIN * chunks * (used - 1) / used) {
      // Twice in a row: one product whose helper woke late is not a loaded machine.
      if (++starved >= 2) {
        declinedUntil = performance.now() + F64_DECLINE_MS;
        f64GemmCounters.declines++;
        starved = 0;
      }
    } else if (chunks >= 2 * used) {
      starved = 0;
    }
  } catch {
    restore();
    simd.run('nn_dgemm', args, { chunks: 1, threads: 1 });
  }
}
