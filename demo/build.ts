/**
 * `npm run demo:build`: bundles demo/main.ts with esbuild into demo/dist/demo.js and copies what
 * the page fetches — index.html, the bundled models and images, tfjs-backend-wasm's .wasm
 * files — so that demo/dist is a static site (serve it with `npm run demo` or any web server).
 */
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
/** Where the static site is written. */
export const DIST = join(here, 'dist');

/** Builds the demo into `out` (default demo/dist); returns the output folder. */
export async function buildDemo(out = DIST): Promise<string> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(here, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    outfile: join(out, 'demo.js'),
    logLevel: 'warning',
    // Node-only paths of the library (an optional wasm file from the environment) are behind
    // computed dynamic imports; these modules are never reached in the browser.
    external: ['node:*'],
  });
  cpSync(join(here, 'index.html'), join(out, 'index.html'));
  cpSync(join(root, 'data', 'models'), join(out, 'data', 'models'), { recursive: true });
  cpSync(join(root, 'data', 'fashion-mnist'), join(out, 'data', 'fashion-mnist'), { recursive: true });
  const wasmDir = join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm')), '..');
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
    cpSync(join(wasmDir, 'dist', f), join(out, 'tfjs-wasm', f));
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildDemo();
  console.log(`built the demo into ${out}`);
}
