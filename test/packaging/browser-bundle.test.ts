/**
 * The library's entry points bundle for the browser with esbuild as users run it (no
 * `--external:node:*`): no module reachable from src/index.ts or src/kernels.ts imports a Node
 * built-in, statically or through a literal dynamic import (platform/node-builtin.ts is the way
 * to reach one). A fast guard that runs without packing; tarball.test.ts checks the installed
 * package in Chromium.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT } from './support.js';

for (const entry of ['src/index.ts', 'src/kernels.ts']) {
  test(`${entry} bundles for the browser with no node: module to resolve`, async () => {
    const result = await build({
      entryPoints: [join(ROOT, entry)],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      logLevel: 'silent',
      // The peers are the user's to bundle; only the library's own graph is under test.
      external: ['@tensorflow/*'],
    }).catch((e: { errors?: Array<{ text: string; location?: { file: string } | null }> }) => e);
    const errors = 'errors' in result && result.errors ? result.errors : [];
    assert.deepEqual(errors.map((e) => `${e.location?.file}: ${e.text}`), []);
    const code = 'outputFiles' in result && result.outputFiles ? result.outputFiles[0]!.text : '';
    assert.ok(code.length > 1000);
    assert.doesNotMatch(code, /from\s*["']node:|import\(\s*["']node:/);
  });
}
