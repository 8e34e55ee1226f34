/**
 * The SIMD kernels split between helper threads (setSimdThreads). Each kernel is run on the same
 * operands split into 1 to 13 chunks over 1 to 4 threads, outputs prefilled with NaN: every split
 * must give the one-chunk result bit for bit (a chunk that skips or overlaps a range, a helper on
 * the wrong memory, stack or work slot, or a split of a sum would show), and that result must
 * match a float64 reference written here (1e-5 relative, max-norm). The geometries reach both
 * splits of a GEMM (panels of columns, rows), remainders in every split, chunks with nothing to
 * do, two packed blocks of depth (k, m > 256), and the filter gradient's blocks of pixels (whose
 * partial sums are fixed by the geometry, whatever the threads).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import {
  capSimdThreads, releaseSimdMemory, setSimdThreads, SIMD_MEMORY_RETAIN_BYTES, SIMD_THREAD_MIN_FLOPS, simdKernels, simdKernelsInfo, simdThreads, GEOMETRY_FLOATS, PACK_DEPTH,
  type SimdConvGeometry, type SimdModule, type SimdSplit,
} from '../../src/backend/kernels/simd/module.js';
import { withForwardMinChannels, conv2dForwardBySimd, SIMD_FORWARD_MIN_CHANNELS } from '../../src/backend/kernels/conv2d_forward.js';
import { conv2dGeometry } from '../../src/backend/kernels/conv_geometry.js';
import type { KernelArgs, WasmBackend } from '../../src/backend/kernels/wasm_backend.js';
import { gemmSimd } from '../../src/backend/kernels/simd/kernels.js';
import { maxRelativeError, randomValues, withHelpers } from './support.js';

const MAX_PARTS = 4;
/** (chunks, threads) splits every kernel is run with; the first is the reference. */
const SPLITS: Array<[number, number]> = [[1, 1], [2, 2], [3, 3], [4, 4], [7, 2], [13, 4], [5, 1]];
const REF_TOL = 1e-5;

interface Case {
  /** Operand sizes in floats; the last one is the output. */
  sizes: number[];
  /** Work floats per part. */
  work: number;
  /** Fills the operands (and the output's initial values when `initial` is set). */
  operands: Float32Array[];
  initial?: Float32Array;
  call: (simd: SimdModule, ptrs: number[], work: number, split: SimdSplit) => void;
  reference: Float64Array;
}

/** Outputs for every split of SPLITS; asserts bit-identity and the float64 reference. */
function checkParts(simd: SimdModule, name: string, c: Case): void {
  const results: Float32Array[] = [];
  const out = c.sizes.length - 1;
  for (const [chunks, threads] of SPLITS) {
    const ptrs = simd.layout([...c.sizes, c.work * MAX_PARTS]);
    c.operands.forEach((v, i) => simd.f32(ptrs[i]!, v.length).set(v));
    const o = simd.f32(ptrs[out]!, c.sizes[out]!);
    if (c.initial != null) o.set(c.initial);
    else o.fill(Number.NaN);
    c.call(simd, ptrs, ptrs[ptrs.length - 1]!, { chunks, threads });
    results.push(Float32Array.from(simd.f32(ptrs[out]!, c.sizes[out]!)));
  }
  for (let p = 1; p < SPLITS.length; p++) {
    const a = results[0]!, b = results[p]!;
    let first = -1;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) { first = i; break; }
    assert.equal(first, -1, `${name}: ${SPLITS[p]![0]} chunks on ${SPLITS[p]![1]} threads differ from 1 chunk at ${first} (${b[first]} vs ${a[first]})`);
  }
  const err = maxRelativeError(results[0]!, Float32Array.from(c.reference));
  assert.ok(err <= REF_TOL, `${name}: relative error ${err} against float64`);
}

function gemmReference(a: Float32Array, b: Float32Array, m: number, n: number, k: number, ta: boolean, tb: boolean, c0?: Float32Array): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = c0 != null ? c0[i * n + j]! : 0;
      for (let p = 0; p < k; p++) s += a[ta ? p * m + i : i * k + p]! * b[tb ? j * k + p : p * n + j]!;
      c[i * n + j] = s;
    }
  }
  return c;
}

/** A seeded symmetric n×n matrix (the upper triangle of random values, mirrored). */
function symmetricValues(seed: number, n: number): Float32Array {
  const r = randomValues(seed, n * n);
  const c = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c[i * n + j] = r[Math.min(i, j) * n + Math.max(i, j)]!;
  return c;
}

/** C0 + XᵀX in float64 for X [m, n]. */
function syrkReference(x: Float32Array, m: number, n: number, c0: Float32Array): Float64Array {
  const ref = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let acc = c0[i * n + j]!;
      for (let p = 0; p < m; p++) acc += x[p * n + i]! * x[p * n + j]!;
      ref[i * n + j] = acc;
    }
  }
  return ref;
}

/** The taps of a convolution: calls visit(m, k, xIndex) for every in-bounds (pixel, tap). */
function forEachTap(g: SimdConvGeometry, visit: (m: number, k: number, xi: number) => void): void {
  let m = 0;
  for (let b = 0; b < g.n; b++) {
    for (let oh = 0; oh < g.oh; oh++) {
      for (let ow = 0; ow < g.ow; ow++, m++) {
        for (let kr = 0; kr < g.fh; kr++) {
          const ih = oh * g.sh - g.top + kr * g.dh;
          if (ih < 0 || ih >= g.h) continue;
          for (let kc = 0; kc < g.fw; kc++) {
            const iw = ow * g.sw - g.left + kc * g.dw;
            if (iw < 0 || iw >= g.w) continue;
            for (let ch = 0; ch < g.c; ch++) visit(m, (kr * g.fw + kc) * g.c + ch, ((b * g.h + ih) * g.w + iw) * g.c + ch);
          }
        }
      }
    }
  }
}

function geometry(x: [number, number, number, number], f: [number, number, number, number], stride: number, pad: 'same' | 'valid'): SimdConvGeometry {
  const info = conv2dGeometry('test', x, f, { strides: stride, pad });
  return {
    n: x[0], h: x[1], w: x[2], c: x[3], oh: info.outHeight, ow: info.outWidth, fh: f[0], fw: f[1],
    sh: stride, sw: stride, dh: 1, dw: 1, top: info.padInfo.top, left: info.padInfo.left, co: f[3],
  };
}

describe('SIMD kernels split between helper threads: bit-identical to one thread', () => {
  let was = 1;
  before(async () => {
    await useTestBackend('wasm');
    was = simdThreads();
    setSimdThreads(MAX_PARTS);
  });
  after(() => setSimdThreads(was));

  it(`${MAX_PARTS - 1} helper threads start on Node's main thread and simdKernelsInfo reports them`, async () => {
    await withHelpers(MAX_PARTS - 1);
    const info = simdKernelsInfo();
    assert.equal(info.threads, MAX_PARTS);
    assert.equal(info.threadsRunning, MAX_PARTS);
  });

  it('GEMM: columns split (n = 45), rows split (n = 10), transposes, accumulate, depth 300 > 256', async () => {
    const simd = await withHelpers(MAX_PARTS - 1);
    for (const [m, n, k] of [[37, 45, 300], [33, 10, 19], [3, 45, 7]] as const) {
      for (const [ta, tb, acc] of [[false, false, false], [true, false, true], [false, true, false], [true, true, true]] as const) {
        const a = randomValues(1, m * k), b = randomValues(2, k * n), c0 = randomValues(3, m * n);
        checkParts(simd, `sgemm ${m}x${n}x${k} ta=${ta} tb=${tb} acc=${acc}`, {
          sizes: [m * k, k * n, m * n], work: PACK_DEPTH * Math.ceil(n / 8) * 8, operands: [a, b],
          ...(acc ? { initial: c0 } : {}),
          call: (s, p, w, split) => s.run('nn_sgemm', [m, n, k, p[0]!, p[1]!, p[2]!, ta ? 1 : 0, tb ? 1 : 0, acc ? 1 : 0, w], split),
          reference: gemmReference(a, b, m, n, k, ta, tb, acc ? c0 : undefined),
        });
      }
    }
  });

  it('batched GEMM: 5 products of [7, 11]·[11, 9] split by products (3 parts: 2 + 2 + 1)', async () => {
    const simd = await withHelpers(MAX_PARTS - 1);
    const [count, m, n, k] = [5, 7, 9, 11];
    const a = randomValues(4, count * m * k), b = randomValues(5, count * k * n);
    const ref = new Float64Array(count * m * n);
    for (let i = 0; i < count; i++) ref.set(gemmReference(a.subarray(i * m * k), b.subarray(i * k * n), m, n, k, false, false), i * m * n);
    checkParts(simd, 'sgemm_batch', {
      sizes: [count * m * k, count * k * n, count * m * n], work: PACK_DEPTH * 16, operands: [a, b],
      call: (s, p, w, split) => s.run('nn_sgemm_batch', [count, m, n, k, p[0]!, m * k, p[1]!, k * n, p[2]!, m * n, 0, 0, w], split),
      reference: ref,
    });
  });

  it('XᵀX: triangle split by area (n = 45, 203; n = 10 leaves parts empty), m = 300 > 256, onto a symmetric C', async () => {
    const simd = await withHelpers(MAX_PARTS - 1);
    for (const [m, n] of [[300, 45], [40, 203], [9, 10]] as const) {
      const x = randomValues(6, m * n);
      const c0 = symmetricValues(7, n);
      const ref = syrkReference(x, m, n, c0);
      checkParts(simd, `ssyrk ${m}x${n}`, {
        sizes: [m * n, n * n], work: PACK_DEPTH * Math.ceil(n / 8) * 8, operands: [x], initial: c0,
        call: (s, p, w, split) => s.run('nn_ssyrk', [m, n, p[0]!, p[1]!, 1, w], split),
        reference: ref,
      });
    }
  });

  it('XᵀX of a tall X (m = 1,300, n = 37): 3 blocks of rows, their partials added onto a symmetric C, then mirrored', async () => {
    const simd = await withHelpers(MAX_PARTS - 1);
    const [m, n] = [1300, 37];
    const blocks = simd.exports.nn_ssyrk_blocks(m, n);
    assert.equal(blocks, 3, 'ceil(1300 / 256) / 2 blocks of rows');
    const x = randomValues(17, m * n);
    const c0 = symmetricValues(18, n);
    const ref = syrkReference(x, m, n, c0);
    checkParts(simd, 'ssyrk rows 1300x37', {
      sizes: [m * n, blocks * n * n, n * n], work: PACK_DEPTH * Math.ceil(n / 8) * 8, operands: [x, new Float32Array(blocks * n * n).fill(Number.NaN)], initial: c0,
      call: (s, p, w, split) => {
        s.run('nn_ssyrk_rows', [m, n, p[0]!, p[1]!, w], { chunks: blocks, threads: Math.min(split.threads, blocks) });
        s.exports.nn_ssyrk_add_partials(p[1]!, blocks, n, p[2]!, 1);
      },
      reference: ref,
    });
  });

  for (const [label, x, f, stride, pad] of [
    ['3 channels, 5 filters, stride 2 same', [5, 9, 8, 3], [3, 3, 3, 5], 2, 'same'],
    ['4 channels, 37 filters, stride 1 valid', [3, 7, 6, 4], [3, 3, 4, 37], 1, 'valid'],
    ['1×1, 16 channels, 9 filters, 2 examples (most chunks empty)', [2, 5, 5, 16], [1, 1, 16, 9], 1, 'same'],
    ['64 channels, 5 filters, 1,000 pixels (dW in 4 blocks of pixels)', [2, 20, 25, 64], [3, 3, 64, 5], 1, 'same'],
  ] as const) {
    it(`convolution forward, input and filter gradients: ${label}`, async () => {
      const simd = await withHelpers(MAX_PARTS - 1);
      const g = geometry([...x], [...f], stride, pad);
      const K = g.fh * g.fw * g.c, M = g.n * g.oh * g.ow, nx = g.n * g.h * g.w * g.c;
      const xs = randomValues(8, nx), w = randomValues(9, K * g.co), dy = randomValues(10, M * g.co), bias = randomValues(11, g.co);
      const y = new Float64Array(M * g.co), dx = new Float64Array(nx), dw = new Float64Array(K * g.co);
      for (let m = 0; m < M; m++) for (let o = 0; o < g.co; o++) y[m * g.co + o] = bias[o]!;
      forEachTap(g, (m, k, xi) => {
        for (let o = 0; o < g.co; o++) {
          y[m * g.co + o]! += xs[xi]! * w[k * g.co + o]!;
          dx[xi]! += dy[m * g.co + o]! * w[k * g.co + o]!;
          dw[k * g.co + o]! += xs[xi]! * dy[m * g.co + o]!;
        }
      });
      const relu = y.map((v) => Math.max(v, 0));
      const [pg] = simd.layout([GEOMETRY_FLOATS]);
      simd.writeGeometry(pg!, g);
      const work = (which: 'nn_conv_forward_work' | 'nn_conv_input_grad_work' | 'nn_conv_filter_grad_work') => {
        const [p] = simd.layout([GEOMETRY_FLOATS]);
        simd.writeGeometry(p!, g);
        return simd.exports[which](p!);
      };
      const withGeometry = (call: (s: SimdModule, p: number[], w: number, split: SimdSplit) => void) =>
        (s: SimdModule, p: number[], wk: number, split: SimdSplit) => {
          simd.writeGeometry(p[0]!, g);
          call(s, p, wk, split);
        };
      checkParts(simd, `forward ${label}`, {
        sizes: [GEOMETRY_FLOATS, nx, K * g.co, g.co, M * g.co], work: work('nn_conv_forward_work'), operands: [new Float32Array(GEOMETRY_FLOATS), xs, w, bias],
        call: withGeometry((s, p, wk, split) => s.run('nn_conv_forward', [p[1]!, p[2]!, p[3]!, p[0]!, 1, p[4]!, wk], split)),
        reference: relu,
      });
      checkParts(simd, `input gradient ${label}`, {
        sizes: [GEOMETRY_FLOATS, M * g.co, K * g.co, nx], work: work('nn_conv_input_grad_work'), operands: [new Float32Array(GEOMETRY_FLOATS), dy, w],
        call: withGeometry((s, p, wk, split) => s.run('nn_conv_input_grad', [p[1]!, p[2]!, p[0]!, p[3]!, wk], split)),
        reference: dx,
      });
      // The filter gradient's chunks are its blocks of pixels (fixed by the geometry): the splits vary the threads only.
      const blocks = (() => {
        const [p] = simd.layout([GEOMETRY_FLOATS]);
        simd.writeGeometry(p!, g);
        return simd.exports.nn_conv_filter_grad_blocks(p!);
      })();
      if (label.includes('4 blocks')) assert.equal(blocks, 4, 'blocks of pixels of the 1,000-pixel geometry');
      checkParts(simd, `filter gradient ${label}`, {
        sizes: [GEOMETRY_FLOATS, nx, M * g.co, blocks * K * g.co, K * g.co], work: work('nn_conv_filter_grad_work'),
        operands: [new Float32Array(GEOMETRY_FLOATS), xs, dy, new Float32Array(blocks * K * g.co).fill(Number.NaN)],
        call: withGeometry((s, p, wk, split) => {
          s.run('nn_conv_filter_grad', [p[1]!, p[2]!, p[0]!, p[3]!, wk], { chunks: blocks, threads: Math.min(split.threads, blocks) });
          s.exports.nn_add_partials(p[3]!, blocks, K * g.co, p[4]!);
        }),
        reference: dw,
      });
    });
  }

  it('a CNN\'s gradients through the kernel fixes are bit-identical with 4 threads and with 1', async () => {
    await withHelpers(MAX_PARTS - 1);
    const x = tf.tensor4d(randomValues(12, 16 * 12 * 12 * 8), [16, 12, 12, 8]);
    const w1 = tf.variable(tf.tensor4d(randomValues(13, 3 * 3 * 8 * 24), [3, 3, 8, 24]));
    const w2 = tf.variable(tf.tensor4d(randomValues(14, 3 * 3 * 24 * 40), [3, 3, 24, 40]));
    const loss = () => tf.tidy(() => {
      const h = tf.relu(tf.conv2d(x, w1, 1, 'same'));
      const y = tf.conv2d(h, w2, 2, 'valid');
      return tf.sum(tf.mul(y, y)) as tf.Scalar;
    });
    const grads = () => tf.tidy(() => {
      const { grads: g } = tf.variableGrads(loss);
      return [g[w1.name]!, g[w2.name]!].map((t) => Float32Array.from(t.dataSync() as Float32Array));
    });
    const before = tf.memory().numTensors;
    // Threshold 1: every convolution takes the SIMD route, split between threads when large enough.
    const threaded = await withForwardMinChannels(1, async () => grads());
    setSimdThreads(1);
    const single = await withForwardMinChannels(1, async () => grads());
    setSimdThreads(MAX_PARTS);
    for (let i = 0; i < 2; i++) {
      assert.equal(threaded[i]!.length, single[i]!.length);
      assert.ok(threaded[i]!.every((v, j) => Object.is(v, single[i]![j])), `gradient ${i} differs between 4 threads and 1`);
    }
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, w1, w2]);
  });

  it('the forward convolution\'s route (SIMD or stock) does not depend on the thread count', async () => {
    await withHelpers(MAX_PARTS - 1);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
    const route = (shape: [number, number, number, number], co: number) => {
      const inputs = { x: tf.zeros(shape), filter: tf.zeros([3, 3, shape[3], co]) };
      const backend = tf.backend() as unknown as WasmBackend;
      const y = conv2dForwardBySimd({ inputs, backend, attrs } as unknown as KernelArgs<WasmBackend>);
      if (y != null) backend.disposeData(y.dataId);
      tf.dispose(Object.values(inputs));
      return y != null;
    };
    const shapes: Array<[number, number, number, number]> = [[64, 32, 32, SIMD_FORWARD_MIN_CHANNELS], [64, 32, 32, SIMD_FORWARD_MIN_CHANNELS - 1], [1, 4, 4, SIMD_FORWARD_MIN_CHANNELS]];
    const threaded = shapes.map((s) => route(s, 16));
    setSimdThreads(1);
    const single = shapes.map((s) => route(s, 16));
    setSimdThreads(MAX_PARTS);
    assert.deepEqual(threaded, [true, false, true]);
    assert.deepEqual(single, threaded);
  });

  it('helpers move to the new memory when the module memory is released', async () => {
    const simd = await withHelpers(MAX_PARTS - 1);
    const [m, n, k] = [40, 64, 30];
    const a = randomValues(15, m * k), b = randomValues(16, k * n);
    const product = (s: SimdModule, parts: number) => {
      const [pa, pb, pc, pw] = s.layout([m * k, k * n, m * n, parts * PACK_DEPTH * n]);
      s.f32(pa!, m * k).set(a);
      s.f32(pb!, k * n).set(b);
      s.run('nn_sgemm', [m, n, k, pa!, pb!, pc!, 0, 0, 0, pw!], { chunks: 4 * parts, threads: parts });
      return Float32Array.from(s.f32(pc!, m * n));
    };
    const one = product(simd, 1);
    releaseSimdMemory();
    const fresh = simdKernels()!;
    assert.notEqual(fresh, simd);
    assert.equal(fresh.helperThreads(), MAX_PARTS - 1, 'the helpers were kept');
    assert.deepEqual(product(fresh, MAX_PARTS), one);
  });

  it('a call larger than the retained memory runs on a single-thread module of its own: the shared memory stays within the retained size, nothing piles up', async () => {
    const simd = await withHelpers(MAX_PARTS - 1);
    // B [4096, 4100] alone is 67 MB: more than the 64 MB the shared memory may keep.
    const [m, k, n] = [3, 4096, 4100];
    const a = randomValues(19, m * k), b = randomValues(20, k * n);
    const out = new Float32Array(m * n);
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 8; i++) gemmSimd(simdKernels()!, a, b, m, k, n, out);
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    assert.equal(simdKernels(), simd, 'the threaded module is kept');
    assert.ok(simd.memoryBytes() <= SIMD_MEMORY_RETAIN_BYTES, `shared memory ${simd.memoryBytes()} bytes`);
    // Eight piled-up memories would be over 1 GB (a shared one is only unmapped once every thread lets go).
    assert.ok(grown < 600, `RSS grew by ${grown.toFixed(0)} MB`);
    const ref = gemmReference(a, b, m, n, k, false, false);
    assert.ok(maxRelativeError(out, Float32Array.from(ref)) <= REF_TOL);
    assert.equal(simd.helperThreads(), MAX_PARTS - 1);
  });

  it('a helper that stopped turns threads off with an error naming the kernel; later calls run on one thread', async () => {
    const simd = await withHelpers(MAX_PARTS - 1);
    simd.helpers!.dispose();
    const [pa, pc, pw] = simd.layout([64, 64, 2 * PACK_DEPTH * 8]);
    assert.throws(() => simd.run('nn_sgemm', [8, 8, 8, pa!, pa!, pc!, 0, 0, 0, pw!], { chunks: 2, threads: 2 }), /nn_sgemm: .*helper threads are now off/);
    assert.equal(simd.threadsFor(1e12), 1);
    simd.run('nn_sgemm', [8, 8, 8, pa!, pa!, pc!, 0, 0, 0, pw!], { chunks: 2, threads: 2 });
    // Back to a module with helpers for what follows.
    setSimdThreads(1);
    setSimdThreads(MAX_PARTS);
    await withHelpers(MAX_PARTS - 1);
  });

  it('capSimdThreads caps the threads of every kernel until released (nested caps; a second release is a no-op)', async () => {
    const simd = await withHelpers(MAX_PARTS - 1);
    assert.equal(simd.threadsFor(1e12), MAX_PARTS);
    assert.equal(simd.threadsFor(SIMD_THREAD_MIN_FLOPS - 1), 1, 'below the threshold: one thread');
    const outer = capSimdThreads(2);
    const inner = capSimdThreads(1);
    assert.equal(simd.threadsFor(1e12), 1);
    inner();
    inner();
    assert.equal(simd.threadsFor(1e12), 2);
    outer();
    assert.equal(simd.threadsFor(1e12), MAX_PARTS);
  });

  it('NNGEOMETRY_SIMD_THREADS: a count is taken, a bad value is named in one warning and the default used', () => {
    const probe = (value: string) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
      "const m = await import('./src/backend/kernels/simd/module.ts'); console.log(m.simdThreads());"],
      { env: { ...process.env, NNGEOMETRY_SIMD_THREADS: value }, encoding: 'utf8', timeout: 60_000 });
    const good = probe('3');
    assert.equal(good.stdout.trim(), '3');
    assert.doesNotMatch(good.stderr, /NNGEOMETRY_SIMD_THREADS/);
    for (const bad of ['two', '0', '1.5', '65']) {
      const r = probe(bad);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`NNGEOMETRY_SIMD_THREADS='${bad.replace('.', '\\.')}' is not an integer in \\[1, 64\\].*setSimdThreads`));
      assert.equal(r.stdout.trim(), String(Math.min(availableParallelism(), 8)));
    }
  });

  it('setSimdThreads refuses counts that are not integers in [1, 64]', () => {
    for (const bad of [0, -1, 1.5, 65, Number.NaN]) assert.throws(() => setSimdThreads(bad), RangeError);
    assert.equal(simdThreads(), MAX_PARTS);
  });
});
