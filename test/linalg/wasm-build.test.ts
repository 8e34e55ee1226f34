/**
 * The WebAssembly module builds from wasm/eigen_linalg.cpp with the documented toolchain, the
 * fresh build passes the eigen and Cholesky checks (loaded both through NNGEOMETRY_LINALG_WASM
 * and through initLinalg({ wasm: bytes })), and the committed module is that build.
 * Skipped where the toolchain (clang++-14 or clang++, wasi-libc, libc++ for wasm32, Eigen 3)
 * is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cholesky, choleskySolve, eighSym, initLinalg, linalgInfo } from '../../src/linalg/index.js';
import { eigResidual, isAscending, matmul, orthogonalityError, randomSpd, relativeDifference, transpose, uniform } from './support.js';

/** The reason the toolchain is unusable here, or undefined when it is complete. */
function missingToolchain(): string | undefined {
  const compiler = ['clang++-14', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
  if (!compiler) return 'no clang++-14 or clang++ on PATH (apt-get install clang-14 lld-14)';
  if (!existsSync('/usr/include/eigen3/Eigen/Dense')) return 'no /usr/include/eigen3 (apt-get install libeigen3-dev)';
  if (!existsSync('/usr/lib/wasm32-wasi/crt1-reactor.o')) return 'no wasi-libc (apt-get install wasi-libc)';
  return undefined;
}

function compilerVersion(): string {
  const compiler = ['clang++-14', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0)!;
  return /version (\S+)/.exec(spawnSync(compiler, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
}

function checkModule(label: string): void {
  for (const n of [1, 5, 64, 200]) {
    const a = randomSpd(n, 40 + n);
    const { values, vectors } = eighSym(a, n);
    assert.ok(eigResidual(a, n, values, vectors) < 1e-12, `${label} n=${n}: eig residual`);
    assert.ok(orthogonalityError(vectors, n) < 1e-12, `${label} n=${n}: orthogonality`);
    assert.ok(isAscending(values), `${label} n=${n}: ascending`);
    const l = cholesky(a, n);
    assert.ok(relativeDifference(matmul(l, n, n, transpose(l, n, n), n), a) < 1e-13, `${label} n=${n}: cholesky`);
    const b = uniform(n * 2, n);
    const x = choleskySolve(l, n, b, 2);
    assert.ok(relativeDifference(matmul(a, n, n, x, 2), b) < 1e-12, `${label} n=${n}: solve`);
  }
}

test('a fresh build of wasm/eigen_linalg.cpp passes the eigen and Cholesky checks', async (t) => {
  const missing = missingToolchain();
  if (missing) {
    t.skip(`toolchain not installed: ${missing}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-wasm-'));
  try {
    const build = spawnSync('bash', ['wasm/build.sh', dir], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(build.status, 0, `wasm/build.sh failed:\n${build.stdout}\n${build.stderr}`);
    const wasmPath = join(dir, 'eigen_linalg.wasm');
    const bytes = new Uint8Array(readFileSync(wasmPath));
    assert.deepEqual(
      WebAssembly.Module.imports(new WebAssembly.Module(bytes)),
      [{ module: 'env', name: 'nn_gemm_parallel', kind: 'function' }],
      'the module must import env.nn_gemm_parallel only (its products on the SIMD helper threads)',
    );

    // Through the environment override, as CI does for the whole suite.
    process.env.NNGEOMETRY_LINALG_WASM = wasmPath;
    try {
      assert.deepEqual(await initLinalg(), { implementation: 'eigen-wasm', wasmSource: 'environment' });
    } finally {
      delete process.env.NNGEOMETRY_LINALG_WASM;
    }
    checkModule('environment');
    // Through explicit bytes.
    assert.deepEqual(await initLinalg({ wasm: bytes }), { implementation: 'eigen-wasm', wasmSource: 'bytes' });
    assert.equal(linalgInfo().wasmSource, 'bytes');
    checkModule('bytes');

    // The build is deterministic, so with the toolchain the committed module was built with
    // (Debian bookworm clang 14.0.6, Eigen 3.4.0) a stale committed module shows up here.
    const version = compilerVersion();
    if (version !== '14.0.6') {
      t.diagnostic(`clang ${version}: not comparing with the committed module (built with clang 14.0.6)`);
      return;
    }
    assert.ok(
      Buffer.compare(readFileSync(wasmPath), readFileSync('wasm/eigen_linalg.wasm')) === 0,
      'wasm/eigen_linalg.wasm is stale: run `bash wasm/build.sh` and commit its outputs',
    );
    assert.equal(
      readFileSync(join(dir, 'eigen-module.generated.ts'), 'utf8'),
      readFileSync('src/linalg/wasm/eigen-module.generated.ts', 'utf8'),
      'src/linalg/wasm/eigen-module.generated.ts is stale: run `bash wasm/build.sh` and commit its outputs',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
