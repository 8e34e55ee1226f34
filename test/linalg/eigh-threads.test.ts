/**
 * The WebAssembly eigh with its large products on the SIMD helper threads (env.nn_gemm_parallel,
 * gemmF64Parallel): the decomposition must be bit-identical with threads on, capped to one, off
 * (setSimdThreads(1)) and with the products cut into small tiles, and accurate:
 * ‖AV − VΛ‖_F/‖A‖_F ≤ 1e-13 and ‖VᵀV − I‖_F ≤ 1e-13. Sizes below the threshold of the call-out
 * (n = 130: nothing is offered), across it (300) and well over it (517, 610), a spectrum with
 * repeated and clustered eigenvalues (deflation), and the public gemm through the same import.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eighSym, gemm } from '../../src/linalg/index.js';
import { lastEighRoute } from '../../src/linalg/eigh.js';
import { capSimdThreads, setSimdThreads, simdKernels, simdThreads } from '../../src/backend/kernels/simd/module.js';
import { f64GemmCounters, resetF64GemmDecline, withF64GemmBudget } from '../../src/backend/kernels/simd/gemm_f64.js';
import { eigResidual, orthogonalityError, uniform, useImplementation, withSpectrum } from './support.js';

const TOL = 1e-13;
const THREADS = 4;

async function withHelpers(helpers: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (simdKernels()!.helperThreads() < helpers) {
    if (Date.now() > deadline) throw new Error('helper threads did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function randomSymmetric(n: number, seed: number): Float64Array {
  const g = uniform(n * n, seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = g[i * n + j]! + g[j * n + i]!;
  return a;
}

function sameBits(x: Float64Array, y: Float64Array): number {
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return i;
  return -1;
}

/** eighSym of `a` and the number of products it ran on the helper threads. */
function decompose(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array; offloaded: number } {
  // On a loaded machine the previous decomposition may have left the helpers declined.
  resetF64GemmDecline();
  const before = f64GemmCounters.products;
  const { values, vectors } = eighSym(a, n);
  assert.equal(lastEighRoute(), 'divide-and-conquer');
  return { values, vectors, offloaded: f64GemmCounters.products - before };
}

function checkAccuracy(a: Float64Array, n: number, values: Float64Array, vectors: Float64Array, label: string): void {
  const residual = eigResidual(a, n, values, vectors);
  const orthogonality = orthogonalityError(vectors, n);
  assert.ok(residual <= TOL, `${label}: ‖AV − VΛ‖/‖A‖ = ${residual}`);
  assert.ok(orthogonality <= TOL, `${label}: ‖VᵀV − I‖ = ${orthogonality}`);
}

function assertSame(x: { values: Float64Array; vectors: Float64Array }, y: { values: Float64Array; vectors: Float64Array }, label: string): void {
  assert.equal(sameBits(x.values, y.values), -1, `${label}: eigenvalues differ`);
  const at = sameBits(x.vectors, y.vectors);
  assert.equal(at, -1, `${label}: eigenvectors differ at ${at} (${x.vectors[at]} vs ${y.vectors[at]})`);
}

describe('float64 eigh with its products on the SIMD helper threads', () => {
  let was = 1;
  before(async () => {
    await useImplementation('eigen-wasm');
    was = simdThreads();
    setSimdThreads(THREADS);
    await withHelpers(THREADS - 1);
  });
  after(() => setSimdThreads(was));

  const cases: Array<[string, number, () => Float64Array]> = [
    ['random, below the call-out threshold', 130, () => randomSymmetric(130, 7)],
    ['random, across the threshold', 300, () => randomSymmetric(300, 8)],
    ['random', 517, () => randomSymmetric(517, 9)],
    // 150 copies of 1, 100 of −2, 60 values 1e-10 apart, the rest spread: deflation by rotation
    // and of negligible z, so that the merges' products have ragged shapes.
    ['repeated and clustered eigenvalues', 410, () => withSpectrum([
      ...Array(150).fill(1), ...Array(100).fill(-2), ...Array.from({ length: 60 }, (_, i) => 0.5 + 1e-10 * i),
      ...Array.from({ length: 100 }, (_, i) => -3 + 0.05 * i),
    ], 11)],
  ];

  for (const [label, n, make] of cases) {
    it(`${label} (n = ${n}): bit-identical on ${THREADS} threads, capped to 1, and in small tiles; accurate to ${TOL}`, () => {
      const a = make();
      const threaded = decompose(a, n);
      if (n < 200) assert.equal(threaded.offloaded, 0, 'nothing offered below the threshold');
      else assert.ok(threaded.offloaded > 0, 'products ran on the helper threads');
      checkAccuracy(a, n, threaded.values, threaded.vectors, label);
      const release = capSimdThreads(1);
      let one;
      try {
        one = decompose(a, n);
      } finally {
        release();
      }
      assert.equal(one.offloaded, 0, 'capped to one thread: every product ran in the module');
      assertSame(threaded, one, `${label}: ${THREADS} threads against 1`);
      if (n >= 200) {
        // Tiles of a few columns (or rows) of C: 256 KB of operands per tile.
        const tilesBefore = f64GemmCounters.tiles;
        const tiled = withF64GemmBudget(1 << 18, () => decompose(a, n));
        assert.ok(f64GemmCounters.tiles - tilesBefore > tiled.offloaded, 'the products ran in several tiles each');
        assertSame(threaded, tiled, `${label}: whole against tiled`);
      }
    });
  }

  it('setSimdThreads(1): no helper threads, the module runs every product, same bits', async () => {
    const n = 517;
    const a = randomSymmetric(n, 9);
    const threaded = decompose(a, n);
    setSimdThreads(1);
    try {
      const alone = decompose(a, n);
      assert.equal(alone.offloaded, 0);
      assertSame(threaded, alone, 'threads against none');
    } finally {
      setSimdThreads(THREADS);
      await withHelpers(THREADS - 1);
    }
  });

  it('the public gemm (C = AB, 300 x 302 x 301) through the same import: bit-identical on 1 and 4 threads, and a float64 product', () => {
    const [m, k, n] = [300, 302, 301];
    const x = uniform(m * k, 21), y = uniform(k * n, 22);
    resetF64GemmDecline();
    const before = f64GemmCounters.products;
    const threaded = gemm(x, m, k, y, n);
    assert.equal(f64GemmCounters.products - before, 1, 'the product ran on the helper threads');
    const release = capSimdThreads(1);
    let one;
    try {
      one = gemm(x, m, k, y, n);
    } finally {
      release();
    }
    assert.equal(sameBits(threaded, one), -1);
    let worst = 0, scale = 0;
    for (let i = 0; i < m; i += 7) {
      for (let j = 0; j < n; j += 5) {
        let s = 0;
        for (let l = 0; l < k; l++) s += x[i * k + l]! * y[l * n + j]!;
        worst = Math.max(worst, Math.abs(threaded[i * n + j]! - s));
        scale = Math.max(scale, Math.abs(s));
      }
    }
    assert.ok(worst <= 1e-13 * scale, `max |C − AB| = ${worst}`);
  });
});
