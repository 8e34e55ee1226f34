/**
 * Inline SVG charts for the report: eigenvalue spectra on a log scale and per-layer traces.
 * Pure string building (no DOM), so the same code runs in Node and in the browser.
 */

/** matplotlib's tab10: distinct colours for up to ten representations. */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Escapes text for HTML and SVG. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface Series {
  name: string;
  values: ArrayLike<number>;
  color?: string;
}

const W = 680;
const H = 380;
const M = { left: 64, right: 170, top: 16, bottom: 44 };

function log10Ticks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.ceil(Math.log10(lo)); e <= Math.floor(Math.log10(hi)); e++) ticks.push(10 ** e);
  return ticks;
}

function legend(series: ReadonlyArray<{ name: string; color?: string }>): string {
  return series
    .map((s, i) => {
      const y = M.top + 8 + i * 18;
      const c = s.color ?? PALETTE[i % PALETTE.length];
      return `<rect x="${W - M.right + 14}" y="${y - 8}" width="12" height="12" fill="${c}"/><text x="${W - M.right + 32}" y="${y + 2}" font-size="12">${esc(s.name)}</text>`;
    })
    .join('');
}

/**
 * Eigenvalues in descending order against their rank, log-scaled; values below
 * `dynamicRange` × the largest one are cut (they are round-off for a rank-deficient matrix).
 */
export function spectrumSvg(series: Series[], options: { dynamicRange?: number; title?: string } = {}): string {
  const all = series.flatMap((s) => Array.from(s.values)).filter((v) => v > 0);
  const hi = Math.max(...all, 1e-30);
  const lo = Math.max(Math.min(...all, hi), hi * (options.dynamicRange ?? 1e-10));
  const n = Math.max(...series.map((s) => s.values.length), 2);
  const [y0, y1] = [Math.log10(lo), Math.log10(hi) + 1e-9];
  const px = (i: number) => M.left + ((W - M.left - M.right) * i) / (n - 1);
  const py = (v: number) => M.top + ((H - M.top - M.bottom) * (y1 - Math.log10(v))) / (y1 - y0);
  const lines = series.map((s, k) => {
    const pts: string[] = [];
    for (let i = 0; i < s.values.length; i++) if (s.values[i]! >= lo) pts.push(`${px(i).toFixed(1)},${py(s.values[i]!).toFixed(1)}`);
    return `<polyline fill="none" stroke="${s.color ?? PALETTE[k % PALETTE.length]}" stroke-width="1.6" points="${pts.join(' ')}"><title>${esc(s.name)}</title></polyline>`;
  });
  const yTicks = log10Ticks(lo, hi).map((t) => `<line x1="${M.left}" x2="${W - M.right}" y1="${py(t)}" y2="${py(t)}" stroke="#ddd"/><text x="${M.left - 6}" y="${py(t) + 4}" font-size="11" text-anchor="end">1e${Math.round(Math.log10(t))}</text>`);
  const xTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * (n - 1))).map((i) => `<text x="${px(i)}" y="${H - M.bottom + 16}" font-size="11" text-anchor="middle">${i + 1}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(options.title ?? 'eigenvalue spectrum')}">` +
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="#fff" stroke="#999"/>` +
    yTicks.join('') + xTicks.join('') + lines.join('') + legend(series) +
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" font-size="12" text-anchor="middle">rank of the eigenvalue</text>` +
    `<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" font-size="12" text-anchor="middle">eigenvalue (log scale)</text></svg>`;
}

/** Grouped horizontal bars of tr(M_ll) per layer (log scale), one bar per representation. */
export function layerTraceSvg(layers: string[], series: Array<{ name: string; traces: number[]; color?: string }>): string {
  const all = series.flatMap((s) => s.traces).filter((v) => v > 0);
  const hi = Math.max(...all, 1e-30) * 1.5;
  const lo = Math.min(...all, hi) / 3;
  const bar = 12;
  const groupH = series.length * bar + 14;
  const height = M.top + layers.length * groupH + M.bottom;
  const left = 110;
  const px = (v: number) => left + ((W - left - M.right) * (Math.log10(v) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const bars = layers.flatMap((id, l) => {
    const y0 = M.top + l * groupH;
    return [
      `<text x="${left - 8}" y="${y0 + (series.length * bar) / 2 + 4}" font-size="12" text-anchor="end">${esc(id)}</text>`,
      ...series.map((s, k) => {
        const v = s.traces[l]!;
        const w = v > 0 ? Math.max(1, px(v) - left) : 0;
        return `<rect x="${left}" y="${y0 + k * bar}" width="${w.toFixed(1)}" height="${bar - 2}" fill="${s.color ?? PALETTE[k % PALETTE.length]}"><title>${esc(`${s.name}, ${id}: ${v.toPrecision(5)}`)}</title></rect>`;
      }),
    ];
  });
  const ticks = log10Ticks(lo, hi).map((t) => `<line x1="${px(t)}" x2="${px(t)}" y1="${M.top - 4}" y2="${height - M.bottom}" stroke="#ddd"/><text x="${px(t)}" y="${height - M.bottom + 16}" font-size="11" text-anchor="middle">1e${Math.round(Math.log10(t))}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="per-layer trace">` +
    ticks.join('') + bars.join('') + legend(series) +
    `<text x="${(left + W - M.right) / 2}" y="${height - 8}" font-size="12" text-anchor="middle">trace of the layer's diagonal block (log scale)</text></svg>`;
}
