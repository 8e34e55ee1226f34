/**
 * Switching implementations: TypeScript until initLinalg resolves; initLinalg is idempotent
 * and can be forced to TypeScript; 'eigen-wasm' cannot be selected before a module is loaded;
 * a module that is not a build of eigen_linalg.cpp is rejected with the missing export named.
 * Runs in its own process (node --test isolates files), so the initial state is observable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../src/errors.js';
import { eighSym, initLinalg, linalgInfo, useLinalgImplementation } from '../../src/linalg/index.js';

test('before initLinalg the TypeScript implementation is active and eigen-wasm cannot be selected', () => {
  assert.deepEqual(linalgInfo(), { implementation: 'typescript' });
  assert.throws(() => useLinalgImplementation('eigen-wasm'), InvalidArgumentError);
  assert.throws(() => useLinalgImplementation('gpu' as 'typescript'), /argument 'impl' must be 'eigen-wasm' or 'typescript', received gpu/);
  assert.deepEqual([...eighSym(new Float64Array([2, 1, 1, 2]), 2).values].map(Math.round), [1, 3]);
});

test('initLinalg rejects bytes that are not a build of eigen_linalg.cpp', async () => {
  await assert.rejects(initLinalg({ wasm: new Uint8Array([1, 2, 3]) }), WebAssembly.CompileError);
  // The smallest valid module: magic and version, no exports at all.
  const empty = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  await assert.rejects(initLinalg({ wasm: empty }), /exports no 'memory'/);
  assert.equal(linalgInfo().implementation, 'typescript');
});

test('initLinalg loads the embedded module once and can be called many times', async () => {
  // CI may point NNGEOMETRY_LINALG_WASM at a fresh build, which then replaces the embedded one.
  const wasmSource = process.env.NNGEOMETRY_LINALG_WASM ? 'environment' : 'embedded';
  const infos = await Promise.all([initLinalg(), initLinalg(), initLinalg({ wasm: true })]);
  for (const info of infos) assert.deepEqual(info, { implementation: 'eigen-wasm', wasmSource });
  assert.deepEqual(linalgInfo(), { implementation: 'eigen-wasm', wasmSource });
});

test('initLinalg({ wasm: false }) and useLinalgImplementation switch back and forth', async () => {
  assert.equal((await initLinalg({ wasm: false })).implementation, 'typescript');
  assert.equal(linalgInfo().implementation, 'typescript');
  useLinalgImplementation('eigen-wasm');
  assert.equal(linalgInfo().implementation, 'eigen-wasm');
  useLinalgImplementation('typescript');
  assert.equal((await initLinalg()).implementation, 'eigen-wasm');
});
