/**
 * The float64 GEMM of the SIMD module (nn_dgemm in wasm/simd_kernels.c) and its front for the
 * eigensolver (gemmF64Parallel), which copies column-major operands with leading dimensions out
 * of another memory, runs the kernel on the helper threads and copies C back.
 *
 * The reference is written here in the order the eigensolver's own product sums (blocks of 256
 * along the depth, each summed from 0 and then added to C), so every result must equal it bit
 * for bit: a different depth block, a split of the depth, a chunk that skips or overlaps a range,
 * a helper on the wrong work slot or a tile copied to the wrong place all show. A textbook float64
 * sum checks the reference itself (1e-13 relative). Shapes: sizes off the 4 × 4 tile, depths over
 * one and two blocks of 256, leading dimensions past the rows (whose padding must stay untouched),
 * column and row splits, 1 to 7 chunks on 1 to 4 threads, outputs prefilled with NaN.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  capSimdThreads, setSimdKernelsEnabled, setSimdThreads, simdThreads, type SimdModule,
} from '../../src/backend/kernels/simd/module.js';
import { f64GemmCounters, f64GemmDeclined, gemmF64Parallel, resetF64GemmDecline, withF64GemmBudget } from '../../src/backend/kernels/simd/gemm_f64.js';
import { withHelpers } from './support.js';

const MAX_THREADS = 4;
/** (chunks, threads) splits; the first is the reference split. */
const SPLITS: Array<[number, number]> = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 1], [6, 4], [7, 2]];
const DEPTH_BLOCK = 256;

/** Seeded float64 values in (−1, 1) with full 53-bit mantissas (mulberry32 pairs). */
function values(seed: number, length: number): Float64Array {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Float64Array.from({ length }, () => 2 * (next() + next() / 4294967296) - 1);
}

interface Product {
  m: number; n: number; k: number; lda: number; ldb: number; ldc: number; accumulate: boolean;
  a: Float64Array; b: Float64Array; c0: Float64Array;
}

function product(m: number, n: number, k: number, pad: number, accumulate: boolean, seed: number): Product {
  const [lda, ldb, ldc] = [m + pad, k + 2 * pad, m + 3 * pad];
  return {
    m, n, k, lda, ldb, ldc, accumulate,
    a: values(seed, lda * k), b: values(seed + 1, ldb * n), c0: values(seed + 2, ldc * n),
  };
}

/** C in the eigensolver's order: C(i, j) (+)= Σ over blocks of 256 of (0 + Σ_l a·b); padding kept. */
function blockedReference(p: Product): Float64Array {
  const c = Float64Array.from(p.c0);
  for (let j = 0; j < p.n; j++) {
    for (let i = 0; i < p.m; i++) {
      let acc = p.accumulate ? c[j * p.ldc + i]! : 0;
      for (let p0 = 0; p0 < p.k; p0 += DEPTH_BLOCK) {
        let s = 0;
        for (let l = p0; l < Math.min(p.k, p0 + DEPTH_BLOCK); l++) s += p.a[l * p.lda + i]! * p.b[j * p.ldb + l]!;
        acc += s;
      }
      c[j * p.ldc + i] = acc;
    }
  }
  return c;
}

/** The textbook sum, to check the blocked reference against. */
function naiveReference(p: Product): Float64Array {
  const c = Float64Array.from(p.c0);
  for (let j = 0; j < p.n; j++) {
    for (let i = 0; i < p.m; i++) {
      let s = 0;
      for (let l = 0; l < p.k; l++) s += p.a[l * p.lda + i]! * p.b[j * p.ldb + l]!;
      c[j * p.ldc + i] = (p.accumulate ? c[j * p.ldc + i]! : 0) + s;
    }
  }
  return c;
}

function firstDifference(x: Float64Array, y: Float64Array): number {
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return i;
  return -1;
}

function maxRelative(x: Float64Array, y: Float64Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < x.length; i++) {
    num = Math.max(num, Math.abs(x[i]! - y[i]!));
    den = Math.max(den, Math.abs(y[i]!));
  }
  return num / den;
}

/** Shapes: column split (n ≥ 8·chunks), row split (n = 5), depths 1, 255, 256, 257, 520; sizes off the tile. */
const SHAPES: Array<[number, number, number]> = [[37, 45, 300], [130, 5, 257], [9, 70, 1], [21, 33, 255], [66, 18, 520], [3, 3, 256]];

describe('float64 SIMD GEMM (nn_dgemm) and its front for the eigensolver', () => {
  let was = 1;
  before(() => {
    was = simdThreads();
    setSimdThreads(MAX_THREADS);
  });
  after(() => setSimdThreads(was));

  it('nn_dgemm: every split of 1-7 chunks on 1-4 threads equals the blocked float64 reference bit for bit', async () => {
    const simd = await withHelpers(MAX_THREADS - 1);
    let seed = 1;
    for (const [m, n, k] of SHAPES) {
      for (const [pad, accumulate] of [[0, false], [3, true], [1, false], [0, true]] as const) {
        const p = product(m, n, k, pad, accumulate, (seed += 10));
        const expected = blockedReference(p);
        assert.ok(maxRelative(expected, naiveReference(p)) <= 1e-13, 'the blocked reference is a float64 product');
        const work = simd.exports.nn_dgemm_work(n, k);
        for (const [chunks, threads] of SPLITS) {
          const [pa, pb, pc, pw] = simd.layout([2 * p.a.length, 2 * p.b.length, 2 * p.c0.length, 2 * work * MAX_THREADS]);
          const f = new Float64Array(simd.memory.buffer);
          f.set(p.a, pa! / 8);
          f.set(p.b, pb! / 8);
          // Assign: NaN where C is written (a value left unwritten stays NaN), the seeded padding elsewhere.
          const c = Float64Array.from(p.c0);
          if (!accumulate) for (let j = 0; j < n; j++) c.fill(Number.NaN, j * p.ldc, j * p.ldc + m);
          f.set(c, pc! / 8);
          simd.run('nn_dgemm', [m, n, k, pa!, p.lda, pb!, p.ldb, pc!, p.ldc, accumulate ? 1 : 0, pw!], { chunks, threads });
          const got = new Float64Array(simd.memory.buffer, pc!, p.c0.length);
          const at = firstDifference(got, expected);
          assert.equal(at, -1, `${m}x${n}x${k} pad ${pad} acc ${accumulate}, ${chunks} chunks on ${threads} threads: differs at ${at} (${got[at]} vs ${expected[at]})`);
        }
      }
    }
  });

  it('gemmF64Parallel: operands in another memory with leading dimensions, whole and in tiles (columns, then rows too), bit for bit', async () => {
    await withHelpers(MAX_THREADS - 1);
    let seed = 500;
    for (const [m, n, k] of [[101, 161, 300], [301, 241, 64], [8, 601, 1100]] as const) {
      for (const accumulate of [false, true]) {
        const p = product(m, n, k, 2, accumulate, (seed += 10));
        const expected = blockedReference(p);
        // Operand bytes per tile: no limit; all rows and 12 columns; 8 rows and 8 columns.
        for (const budget of [undefined, (m * k + k * 12 + m * 12) * 8, (8 * k + k * 8 + 64) * 8]) {
          const memory = new WebAssembly.Memory({ initial: 256 });
          const f = new Float64Array(memory.buffer);
          const [a, b, c] = [8, 8 + 8 * p.a.length + 8, 8 + 8 * (p.a.length + p.b.length) + 24];
          f.set(p.a, a / 8);
          f.set(p.b, b / 8);
          f.set(p.c0, c / 8);
          const before = { ...f64GemmCounters };
          // A loaded machine may have had the helpers declined by the previous product.
          resetF64GemmDecline();
          const run = () => gemmF64Parallel(memory.buffer, m, n, k, a, p.lda, b, p.ldb, c, p.ldc, accumulate);
          assert.equal(budget == null ? run() : withF64GemmBudget(budget, run), true, 'ran on the helper threads');
          const tiles = f64GemmCounters.tiles - before.tiles;
          if (budget == null) assert.equal(tiles, 1, 'one tile when everything fits');
          else assert.ok(tiles > 1, `tiled (${tiles} tiles)`);
          const got = new Float64Array(memory.buffer, c, p.c0.length);
          const at = firstDifference(got, expected);
          assert.equal(at, -1, `${m}x${n}x${k} acc ${accumulate} budget ${budget}: differs at ${at} (${got[at]} vs ${expected[at]})`);
          // Nothing else in the source memory moved.
          assert.equal(firstDifference(new Float64Array(memory.buffer, a, p.a.length), p.a), -1, 'A untouched');
          assert.equal(firstDifference(new Float64Array(memory.buffer, b, p.b.length), p.b), -1, 'B untouched');
        }
      }
    }
  });

  it('gemmF64Parallel declines, touching nothing, without helper threads (capped to 1 thread, SIMD kernels off), under the threads threshold and when no tile fits', async () => {
    await withHelpers(MAX_THREADS - 1);
    // 2·128·128·300 = 9.8 MFLOP: over the threads threshold (SIMD_THREAD_MIN_FLOPS).
    const p = product(128, 128, 300, 1, true, 900);
    const memory = new WebAssembly.Memory({ initial: 32 });
    const f = new Float64Array(memory.buffer);
    const [a, b, c] = [0, 8 * p.a.length, 8 * (p.a.length + p.b.length)];
    f.set(p.a, 0);
    f.set(p.b, b / 8);
    f.set(p.c0, c / 8);
    const snapshot = Float64Array.from(f);
    const call = (mm = 128, nn = 128, kk = 300) => gemmF64Parallel(memory.buffer, mm, nn, kk, a, p.lda, b, p.ldb, c, p.ldc, true);
    const release = capSimdThreads(1);
    try {
      assert.equal(call(), false, 'capped to one thread');
    } finally {
      release();
    }
    setSimdKernelsEnabled(false);
    try {
      assert.equal(call(), false, 'SIMD kernels off');
    } finally {
      setSimdKernelsEnabled(true);
    }
    assert.equal(call(64, 64, 64), false, 'under the threads threshold');
    assert.equal(withF64GemmBudget(0, () => call()), false, 'no room for a tile');
    assert.equal(firstDifference(f, snapshot), -1, 'the source memory is untouched');
    resetF64GemmDecline();
    assert.equal(call(), true);
    assert.equal(firstDifference(new Float64Array(memory.buffer, c, p.c0.length), blockedReference(p)), -1);
  });

  it('helpers that take too few chunks in two products in a row (no core for them): the next products are declined, C untouched, until the decline ends', async () => {
    const simd = await withHelpers(MAX_THREADS - 1);
    // 1,024 columns: 8 chunks of 128, two per thread, the least on which the share is judged.
    const p = product(128, 1024, 300, 0, true, 970);
    const memory = new WebAssembly.Memory({ initial: 128 });
    const f = new Float64Array(memory.buffer);
    const [a, b, c] = [0, 8 * p.a.length, 8 * (p.a.length + p.b.length)];
    f.set(p.a, 0);
    f.set(p.b, b / 8);
    f.set(p.c0, c / 8);
    const call = () => gemmF64Parallel(memory.buffer, p.m, p.n, p.k, a, p.lda, b, p.ldb, c, p.ldc, true);
    // Every chunk on this thread, as when the OS never ran the helpers during the product.
    const run = simd.run;
    simd.run = function (this: SimdModule, name, args, split) {
      run.call(this, name, args, { chunks: split?.chunks ?? 1, threads: 1 });
      return split?.chunks ?? 1;
    } as SimdModule['run'];
    resetF64GemmDecline();
    try {
      assert.equal(call(), true, 'the product itself completes');
      assert.equal(f64GemmDeclined(), false, 'one starved product is not yet a loaded machine');
      f.set(p.c0, c / 8);
      assert.equal(call(), true);
    } finally {
      simd.run = run;
    }
    assert.equal(firstDifference(new Float64Array(memory.buffer, c, p.c0.length), blockedReference(p)), -1);
    assert.equal(f64GemmDeclined(), true, 'two in a row are');
    const snapshot = Float64Array.from(f);
    assert.equal(call(), false, 'declined');
    assert.equal(firstDifference(f, snapshot), -1, 'nothing touched');
    resetF64GemmDecline();
    // Helpers that take their share keep the products.
    f.set(p.c0, c / 8);
    assert.equal(call(), true);
    assert.equal(f64GemmDeclined(), false);
    assert.equal(firstDifference(new Float64Array(memory.buffer, c, p.c0.length), blockedReference(p)), -1);
  });

  it('a helper that fails after part of a tile was accumulated: the tile is restored and finished on this thread, with the same bits', async () => {
    const simd = await withHelpers(MAX_THREADS - 1);
    const p = product(128, 96, 400, 1, true, 950);
    const memory = new WebAssembly.Memory({ initial: 32 });
    const f = new Float64Array(memory.buffer);
    const [a, b, c] = [0, 8 * p.a.length, 8 * (p.a.length + p.b.length)];
    const call = () => {
      resetF64GemmDecline();
      f.set(p.a, 0);
      f.set(p.b, b / 8);
      f.set(p.c0, c / 8);
      assert.equal(gemmF64Parallel(memory.buffer, p.m, p.n, p.k, a, p.lda, b, p.ldb, c, p.ldc, true), true);
      assert.equal(firstDifference(new Float64Array(memory.buffer, c, p.c0.length), blockedReference(p)), -1);
    };
    // A split run that accumulates half of its chunks into C and then fails, as SimdModule.run
    // does when a helper traps or dies mid-job (the chunks already done stay added in).
    const run = simd.run;
    let failures = 0;
    simd.run = function (this: SimdModule, name, args, split) {
      if (split == null || split.threads <= 1) return run.call(this, name, args, split);
      for (let chunk = 0; chunk < split.chunks / 2; chunk++) {
        (this.exports as unknown as Record<string, (...x: number[]) => void>)[name]!(...args, chunk, split.chunks, 0);
      }
      failures++;
      throw new Error(`nngeometry SIMD kernel ${name}: a helper failed; helper threads are now off`);
    } as SimdModule['run'];
    try {
      call();
    } finally {
      simd.run = run;
    }
    assert.equal(failures, 1);
    // Helpers gone before the job starts (SimdThreads.run refuses at once).
    simd.helpers!.dispose();
    call();
    // Back to a module with helpers.
    setSimdThreads(1);
    setSimdThreads(MAX_THREADS);
    await withHelpers(MAX_THREADS - 1);
  });
});
