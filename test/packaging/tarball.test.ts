/**
 * The package as users get it: `npm pack`, installed from the tarball into a fresh project, then
 * used from a Node ES module, CommonJS, TypeScript (`tsc --strict`), the installed `nngeometry`
 * binary and an esbuild browser bundle in headless Chromium. Every use computes the Fisher of a
 * softmax regression whose trace has a closed form (support.ts). The browser part skips without
 * /usr/bin/chromium.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closedFormTrace, FIXTURE_JS, packAndInstall, ROOT, run, tool, type InstalledPackage } from './support.js';
import { CHROMIUM, launchChromium, launchChromiumWebGL } from '../browser/support.js';

const noChromium = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does) to run the browser bundle test`;
/** float32 accumulation on a 15-parameter model: far below this; a wrong variant or scaling is ≥ 10%. */
const RTOL = 1e-5;
let pkg: InstalledPackage;

before(() => {
  pkg = packAndInstall();
});
after(() => pkg?.cleanup());

/** Asserts |actual − expected| ≤ rtol·|expected|; returns the relative error. */
function near(actual: number, expected: number, rtol: number, what: string): number {
  const error = Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(error <= rtol, `${what}: ${actual} vs ${expected} (relative error ${error}, rtol ${rtol})`);
  return error;
}

test('the tarball ships LICENSE, the docs the README links to, the build, and no source maps, start-only modules or second wasm copies', () => {
  const files = new Set(pkg.files);
  for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/require.cjs', 'dist/kernels.js', 'dist/cli/main.js']) {
    assert.ok(files.has(f), `${f} is shipped`);
  }
  assert.deepEqual(pkg.files.filter((f) => f.endsWith('.map')), [], 'no source maps (they would point at src/, which is not shipped)');
  assert.deepEqual(pkg.files.filter((f) => f.endsWith('.wasm') || f.endsWith('.generated.d.ts')), [], 'the WebAssembly modules ship once, embedded in the JS');
  assert.deepEqual(pkg.files.filter((f) => /cli\/(start|bundled)\./.test(f)), [], 'npm start needs data/, which is not shipped');
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const relative = [...readme.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((href) => !/^[a-z]+:/.test(href));
  assert.ok(relative.length > 0);
  for (const href of relative) assert.ok(files.has(href), `README links to ${href}, which the package must ship`);
  const manifest = JSON.parse(readFileSync(join(pkg.project, 'node_modules', 'nngeometry', 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.ok(manifest.repository && manifest.homepage && Array.isArray(manifest.keywords), 'repository, homepage and keywords are set');
});

test('Node ES module: FIM in three representations equals the closed-form trace', () => {
  writeFileSync(join(pkg.project, 'esm.mjs'), `${FIXTURE_JS}
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, PMatDense, PMatDiag, PMatImplicit, saveModel } from 'nngeometry';
await tf.setBackend('wasm');
const model = buildModel(tf);
const loader = [{ xs: tf.tensor2d(X.slice(0, 3 * IN), [3, IN]) }, { xs: tf.tensor2d(X.slice(3 * IN), [3, IN]) }];
const traces = {};
for (const [name, representation] of Object.entries({ PMatDense, PMatDiag, PMatImplicit })) {
  const F = await FIM({ model, loader, representation });
  traces[name] = await F.trace();
  F.dispose();
}
await saveModel(model, 'model');
writeData();
console.log(JSON.stringify({ backend: tf.getBackend(), traces }));
import { writeFileSync } from 'node:fs';
function writeData() {
  writeFileSync('data.json', JSON.stringify(Array.from({ length: N }, (_, i) => X.slice(i * IN, (i + 1) * IN))));
}
`);
  const out = JSON.parse(run(process.execPath, ['esm.mjs'], pkg.project)) as { backend: string; traces: Record<string, number> };
  assert.equal(out.backend, 'wasm');
  const expected = closedFormTrace();
  for (const [name, trace] of Object.entries(out.traces)) near(trace, expected, RTOL, name);
});

test('CommonJS: require("nngeometry") gives the library (same tfjs instance) and computes the same trace', () => {
  writeFileSync(join(pkg.project, 'cjs.cjs'), `${FIXTURE_JS}
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');
const { FIM, PMatDense } = require('nngeometry');
(async () => {
  await tf.setBackend('wasm');
  const model = buildModel(tf);
  const F = await FIM({ model, loader: [{ xs: tf.tensor2d(X, [N, IN]) }], representation: PMatDense });
  console.log(JSON.stringify({ trace: F.trace() }));
})();
`);
  const r = JSON.parse(run(process.execPath, ['cjs.cjs'], pkg.project)) as { trace: number };
  near(r.trace, closedFormTrace(), RTOL, 'PMatDense from CommonJS');
});

test('TypeScript --strict type-checks a consumer against the installed declarations (one result type for all representations)', () => {
  writeFileSync(join(pkg.project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], types: [] },
    files: ['consumer.ts'],
  }));
  writeFileSync(join(pkg.project, 'consumer.ts'), `
import * as tf from '@tensorflow/tfjs';
import { FIM, PMatDense, PMatDiag, PMatImplicit, PMatKFAC, PVector, type Representation, type AnyPMat } from 'nngeometry';
import { installKernelFixes } from 'nngeometry/kernels';
export async function traces(model: tf.LayersModel, xs: tf.Tensor): Promise<number[]> {
  installKernelFixes();
  const dense: PMatDense = await FIM({ model, loader: [{ xs }], representation: PMatDense });
  const diagonal: number = (await FIM({ model, loader: [{ xs }], representation: PMatDiag })).trace();
  const out: number[] = [dense.trace(), diagonal];
  const either = xs.size > 100 ? PMatDiag : PMatKFAC;
  const one: PMatDiag | PMatKFAC = await FIM({ model, loader: [{ xs }], representation: either });
  out.push(one.trace());
  const reps: Array<Representation<AnyPMat>> = [PMatDense, PMatKFAC, PMatImplicit];
  for (const representation of reps) {
    const F = await FIM({ model, loader: [{ xs }], representation });
    out.push(await F.trace());
    const v = PVector.fromModel(model);
    out.push(await F.vTMv(v));
    F.dispose();
  }
  return out;
}
`);
  run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], pkg.project);
});

test('the installed binary: --version, info --model on a saveModel folder, fim on JSON data equals the closed form', () => {
  const bin = join(pkg.project, 'node_modules', '.bin', 'nngeometry');
  if (!existsSync(join(pkg.project, 'model', 'model.json'))) run(process.execPath, ['esm.mjs'], pkg.project);
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
  assert.equal(run(bin, ['--version'], pkg.project).trim(), version);
  run(bin, ['info', '--model', 'model', '--json', 'info.json'], pkg.project);
  const info = JSON.parse(readFileSync(join(pkg.project, 'info.json'), 'utf8')) as { parameters?: number; d?: number };
  assert.equal(info.parameters ?? info.d, 15);
  run(bin, ['fim', '--model', 'model', '--data', 'data.json', '--representation', 'dense', '--json', 'fim.json', '--quiet'], pkg.project);
  const fim = JSON.parse(readFileSync(join(pkg.project, 'fim.json'), 'utf8')) as { trace: number };
  near(fim.trace, closedFormTrace(), RTOL, 'nngeometry fim --representation dense');
});

test('esbuild bundles the browser build with no node: modules, and the bundle computes the FIM in Chromium on wasm and on webgl (SwiftShader)', { skip: noChromium }, async (t) => {
  writeFileSync(join(pkg.project, 'app.js'), `${FIXTURE_JS}
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { FIM, PMatDense, PMatImplicit } from 'nngeometry';
const backend = new URLSearchParams(location.search).get('backend') ?? 'wasm';
setWasmPaths('/wasm/');
try {
  if (!(await tf.setBackend(backend))) throw new Error('backend ' + backend + ' did not start');
  const model = buildModel(tf);
  const loader = [{ xs: tf.tensor2d(X, [N, IN]) }];
  const traces = {};
  for (const [name, representation] of Object.entries({ PMatDense, PMatImplicit })) {
    const F = await FIM({ model, loader, representation });
    traces[name] = await F.trace();
    F.dispose();
  }
  window.result = { backend: tf.getBackend(), traces };
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
`);
  mkdirSync(join(pkg.project, 'site'), { recursive: true });
  // No --external: the browser condition of the package's exports leaves no node: import to resolve.
  run(tool('esbuild'), ['app.js', '--bundle', '--format=esm', '--platform=browser', '--target=es2022', '--outfile=site/app.js', '--log-level=error'], pkg.project);
  const bundle = readFileSync(join(pkg.project, 'site', 'app.js'), 'utf8');
  assert.doesNotMatch(bundle, /from\s*["']node:|require\(["']node:/, 'no static node: import in the bundle');
  const wasmDir = join(pkg.project, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  // wasm computes in float32 like Node; webgl (SwiftShader) in float32 textures with GPU-style
  // reductions: a looser bound, still 100× below what a wrong variant or scaling would give.
  for (const [backend, launch, rtol] of [['wasm', launchChromium, RTOL], ['webgl', launchChromiumWebGL, 1e-3]] as const) {
    const browser = await launch();
    try {
      const page = await browser.newPage();
      await page.route('http://nngeometry.test/**', async (route) => {
        const path = new URL(route.request().url()).pathname;
        if (path === '/' || path === '/index.html') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><script type="module" src="/app.js"></script>' });
        if (path === '/app.js') return route.fulfill({ contentType: 'text/javascript', body: bundle });
        const file = join(wasmDir, path.replace(/^\/wasm\//, ''));
        if (path.startsWith('/wasm/') && path.endsWith('.wasm') && existsSync(file)) return route.fulfill({ contentType: 'application/wasm', body: readFileSync(file) });
        return route.fulfill({ status: 404, body: 'not found' });
      });
      await page.goto(`http://nngeometry.test/?backend=${backend}`);
      await page.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 60_000 });
      const result = (await page.evaluate(() => (window as unknown as { result: unknown }).result)) as { error?: string; backend: string; traces: Record<string, number> };
      assert.equal(result.error, undefined, result.error);
      assert.equal(result.backend, backend);
      for (const [name, trace] of Object.entries(result.traces)) {
        t.diagnostic(`${backend} ${name}: relative error ${near(trace, closedFormTrace(), rtol, `${name} in Chromium on ${backend}`).toExponential(2)}`);
      }
    } finally {
      await browser.close();
    }
  }
});
