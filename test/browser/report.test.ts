/**
 * The HTML report in headless Chromium: every heatmap is drawn (its PNG decodes to exactly the
 * colours of the matrix's correlations), the spectrum and trace charts have content, and the
 * page loads nothing from outside. Skips without /usr/bin/chromium.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport } from '../../src/report/html.js';
import { correlationMatrix, heatmapRGBA } from '../../src/report/heatmap.js';
import { pngDataUri } from '../../src/report/png.js';
import { CHROMIUM, launchChromium } from './support.js';
import { CNN, IMAGES, runCli } from '../cli/support.js';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does) to run the browser tests`;

/** A d×d PSD matrix with two correlated blocks: B Bᵀ with B block-structured. */
function blockMatrix(d: number, split: number): Float32Array {
  const m = new Float32Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const same = i < split === j < split;
      m[i * d + j] = i === j ? 1 + (i % 7) / 7 : same ? 0.5 * Math.cos(i + j) : 0.05 * Math.sin(i * j);
    }
  }
  return m;
}

test('report: the heatmaps, spectrum and per-layer trace render in Chromium, with the expected pixels', { skip }, async () => {
  const d = 48;
  const matrices = [blockMatrix(d, 16), blockMatrix(d, 30)];
  const html = buildReport({
    title: 'test report',
    intro: ['synthetic matrices'],
    table: { header: ['representation', 'trace'], rows: [['A', '1'], ['B', '2']] },
    notes: ['a note'],
    heatmaps: matrices.map((m, k) => ({ name: `M${k}`, caption: 'c', png: pngDataUri(heatmapRGBA(correlationMatrix(m, d), d), d, d), size: d, layers: [{ id: 'a', offset: 0, numel: 16 }, { id: 'b', offset: 16, numel: d - 16 }] })),
    subnetwork: 'sub-network',
    spectra: [{ name: 'A', values: Array.from({ length: d }, (_, i) => 10 ** (-i / 8)) }, { name: 'B', values: Array.from({ length: d }, (_, i) => 2 * 10 ** (-i / 10)) }],
    layerTraces: { layers: ['a', 'b'], series: [{ name: 'A', traces: [1, 10] }, { name: 'B', traces: [2, 20] }] },
    footer: 'footer',
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('data:')) requests.push(r.url());
    });
    await page.setContent(html, { waitUntil: 'load' });
    assert.deepEqual(requests, [], 'no request leaves the page');
    const maps = await page.evaluate(async () => {
      const out: Array<{ width: number; height: number; pixels: number[] }> = [];
      for (const svg of Array.from(document.querySelectorAll('svg.heatmap'))) {
        const box = svg.getBoundingClientRect();
        const img = new Image();
        img.src = svg.querySelector('image')!.getAttribute('href')!;
        await img.decode();
        const c = document.createElement('canvas');
        [c.width, c.height] = [img.naturalWidth, img.naturalHeight];
        const ctx = c.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        out.push({ width: box.width, height: box.height, pixels: Array.from(ctx.getImageData(0, 0, c.width, c.height).data) });
      }
      return out;
    });
    assert.equal(maps.length, 2);
    maps.forEach((m, k) => {
      assert.ok(m.width >= 200 && m.height >= 200, `heatmap ${k} is laid out (${m.width}×${m.height})`);
      assert.deepEqual(m.pixels, Array.from(heatmapRGBA(correlationMatrix(matrices[k]!, d), d)), `heatmap ${k} pixels`);
    });
    const polylines = await page.$$eval('svg.chart polyline', (ls) => ls.map((l) => l.getAttribute('points')!.split(' ').length));
    assert.deepEqual(polylines, [d, d], 'one spectrum line per representation, every eigenvalue drawn');
    assert.equal(await page.$$eval('svg[aria-label="per-layer trace"] rect', (rs) => rs.filter((r) => Number(r.getAttribute('width')) > 0).length), 4 + 2, 'four trace bars and two legend swatches');
    const shot = await page.screenshot({ fullPage: true });
    assert.ok(shot.length > 20_000, 'a non-trivial screenshot');
  } finally {
    await browser.close();
  }
});

test('report: a real `nngeometry fim --report` shows non-empty heatmaps for the representation and the dense reference', { skip }, async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'nngeometry-report-')), 'report.html');
  const r = await runCli(['fim', '--model', CNN, '--data', IMAGES, '--count', '100', '--representation', 'ekfac', '--report', out, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.setContent(readFileSync(out, 'utf8'), { waitUntil: 'load' });
    const maps = await page.evaluate(async () => {
      const out: Array<{ name: string; size: number; colours: number }> = [];
      for (const svg of Array.from(document.querySelectorAll('svg.heatmap'))) {
        const img = new Image();
        img.src = svg.querySelector('image')!.getAttribute('href')!;
        await img.decode();
        const c = document.createElement('canvas');
        [c.width, c.height] = [img.naturalWidth, img.naturalHeight];
        c.getContext('2d')!.drawImage(img, 0, 0);
        const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const colours = new Set<number>();
        for (let i = 0; i < px.length; i += 4) colours.add((px[i]! << 16) | (px[i + 1]! << 8) | px[i + 2]!);
        out.push({ name: svg.getAttribute('data-representation')!, size: c.width, colours: colours.size });
      }
      return out;
    });
    assert.deepEqual(maps.map((m) => [m.name, m.size]), [['PMatDense', 336], ['PMatEKFAC', 336]]);
    for (const m of maps) assert.ok(m.colours > 50, `${m.name}: ${m.colours} distinct colours`);
    assert.ok((await page.screenshot({ fullPage: true })).length > 50_000);
  } finally {
    await browser.close();
  }
});
