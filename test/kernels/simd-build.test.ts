/**
 * wasm/simd_kernels.c builds with the documented toolchain (wasm/build-simd.sh), the fresh build
 * passes the SIMD kernel checks against the cpu backend (and the conv gradient fixes run on it),
 * and the committed module is that build. Skipped where clang-14 (or clang) and wasm-ld are not
 * installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestBackend } from '../support/backend.js';
import { installKernelFixes } from '../../src/backend/kernels/index.js';
import { SELF_TEST_TOLERANCE, maxRelativeError, selfTestKernel } from '../../src/backend/kernels/self_test.js';
import { selfTestSimdKernels } from '../../src/backend/kernels/self_test_simd.js';
import { setSimdThreads, simdKernelsInfo, simdThreads, useSimdModuleBytes } from '../../src/backend/kernels/simd/index.js';
import { cpuBackend } from '../../src/backend/kernels/wasm_backend.js';

function compiler(): string | undefined {
  return ['clang-14', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
}

/** The reason the toolchain is unusable here, or undefined when it is complete. */
function missingToolchain(): string | undefined {
  const cc = compiler();
  if (!cc) return 'no clang-14 or clang on PATH (apt-get install clang-14 lld-14)';
  // clang finds wasm-ld next to itself (/usr/lib/llvm-14/bin), not necessarily on PATH: link a probe.
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-simd-probe-'));
  try {
    const probe = spawnSync(cc, ['--target=wasm32', '-nostdlib', '-Wl,--no-entry', '-x', 'c', '-', '-o', join(dir, 'p.wasm')], {
      input: '__attribute__((export_name("f"))) int f(void) { return 1; }\n',
      encoding: 'utf8',
    });
    if (probe.status !== 0) return `${cc} cannot link for wasm32 (apt-get install lld-14): ${probe.stderr.trim().split('\n')[0] ?? ''}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return undefined;
}

test('a fresh build of wasm/simd_kernels.c passes the SIMD kernel checks and matches the committed module', async (t) => {
  const missing = missingToolchain();
  if (missing) {
    t.skip(`toolchain not installed: ${missing}`);
    return;
  }
  await useTestBackend('wasm');
  installKernelFixes();
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-simd-'));
  try {
    const build = spawnSync('bash', ['wasm/build-simd.sh', dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(build.status, 0, `wasm/build-simd.sh failed:\n${build.stdout}\n${build.stderr}`);
    const bytes = new Uint8Array(readFileSync(join(dir, 'simd_kernels.wasm')));
    assert.deepEqual(WebAssembly.Module.imports(new WebAssembly.Module(bytes)), [], 'the module must need no imports');

    useSimdModuleBytes(bytes);
    try {
      assert.equal(simdKernelsInfo().source, 'bytes');
      for (const r of selfTestSimdKernels(cpuBackend(), 7, maxRelativeError, SELF_TEST_TOLERANCE)) {
        assert.ok(r.ok, `fresh build, ${r.kernel}: ${r.maxRelError} ${r.error ?? ''}`);
      }
      for (const kernel of ['BatchMatMul', 'Conv2DBackpropFilter', 'Conv2DBackpropInput']) {
        const r = selfTestKernel(kernel);
        assert.ok(r.ok, `fresh build, ${kernel}: ${r.maxRelError} ${r.error ?? ''}`);
      }
    } finally {
      useSimdModuleBytes(undefined);
    }
    assert.equal(simdKernelsInfo().source, 'embedded');

    // The build is deterministic, so with the toolchain the committed module was built with
    // (Debian bookworm clang 14.0.6) a stale committed module shows up here.
    const version = /version (\S+)/.exec(spawnSync(compiler()!, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
    if (version !== '14.0.6') {
      t.diagnostic(`clang ${version}: not comparing with the committed module (built with clang 14.0.6)`);
      return;
    }
    assert.ok(
      Buffer.compare(Buffer.from(bytes), readFileSync('wasm/simd_kernels.wasm')) === 0,
      'wasm/simd_kernels.wasm is stale: run `bash wasm/build-simd.sh` and commit its outputs',
    );
    // The threaded build: same self-checks on its shared memory, with helper threads splitting the kernels.
    const threaded = new Uint8Array(readFileSync(join(dir, 'simd_kernels_threads.wasm')));
    assert.deepEqual(WebAssembly.Module.imports(new WebAssembly.Module(threaded)).map((i) => `${i.module}.${i.name}:${i.kind}`), ['env.memory:memory']);
    const threadsWere = simdThreads();
    setSimdThreads(2);
    useSimdModuleBytes(threaded);
    try {
      const deadline = Date.now() + 20_000;
      while (simdKernelsInfo().threadsRunning < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(simdKernelsInfo().threadsRunning, 2, 'the threaded build runs one helper thread');
      for (const r of selfTestSimdKernels(cpuBackend(), 7, maxRelativeError, SELF_TEST_TOLERANCE)) {
        assert.ok(r.ok, `fresh threaded build, ${r.kernel}: ${r.maxRelError} ${r.error ?? ''}`);
      }
    } finally {
      useSimdModuleBytes(undefined);
      setSimdThreads(threadsWere);
    }
    assert.ok(
      Buffer.compare(Buffer.from(threaded), readFileSync('wasm/simd_kernels_threads.wasm')) === 0,
      'wasm/simd_kernels_threads.wasm is stale: run `bash wasm/build-simd.sh` and commit its outputs',
    );
    assert.equal(
      readFileSync(join(dir, 'simd-module.generated.ts'), 'utf8'),
      readFileSync('src/backend/kernels/simd/simd-module.generated.ts', 'utf8'),
      'src/backend/kernels/simd/simd-module.generated.ts is stale: run `bash wasm/build-simd.sh` and commit its outputs',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
