/**
 * The report's building blocks: PNG encoding (lossless, valid chunks), correlations, the
 * colour map, the charts, and a self-contained document.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { encodePng } from '../../src/report/png.js';
import { correlationMatrix, heatmapRGBA, viridis } from '../../src/report/heatmap.js';
import { layerTraceSvg, spectrumSvg } from '../../src/report/charts.js';
import { buildReport } from '../../src/report/html.js';

test('encodePng: the IDAT stream inflates back to the pixels, each row behind filter byte 0', () => {
  const [w, h] = [5, 3];
  const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 37) % 256);
  const png = encodePng(rgba, w, h);
  assert.deepEqual(Array.from(png.subarray(0, 8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(png.buffer, png.byteOffset);
  assert.equal(view.getUint32(16), w);
  assert.equal(view.getUint32(20), h);
  const idatLength = view.getUint32(33);
  assert.equal(String.fromCharCode(...png.subarray(37, 41)), 'IDAT');
  const raw = inflateSync(png.subarray(41, 41 + idatLength));
  for (let y = 0; y < h; y++) {
    assert.equal(raw[y * (1 + 4 * w)], 0);
    assert.deepEqual(Array.from(raw.subarray(y * (1 + 4 * w) + 1, (y + 1) * (1 + 4 * w))), Array.from(rgba.subarray(y * 4 * w, (y + 1) * 4 * w)));
  }
  assert.throws(() => encodePng(rgba, w + 1, h), /expected/);
});

test('correlationMatrix: |M_ij|/√(M_ii M_jj), ones on the diagonal, zero rows for zero diagonals', () => {
  const m = [4, -2, 0, -2, 9, 0, 0, 0, 0];
  const c = correlationMatrix(m, 3);
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-7, `${a} vs ${b}`);
  [c[0]!, c[4]!].forEach((x) => close(x, 1));
  close(c[1]!, 2 / 6);
  close(c[3]!, 2 / 6);
  assert.deepEqual(Array.from(c.subarray(6)), [0, 0, 0]);
});

test('viridis: the ends of the map, clamping, and one opaque pixel per entry', () => {
  assert.deepEqual(viridis(0), [68, 1, 84]);
  assert.deepEqual(viridis(1), [253, 231, 37]);
  assert.deepEqual(viridis(-3), viridis(0));
  assert.deepEqual(viridis(Number.NaN), viridis(0));
  const px = heatmapRGBA([0, 1, 1, 0], 2);
  assert.deepEqual(Array.from(px), [68, 1, 84, 255, 253, 231, 37, 255, 253, 231, 37, 255, 68, 1, 84, 255]);
});

test('charts: one spectrum line per series with the positive values above the cut, bars per layer and series', () => {
  const svg = spectrumSvg([{ name: 'a<b', values: [10, 1, 0.1, 0] }, { name: 'c', values: [5, 5e-12] }], { dynamicRange: 1e-10 });
  const lines = [...svg.matchAll(/points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
  assert.deepEqual(lines, [3, 1]);
  assert.match(svg, /a&lt;b/);
  const bars = layerTraceSvg(['l1', 'l2'], [{ name: 'x', traces: [1, 100] }, { name: 'y', traces: [2, 0] }]);
  assert.equal((bars.match(/<rect x="110"/g) ?? []).length, 4);
  assert.match(bars, /width="0\.0"/, 'a zero trace has an empty bar');
});

test('buildReport: one self-contained document, escaped text, optional sections', () => {
  const html = buildReport({
    title: 'T & <x>', intro: ['i'], table: { header: ['a', 'b'], rows: [['r', '1']] }, notes: [],
    heatmaps: [], subnetwork: 's', spectra: [], layerTraces: null, footer: 'f',
  });
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /<title>T &amp; &lt;x&gt;<\/title>/);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
  assert.doesNotMatch(html, /<script/);
  assert.doesNotMatch(html, /Correlation heatmaps|Eigenvalue spectrum|Per-layer trace/, 'empty sections are left out');
});
