/**
 * Charts and the HTML page of `nngeometry spectrum` (and the density section of `npm start`'s
 * report): the top eigenvalues, the SLQ spectral density on a logarithmic eigenvalue axis, and
 * a trace estimate with its confidence interval. Pure string building, browser-safe.
 */
import { PALETTE, esc } from './charts.js';

const W = 680;
const H = 320;
const M = { left: 64, right: 24, top: 16, bottom: 44 };

export interface DensitySeries {
  name: string;
  /** SLQ nodes and weights (spectralDensity). */
  nodes: ArrayLike<number>;
  weights: ArrayLike<number>;
}

function fmt(x: number): string {
  return Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toPrecision(4);
}

/**
 * The density of log₁₀ λ: each node becomes a Gaussian of width `sigmaDecades` in log₁₀ λ
 * with its weight, so that a spectrum spanning many decades (a Fisher's) is readable. Nodes
 * below `floor`·λ_max (round-off of a rank-deficient matrix, or negative curvature) are
 * gathered at the left edge and their total weight is printed.
 */
export function densitySvg(series: DensitySeries[], options: { floor?: number; sigmaDecades?: number; title?: string } = {}): string {
  const all = series.flatMap((s) => Array.from(s.nodes));
  const hi = Math.max(...all.map(Math.abs), 1e-30);
  const lo = hi * (options.floor ?? 1e-8);
  const [x0, x1] = [Math.log10(lo), Math.log10(hi) + 0.5];
  const sigma = options.sigmaDecades ?? 0.08;
  const grid = Array.from({ length: 240 }, (_, i) => x0 + ((x1 - x0) * i) / 239);
  const curves = series.map((s) => {
    let below = 0;
    const ys = grid.map(() => 0);
    for (let j = 0; j < s.nodes.length; j++) {
      const node = s.nodes[j]!;
      const w = s.weights[j]!;
      if (node < lo) {
        below += w;
        continue;
      }
      const t = Math.log10(node);
      grid.forEach((x, i) => (ys[i]! += (w * Math.exp(-0.5 * ((x - t) / sigma) ** 2)) / (sigma * Math.sqrt(2 * Math.PI))));
    }
    return { ys, below };
  });
  const yMax = Math.max(...curves.flatMap((c) => c.ys), 1e-30);
  const px = (x: number) => M.left + ((W - M.left - M.right) * (x - x0)) / (x1 - x0);
  const py = (y: number) => H - M.bottom - ((H - M.top - M.bottom) * y) / yMax;
  const lines = curves.map((c, k) => {
    const pts = grid.map((x, i) => `${px(x).toFixed(1)},${py(c.ys[i]!).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke="${PALETTE[k % PALETTE.length]}" stroke-width="1.6" points="${pts}"><title>${esc(series[k]!.name)}</title></polyline>`;
  });
  const ticks: string[] = [];
  for (let e = Math.ceil(x0); e <= Math.floor(x1); e++) {
    ticks.push(`<line x1="${px(e)}" x2="${px(e)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#eee"/><text x="${px(e)}" y="${H - M.bottom + 16}" font-size="11" text-anchor="middle">1e${e}</text>`);
  }
  const notes = curves.map((c, k) => (c.below > 0 ? `${esc(series[k]!.name)}: weight ${fmt(c.below)} below ${fmt(lo)}` : '')).filter(Boolean);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart density" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(options.title ?? 'spectral density')}">` +
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="#fff" stroke="#999"/>${ticks.join('')}${lines.join('')}` +
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" font-size="12" text-anchor="middle">eigenvalue λ (log scale); density of log₁₀ λ</text>` +
    notes.map((n, i) => `<text x="${M.left + 6}" y="${M.top + 14 + 14 * i}" font-size="11" fill="#555">${n}</text>`).join('') +
    `</svg>`;
}

/** The top eigenvalues as bars (linear scale, negative values below the axis). */
export function eigenvalueBarsSvg(values: ArrayLike<number>, options: { title?: string } = {}): string {
  const v = Array.from(values);
  const top = Math.max(...v, 0);
  const bottom = Math.min(...v, 0);
  const span = top - bottom || 1;
  const bw = (W - M.left - M.right) / Math.max(v.length, 1);
  const py = (y: number) => M.top + ((H - M.top - M.bottom) * (top - y)) / span;
  const bars = v.map((x, i) => {
    const [y0, y1] = [py(Math.max(x, 0)), py(Math.min(x, 0))];
    return `<rect x="${(M.left + i * bw + 0.15 * bw).toFixed(1)}" y="${y0.toFixed(1)}" width="${(0.7 * bw).toFixed(1)}" height="${Math.max(y1 - y0, 0.5).toFixed(1)}" fill="${PALETTE[0]}"><title>λ${i + 1} = ${fmt(x)}</title></rect>` +
      `<text x="${(M.left + (i + 0.5) * bw).toFixed(1)}" y="${H - M.bottom + 16}" font-size="11" text-anchor="middle">${i + 1}</text>`;
  });
  const yTicks = [top, (top + bottom) / 2, bottom].map((t) => `<text x="${M.left - 6}" y="${py(t) + 4}" font-size="11" text-anchor="end">${fmt(t)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart eigenvalues" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(options.title ?? 'top eigenvalues')}">` +
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="#fff" stroke="#999"/>` +
    `<line x1="${M.left}" x2="${W - M.right}" y1="${py(0)}" y2="${py(0)}" stroke="#666"/>${bars.join('')}${yTicks.join('')}` +
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" font-size="12" text-anchor="middle">rank</text></svg>`;
}

/** A trace estimate with its 95% interval (± 1.96 standard errors) and, when known, the exact value. */
export function traceIntervalSvg(estimate: { value: number; standardError: number }, exact?: number): string {
  const h = 90;
  const half = 1.96 * (Number.isFinite(estimate.standardError) ? estimate.standardError : 0);
  const points = [estimate.value - half, estimate.value + half, ...(exact === undefined ? [] : [exact])];
  const lo = Math.min(...points);
  const hi = Math.max(...points);
  const pad = (hi - lo || Math.abs(estimate.value) || 1) * 0.25;
  const px = (x: number) => M.left + ((W - M.left - M.right) * (x - lo + pad)) / (hi - lo + 2 * pad);
  const y = 40;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart trace" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="trace estimate">` +
    `<line x1="${px(estimate.value - half)}" x2="${px(estimate.value + half)}" y1="${y}" y2="${y}" stroke="${PALETTE[0]}" stroke-width="3"/>` +
    `<circle cx="${px(estimate.value)}" cy="${y}" r="5" fill="${PALETTE[0]}"><title>estimate ${fmt(estimate.value)}</title></circle>` +
    `<text x="${px(estimate.value - half)}" y="${y + 24}" font-size="11" text-anchor="middle">${fmt(estimate.value - half)}</text>` +
    `<text x="${px(estimate.value + half)}" y="${y + 24}" font-size="11" text-anchor="middle">${fmt(estimate.value + half)}</text>` +
    (exact === undefined ? '' : `<line x1="${px(exact)}" x2="${px(exact)}" y1="${y - 14}" y2="${y + 14}" stroke="${PALETTE[3]}" stroke-width="2"><title>exact ${fmt(exact)}</title></line><text x="${px(exact)}" y="${y - 18}" font-size="11" text-anchor="middle" fill="${PALETTE[3]}">exact</text>`) +
    `</svg>`;
}

export interface SpectrumReport {
  title: string;
  intro: string[];
  /** Summary rows [quantity, value]. */
  rows: string[][];
  eigenvalues: ArrayLike<number>;
  trace?: { value: number; standardError: number; samples: number; method: string; exact?: number };
  density?: DensitySeries;
  footer: string;
}

/** The HTML section of a density (also used by npm start's report). */
export function densitySection(series: DensitySeries[], caption: string): string {
  return `<h2>Spectral density</h2>\n<p>${esc(caption)}</p>\n${densitySvg(series)}`;
}

/** The report of `nngeometry spectrum` as one self-contained HTML document. */
export function buildSpectrumReport(r: SpectrumReport): string {
  const rows = r.rows.map(([k, v]) => `<tr><th scope="row">${esc(k!)}</th><td>${esc(v!)}</td></tr>`).join('');
  const trace = r.trace
    ? `<h2>Trace</h2>\n<p>${esc(`${r.trace.method} with ${r.trace.samples} products: ${fmt(r.trace.value)} ± ${fmt(1.96 * r.trace.standardError)} (95% interval)${r.trace.exact === undefined ? '' : `; exact ${fmt(r.trace.exact)}`}`)}</p>\n${traceIntervalSvg(r.trace, r.trace.exact)}`
    : '';
  const density = r.density ? densitySection([r.density], 'Stochastic Lanczos quadrature: the weighted Ritz values of every probe, smoothed in log₁₀ λ.') : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(r.title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.intro{color:#555;margin:0}table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}tbody th{text-align:left;font-weight:600}
footer{margin-top:32px;color:#777;font-size:12px}
</style></head><body>
<h1>${esc(r.title)}</h1>
${r.intro.map((l) => `<p class="intro">${esc(l)}</p>`).join('\n')}
<h2>Summary</h2>
<table><tbody>${rows}</tbody></table>
<h2>Top eigenvalues</h2>
${eigenvalueBarsSvg(r.eigenvalues)}
${density}
${trace}
<footer>${esc(r.footer)}</footer>
</body></html>
`;
}
