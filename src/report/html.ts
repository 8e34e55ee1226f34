/**
 * The self-contained HTML report written by `npm start` and `nngeometry … --report`: a summary
 * table, correlation heatmaps of each representation on a small sub-network, eigenvalue
 * spectra and per-layer traces. No external resource: images are `data:` URIs, charts inline
 * SVG, styles inline. Pure string building.
 */
import { esc, layerTraceSvg, spectrumSvg } from './charts.js';

export interface HeatmapFigure {
  /** Representation name, e.g. 'PMatKFAC'. */
  name: string;
  /** One line under the picture (distance to the reference, ...). */
  caption: string;
  /** PNG `data:` URI, one pixel per matrix entry. */
  png: string;
  /** Matrix size d (pixels per side). */
  size: number;
  /** Where each layer of the sub-network starts (for the separating lines). */
  layers: Array<{ id: string; offset: number; numel: number }>;
}

/** What the dashed lines of the heatmaps separate: parameter blocks of layers (a FIM) or output blocks (an NTK). */
export type HeatmapBlocks = 'layers' | 'outputs';

export interface ReportData {
  title: string;
  /** Lines under the title: model, data, settings. */
  intro: string[];
  table: { header: string[]; rows: string[][] };
  /** Remarks under the table (skipped representations and why). */
  notes: string[];
  heatmaps: HeatmapFigure[];
  /** What the heatmaps and spectra are computed on. */
  subnetwork: string;
  /** What the heatmaps' `layers` blocks are (default 'layers'); an NTK's are its outputs. */
  blocks?: HeatmapBlocks;
  spectra: Array<{ name: string; values: ArrayLike<number> }>;
  layerTraces: { layers: string[]; series: Array<{ name: string; traces: number[] }> } | null;
  /** Further sections (HTML, e.g. report/spectral.ts's densitySection), placed before the footer. */
  sections?: string[];
  footer: string;
}

/** Drawn size: at least 300 px, an integer number of pixels per entry below that. */
function displaySize(d: number): number {
  return d >= 300 ? d : Math.ceil(300 / d) * d;
}

function heatmapSvg(h: HeatmapFigure): string {
  const DISPLAY = displaySize(h.size);
  const s = DISPLAY / h.size;
  const lines = h.layers.slice(1).map((l) => {
    const p = (l.offset * s).toFixed(1);
    return `<line x1="${p}" x2="${p}" y1="0" y2="${DISPLAY}" stroke="#fff" stroke-width="0.8" stroke-dasharray="3 2"/><line y1="${p}" y2="${p}" x1="0" x2="${DISPLAY}" stroke="#fff" stroke-width="0.8" stroke-dasharray="3 2"/>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="${DISPLAY}" height="${DISPLAY}" viewBox="0 0 ${DISPLAY} ${DISPLAY}" data-representation="${esc(h.name)}">` +
    `<image width="${DISPLAY}" height="${DISPLAY}" preserveAspectRatio="none" style="image-rendering:pixelated" href="${h.png}"/>${lines.join('')}</svg>`;
}

function colourBar(): string {
  const stops = Array.from({ length: 9 }, (_, i) => i / 8);
  const grad = ['#440154', '#472c7a', '#3b518b', '#2c718e', '#21908d', '#27ad81', '#5cc863', '#aadc32', '#fde725'];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="260" height="34" class="colourbar"><defs><linearGradient id="viridis">${stops.map((t, i) => `<stop offset="${t}" stop-color="${grad[i]}"/>`).join('')}</linearGradient></defs>` +
    `<rect x="10" y="2" width="240" height="12" fill="url(#viridis)"/><text x="10" y="30" font-size="11">0</text><text x="250" y="30" font-size="11" text-anchor="end">1</text><text x="130" y="30" font-size="11" text-anchor="middle">|M_ij| / √(M_ii M_jj)</text></svg>`;
}

/** The whole report as one HTML document. */
export function buildReport(r: ReportData): string {
  const table = `<table><thead><tr>${r.table.header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${r.table.rows
    .map((row) => `<tr>${row.map((c, i) => (i === 0 ? `<th scope="row">${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`)
    .join('')}</tbody></table>`;
  const figures = r.heatmaps
    .map((h) => `<figure>${heatmapSvg(h)}<figcaption><strong>${esc(h.name)}</strong><br>${esc(h.caption)}</figcaption></figure>`)
    .join('');
  const heatmapSection = r.heatmaps.length
    ? `<h2>Correlation heatmaps</h2>\n<p>${esc(r.subnetwork)}${r.heatmaps.some((h) => h.layers.length > 1) ? ` Dashed lines separate ${r.blocks ?? 'layers'}.` : ''}</p>\n${colourBar()}\n<div class="grid">${figures}</div>`
    : '';
  const spectrumSection = r.spectra.length
    ? `<h2>Eigenvalue spectrum</h2>\n<p>Eigenvalues of each matrix above, largest first.</p>\n${spectrumSvg(r.spectra)}`
    : '';
  const traceSection = r.layerTraces ? `<h2>Per-layer trace</h2>\n${layerTraceSvg(r.layerTraces.layers, r.layerTraces.series)}` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(r.title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.intro{color:#555;margin:0}table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}thead th{border-bottom:2px solid #bbb}
tbody th{text-align:left;font-weight:600}ul.notes{color:#555}
.grid{display:flex;flex-wrap:wrap;gap:18px}figure{margin:0;max-width:340px}figcaption{font-size:12px;color:#444;margin-top:4px}
svg.heatmap{display:block;background:#eee}footer{margin-top:32px;color:#777;font-size:12px}
</style></head><body>
<h1>${esc(r.title)}</h1>
${r.intro.map((l) => `<p class="intro">${esc(l)}</p>`).join('\n')}
<h2>Summary</h2>
${table}
${r.notes.length ? `<ul class="notes">${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
${heatmapSection}
${spectrumSection}
${traceSection}
${(r.sections ?? []).join('\n')}
<footer>${esc(r.footer)}</footer>
</body></html>
`;
}
