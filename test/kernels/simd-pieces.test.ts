/**
 * The SIMD kernels split large operands into pieces of at most SIMD_CALL_FLOATS floats (examples
 * of a convolution, products of a batch, rows of a product or of XᵀX), so that repeated large
 * calls reuse the module memory. Here the split size is forced down to a few hundred floats, so
 * that small inputs run in many pieces (with a remainder piece), and every result is compared
 * with the cpu backend at the kernel tests' tolerance TOL = 1e-4 (relative, max-norm).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import { symmetricRankUpdate } from '../../src/backend/kernels/simd/index.js';
import { gemmSimd, im2colSimd, syrkSimd, withSimdCallFloats } from '../../src/backend/kernels/simd/kernels.js';
import { simdKernels } from '../../src/backend/kernels/simd/module.js';
import { conv2dGeometry } from '../../src/backend/kernels/conv_geometry.js';
import { withForwardMinChannels } from '../../src/backend/kernels/conv2d_forward.js';
import { gradsOfProjection, maxRelativeError, randomValues, seeded, TOL, valuesOn } from './support.js';

/** Values of `compute` on wasm with pieces of `floats` floats, and on cpu. */
async function piecesVsCpu(floats: number, compute: () => tf.Tensor | tf.Tensor[]): Promise<number> {
  const cpu = await valuesOn('cpu', compute);
  const wasm = withSimdCallFloats(floats, () =>
    tf.tidy(() => {
      const out = compute();
      return (Array.isArray(out) ? out : [out]).map((t) => Float32Array.from(t.dataSync() as Float32Array));
    }),
  );
  return Math.max(...cpu.map((c, i) => maxRelativeError(wasm[i]!, c)));
}

describe('SIMD kernels in pieces (forced small split size) match cpu', () => {
  before(async () => {
    await useTestBackend('wasm');
  });

  for (const [stride, pad] of [[1, 'same'], [2, 'valid'], [2, 'same']] as const) {
    it(`conv2d forward, input and filter gradients over 7 examples split 1-2 per piece (stride ${stride}, ${pad})`, async () => {
      // One example of x is 9·8·3 = 216 floats: 600 floats hold 1-2 examples and dy, 7 leaves a remainder.
      const f = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad);
      // Threshold 1: the forward convolution takes the SIMD route too.
      const err = await withForwardMinChannels(1, () => piecesVsCpu(600, gradsOfProjection((x, w) => f(x!, w!), [seeded(1, [7, 9, 8, 3]), seeded(2, [3, 3, 3, 5])])));
      assert.ok(err <= TOL, `relative error ${err}`);
    });
  }

  it('im2col [M, K] in pieces of examples equals the one-call result bit for bit (7 examples, 1 per piece)', () => {
    const simd = simdKernels()!;
    const info = conv2dGeometry('test', [7, 9, 8, 3], [3, 3, 3, 1], { strides: 2, pad: 'same' });
    const x = tf.tidy(() => seeded(9, [7, 9, 8, 3])().dataSync() as Float32Array);
    const size = 7 * info.outHeight * info.outWidth * 27;
    const whole = new Float32Array(size);
    im2colSimd(simd, x, info, 'MK', whole);
    const pieces = new Float32Array(size).fill(Number.NaN);
    withSimdCallFloats(600, () => im2colSimd(simd, x, info, 'MK', pieces));
    assert.deepEqual(Array.from(pieces), Array.from(whole));
  });

  it('batched matMul (per-example products, one side shared) in pieces of products', async () => {
    for (const [shapeA, shapeB, ta, tb] of [
      [[9, 7, 5], [9, 5, 6], false, false],
      [[9, 5, 7], [9, 6, 5], true, true],
      [[1, 7, 5], [9, 5, 6], false, false],
      [[9, 7, 5], [5, 6], false, false],
    ] as Array<[number[], number[], boolean, boolean]>) {
      const err = await piecesVsCpu(200, () => tf.matMul(seeded(3, shapeA)(), seeded(4, shapeB)(), ta, tb));
      assert.ok(err <= TOL, `[${shapeA}]·[${shapeB}] transposes ${ta} ${tb}: relative error ${err}`);
    }
  });

  it('one tall product in pieces of rows of A (and transposed B), remainder piece included', async () => {
    for (const tb of [false, true]) {
      const err = await piecesVsCpu(300, () => tf.matMul(seeded(5, [101, 13])(), seeded(6, tb ? [11, 13] : [13, 11])(), false, tb));
      assert.ok(err <= TOL, `transposeB ${tb}: relative error ${err}`);
    }
  });

  it('XᵀX in pieces of 256 rows (3 pieces for 600 rows), accumulated onto a symmetric start', async () => {
    const x = seeded(7, [600, 9]);
    const start = seeded(8, [9, 9]);
    const err = await piecesVsCpu(300, () => {
      const s = start();
      const sym = tf.add(s, s.transpose()) as tf.Tensor2D;
      return [symmetricRankUpdate(x() as tf.Tensor2D, tf.getBackend() === 'wasm' ? sym : undefined).add(tf.getBackend() === 'wasm' ? tf.zeros([9, 9]) : sym)];
    });
    assert.ok(err <= TOL, `relative error ${err}`);
  });

  it('a product larger than a call goes in tiles of C: every transpose, the very numbers of the one-call product', () => {
    // m·k + k·n + m·n = 4,043 floats against calls of 2,000: panels of 32 columns (45 = 32 + 13)
    // and blocks of 4 rows (37 = 9·4 + 1). A tile misplaced, a panel or row block dropped at the
    // edge, or a transpose read the wrong way changes numbers, which stay NaN where nothing writes.
    const simd = simdKernels()!;
    const [m, k, n] = [37, 29, 45];
    const a = randomValues(21, m * k);
    const b = randomValues(22, k * n);
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const whole = new Float32Array(m * n);
      gemmSimd(simd, a, b, m, k, n, whole, ta, tb);
      const tiles = new Float32Array(m * n).fill(Number.NaN);
      withSimdCallFloats(2000, () => gemmSimd(simd, a, b, m, k, n, tiles, ta, tb));
      assert.deepEqual(Array.from(tiles), Array.from(whole), `transposes ${ta} ${tb}`);
      // And the product itself, in float64 (a stored Aᵀ is [k, m], a stored Bᵀ is [n, k]).
      let err = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let t = 0;
          for (let l = 0; l < k; l++) t += a[ta ? l * m + i : i * k + l]! * b[tb ? j * k + l : l * n + j]!;
          err = Math.max(err, Math.abs(tiles[i * n + j]! - t) / (1 + Math.abs(t)));
        }
      }
      assert.ok(err <= 1e-5, `transposes ${ta} ${tb}: error ${err} against float64`);
    }
  });

  it('XᵀX larger than a call goes in panels of columns over blocks of rows: C + XᵀX, exactly symmetric', () => {
    // [40, 40] plus a packed panel is past calls of 3,000 floats: panels of 16 columns (16, 16, 8)
    // and blocks of 256 rows (700 = 256 + 256 + 188), accumulated onto a symmetric start. A
    // mirror from the wrong side, a diagonal block's lower triangle left unset, a row block
    // dropped or the start overwritten instead of added to all change numbers.
    const simd = simdKernels()!;
    const [m, n] = [700, 40];
    const x = randomValues(23, m * n);
    const c0 = new Float32Array(n * n);
    const r = randomValues(24, n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c0[i * n + j] = r[i * n + j]! + r[j * n + i]!;
    for (const accumulate of [false, true]) {
      const out = accumulate ? Float32Array.from(c0) : new Float32Array(n * n).fill(Number.NaN);
      withSimdCallFloats(3000, () => syrkSimd(simd, x, m, n, out, accumulate));
      let err = 0;
      let scale = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let t = accumulate ? c0[i * n + j]! : 0;
          for (let l = 0; l < m; l++) t += x[l * n + i]! * x[l * n + j]!;
          err = Math.max(err, Math.abs(out[i * n + j]! - t));
          scale = Math.max(scale, Math.abs(t));
          assert.equal(out[i * n + j], out[j * n + i], `C[${i}, ${j}] = C[${j}, ${i}] (accumulate ${accumulate})`);
        }
      }
      assert.ok(err / scale <= 1e-5, `accumulate ${accumulate}: relative error ${err / scale} against float64`);
    }
  });
});
