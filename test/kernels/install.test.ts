import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tf } from '../../src/tf.js';
import { useTestBackend } from '../support/backend.js';
import {
  installKernelFixes,
  kernelFixesInstalled,
  selfTestKernelFixes,
  uninstallKernelFixes,
} from '../../src/backend/kernels/index.js';
import { selfTestKernel } from '../../src/backend/kernels/self_test.js';
import { KernelSelfTestError } from '../../src/errors.js';
import { leaks, NO_LEAK } from './support.js';

const FIXED = [
  'BatchMatMul',
  '_FusedMatMul',
  'MaxPoolGrad',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'Conv2D',
  'FusedConv2D',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'UnsortedSegmentSum',
  'Tile',
  'Slice',
  'Conv3DBackpropInputV2',
  'Conv3DBackpropFilterV2',
];
/** The extra self-test entries where WebAssembly SIMD is available (Node 20 has it). */
const SIMD_SELF_TESTS = [
  'BatchMatMul (without SIMD)',
  'Conv2DBackpropFilter (without SIMD)',
  'Conv2DBackpropInput (without SIMD)',
  'Conv2D (without SIMD)',
  'FusedConv2D (without SIMD)',
  'SIMD im2col [M, K]',
  'SIMD im2col [K, M]',
  'SIMD col2im',
  'SIMD GEMM',
  'SIMD XᵀX',
];
const MISSING_ON_STOCK_WASM = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'UnsortedSegmentSum',
];

describe('installKernelFixes', () => {
  before(async () => {
    await useTestBackend('wasm');
    uninstallKernelFixes();
  });
  after(() => installKernelFixes());

  it('installs every fix and reports them', () => {
    const report = installKernelFixes();
    assert.equal(report.backend, 'wasm');
    assert.deepEqual([...report.installed].sort(), [...FIXED].sort());
    assert.equal(report.selfTest, undefined);
    assert.ok(kernelFixesInstalled());
    for (const name of FIXED) assert.ok(tf.getKernel(name, 'wasm') != null, name);
  });

  it('is idempotent: a second call changes no registered kernel', () => {
    installKernelFixes();
    const registered = FIXED.map((name) => tf.getKernel(name, 'wasm'));
    const report = installKernelFixes();
    assert.deepEqual([...report.installed].sort(), [...FIXED].sort());
    FIXED.forEach((name, i) => assert.equal(tf.getKernel(name, 'wasm'), registered[i], name));
  });

  it('uninstall restores the stock kernels: the kernels missing on stock wasm are missing again', () => {
    uninstallKernelFixes();
    const stockMatMul = tf.getKernel('BatchMatMul', 'wasm');
    installKernelFixes();
    assert.notEqual(tf.getKernel('BatchMatMul', 'wasm'), stockMatMul);
    uninstallKernelFixes();
    assert.equal(kernelFixesInstalled(), false);
    assert.equal(tf.getKernel('BatchMatMul', 'wasm'), stockMatMul);
    for (const name of MISSING_ON_STOCK_WASM) assert.equal(tf.getKernel(name, 'wasm'), undefined, name);
    const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
    const w = tf.zeros([2, 2, 1, 1]) as tf.Tensor4D;
    assert.throws(() => tf.grad((f: tf.Tensor) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, 'same')))(w), /Conv2DBackpropFilter/);
    tf.dispose([x, w]);
    installKernelFixes();
    uninstallKernelFixes();
    uninstallKernelFixes(); // uninstalling twice is harmless
    assert.equal(tf.getKernel('BatchMatMul', 'wasm'), stockMatMul);
  });

  it('with selfTest: true, reports every kernel within tolerance', () => {
    const report = installKernelFixes({ selfTest: true });
    assert.deepEqual(report.selfTest?.map((r) => r.kernel), [...FIXED, ...SIMD_SELF_TESTS]);
    for (const r of report.selfTest ?? []) assert.ok(r.ok && r.maxRelError <= 1e-4, `${r.kernel}: ${r.maxRelError} ${r.error ?? ''}`);
  });

  it('works when installed before the wasm backend initialises (stock setup functions still run)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/kernels/fixtures/install_before_init.ts'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    assert.deepEqual(result, {
      installed: FIXED.length,
      backend: 'wasm',
      product: [[35, 44], [44, 56]],
      filterGrad: [[[[9]], [[9]]], [[[9]], [[9]]]],
      selfTest: true,
    });
  });

  it('is a no-op in a process where tfjs-backend-wasm was never imported', () => {
    const code =
      "const m = await import('./src/backend/kernels/index.ts');" +
      'console.log(JSON.stringify([m.installKernelFixes(), m.kernelFixesInstalled(), m.selfTestKernelFixes()]));';
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lastLine = r.stdout.trim().split('\n').pop() ?? '';
    assert.deepEqual(JSON.parse(lastLine), [{ backend: 'wasm', installed: [] }, false, []]);
  });
});

describe('selfTestKernelFixes', () => {
  before(async () => {
    await useTestBackend('wasm');
    installKernelFixes();
  });

  it('passes for every fix', () => {
    const results = selfTestKernelFixes({ throwOnFailure: true });
    assert.deepEqual(results.map((r) => r.kernel).sort(), [...FIXED, ...SIMD_SELF_TESTS].sort());
    for (const r of results) assert.ok(r.ok, `${r.kernel}: ${r.maxRelError}`);
  });

  it('leaves no tensors and no backend data behind', async () => {
    selfTestKernelFixes(); // warm-up (first calls may allocate kernel caches)
    assert.deepEqual(await leaks(() => selfTestKernelFixes()), NO_LEAK);
  });

  it('catches the stock MaxPoolGrad defect (windows whose maximum is ≤ 0)', () => {
    uninstallKernelFixes();
    try {
      const stock = tf.getKernel('MaxPoolGrad', 'wasm')!.kernelFunc;
      const r = selfTestKernel('MaxPoolGrad', stock);
      assert.equal(r.ok, false);
      assert.ok(r.maxRelError > 0.1, String(r.maxRelError));
    } finally {
      installKernelFixes();
    }
  });

  it('reports a kernel that throws as a failure with its message', () => {
    const missing = selfTestKernel('UnsortedSegmentSum', () => {
      throw new Error("Kernel 'UnsortedSegmentSum' not registered for backend 'wasm'");
    });
    assert.equal(missing.ok, false);
    assert.equal(missing.maxRelError, Number.POSITIVE_INFINITY);
    assert.match(missing.error ?? '', /not registered/);
  });

  it('tests the registered kernels: a stock kernel put back in place of a fix fails, with KernelSelfTestError on request', () => {
    uninstallKernelFixes();
    const stockMaxPoolGrad = tf.getKernel('MaxPoolGrad', 'wasm')!;
    installKernelFixes();
    tf.unregisterKernel('MaxPoolGrad', 'wasm');
    tf.registerKernel(stockMaxPoolGrad);
    try {
      const results = selfTestKernelFixes();
      assert.deepEqual(results.filter((r) => !r.ok).map((r) => r.kernel), ['MaxPoolGrad']);
      assert.throws(
        () => selfTestKernelFixes({ throwOnFailure: true }),
        (e: unknown) => e instanceof KernelSelfTestError && /MaxPoolGrad/.test(e.message) && !/BatchMatMul/.test(e.message),
      );
      assert.throws(() => installKernelFixes({ selfTest: true }), KernelSelfTestError);
    } finally {
      tf.unregisterKernel('MaxPoolGrad', 'wasm');
      tf.registerKernel(stockMaxPoolGrad);
      uninstallKernelFixes(); // leaves the foreign registration alone ...
      assert.equal(tf.getKernel('MaxPoolGrad', 'wasm'), stockMaxPoolGrad);
      installKernelFixes(); // ... so the fix can be installed again
    }
  });
});
