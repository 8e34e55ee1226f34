/**
 * The report's charts read together: a representation has one colour in the spectrum and in the
 * per-layer bars whatever the order of the series, coinciding curves stay distinguishable, no
 * label is cut off, and the heatmap legend says what the dashed lines separate (layers of a FIM,
 * outputs of an NTK). test/browser/report.test.ts measures the rendered label boxes in Chromium.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layerTraceSvg, seriesStyle, spectrumSvg, textWidth } from '../../src/report/charts.js';
import { buildReport } from '../../src/report/html.js';
import { main } from '../../src/cli/main.js';
import { tf } from '../../src/tf.js';
import { saveModel } from '../../src/index.js';

const values = Array.from({ length: 12 }, (_, i) => 10 ** (-i / 3));
/** stroke (or fill) colour of the element whose <title> starts with `name`. */
function colourOf(svg: string, name: string): string | undefined {
  const m = new RegExp(`(?:stroke|fill)="(#[0-9a-f]{6})"[^>]*>(?:<title>${name}[,<])`).exec(svg);
  return m?.[1];
}

test('a representation keeps its colour across the spectrum and the per-layer chart, whatever the series order', () => {
  const spectrum = spectrumSvg([{ name: 'PMatDense', values }, { name: 'PMatKFAC', values: values.map((v) => v / 2) }, { name: 'PMatDiag', values }]);
  const bars = layerTraceSvg(['a', 'b'], [{ name: 'PMatDiag', traces: [1, 2] }, { name: 'PMatKFAC', traces: [3, 4] }, { name: 'PMatDense', traces: [5, 6] }]);
  for (const name of ['PMatDense', 'PMatKFAC', 'PMatDiag']) {
    const colour = seriesStyle(name, 0).colour;
    assert.equal(colourOf(spectrum, name), colour, `${name} in the spectrum`);
    assert.equal(colourOf(bars, name), colour, `${name} in the bars`);
  }
  const all = ['PMatDense', 'PMatBlockDiag', 'PMatDiag', 'PMatLowRank', 'PMatKFAC', 'PMatEKFAC', 'PMatQuasiDiag', 'PMatEKFACBlockDiag', 'PMatImplicit'];
  assert.equal(new Set(all.map((n, i) => seriesStyle(n, i).colour)).size, all.length, 'every representation has its own colour');
});

test('identical curves stay distinguishable: the earlier is drawn wider, each with its own dash pattern', () => {
  const svg = spectrumSvg([{ name: 'PMatDense', values }, { name: 'PMatLowRank', values }]);
  const lines = [...svg.matchAll(/<polyline [^>]*stroke-width="([\d.]+)"(?: stroke-dasharray="([^"]*)")?[^>]*points="([^"]*)"/g)].map((m) => ({ width: Number(m[1]), dash: m[2] ?? '', points: m[3] }));
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.points, lines[1]!.points, 'same curve');
  assert.ok(lines[0]!.width >= lines[1]!.width + 1, `the curve underneath is wider: ${lines[0]!.width} vs ${lines[1]!.width}`);
  assert.notEqual(lines[0]!.dash, lines[1]!.dash);
  assert.match(svg, /<line [^>]*stroke-dasharray="[^"]+"\/><text[^>]*>PMatLowRank</, 'the legend shows the dash pattern');
});

test('long layer ids and representation names fit inside the chart (label column and legend grow)', () => {
  const long = 'sequential_3/separable_conv2d_transpose_with_a_long_name_17';
  const name = 'PMatMixed(dense: PMatEKFAC, default: PMatBlockDiag)';
  const svg = layerTraceSvg([long, 'b'], [{ name, traces: [1, 2] }, { name: 'PMatDiag', traces: [3, 4] }]);
  const width = Number(/viewBox="0 0 (\d+)/.exec(svg)![1]);
  const label = /<text x="([\d.]+)"[^>]*text-anchor="end">([^<]*)</.exec(svg)!;
  assert.equal(label[2], long);
  assert.ok(Number(label[1]) - textWidth(long, 12) >= 0, 'the layer label starts inside the chart');
  for (const m of svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" font-size="12">([^<]*)</g)) {
    assert.ok(Number(m[1]) + textWidth(m[2]!, 12) <= width, `legend '${m[2]}' ends inside the chart`);
  }
  const spectrum = spectrumSvg([{ name, values }]);
  const sw = Number(/viewBox="0 0 (\d+)/.exec(spectrum)![1]);
  const legend = /<text x="([\d.]+)" y="[\d.]+" font-size="12">PMatMixed/.exec(spectrum)!;
  assert.ok(Number(legend[1]) + textWidth(name, 12) <= sw);
});

test("the heatmap legend says what the dashed lines separate: layers of a FIM, outputs of the CLI's NTK report", async () => {
  const figure = { name: 'K', caption: 'c', png: 'data:image/png;base64,', size: 4, layers: [{ id: 'a', offset: 0, numel: 2 }, { id: 'b', offset: 2, numel: 2 }] };
  const base = { title: 't', intro: [], table: { header: ['a'], rows: [] }, notes: [], heatmaps: [figure], subnetwork: 's.', spectra: [], layerTraces: null, footer: 'f' };
  assert.match(buildReport(base), /Dashed lines separate layers\./);
  assert.match(buildReport({ ...base, blocks: 'outputs' }), /Dashed lines separate outputs\./);
  assert.doesNotMatch(buildReport({ ...base, heatmaps: [{ ...figure, layers: [figure.layers[0]!] }] }), /Dashed lines/, 'no lines, no sentence');

  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-ntk-report-'));
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) })] });
  const log = console.log;
  const error = console.error;
  try {
    await saveModel(model, join(dir, 'm'));
    writeFileSync(join(dir, 'x.json'), JSON.stringify([[1, 2, 3], [0, 1, 0], [2, -1, 1]]));
    console.log = () => undefined;
    console.error = () => undefined;
    const code = await main(['ntk', '--model', join(dir, 'm'), '--data', join(dir, 'x.json'), '--backend', 'cpu', '--quiet', '--report', join(dir, 'ntk.html')]);
    assert.equal(code, 0);
    const html = readFileSync(join(dir, 'ntk.html'), 'utf8');
    assert.match(html, /Dashed lines separate outputs\./);
    assert.doesNotMatch(html, /separate layers/);
  } finally {
    console.log = log;
    console.error = error;
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
