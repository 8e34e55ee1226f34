/**
 * Inline SVG charts for the report: eigenvalue spectra on a log scale and per-layer traces.
 * Pure string building (no DOM), so the same code runs in Node and in the browser.
 *
 * A representation keeps one colour and one dash pattern in every chart (seriesStyle), so that
 * the spectrum and the per-layer bars read together; curves that coincide (Dense and LowRank are
 * the same matrix) stay visible because earlier series are drawn wider and later ones dashed on
 * top. Margins grow with the longest label, so no label is clipped.
 */

/** matplotlib's tab10: distinct colours for up to ten representations. */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Dash patterns (SVG stroke-dasharray), paired with PALETTE entries: solid first. */
export const DASHES = ['', '8 4', '2 3', '10 3 2 3', '5 5', '1 4', '12 4', '6 2 2 2', '3 6', '14 3 3 3'];

/** The fixed slot of each representation in PALETTE and DASHES (the order of `npm start`'s table). */
const REPRESENTATION_SLOTS: Record<string, number> = {
  PMatDense: 0,
  PMatBlockDiag: 1,
  PMatDiag: 2,
  PMatLowRank: 3,
  PMatKFAC: 4,
  PMatEKFAC: 5,
  PMatQuasiDiag: 6,
  PMatEKFACBlockDiag: 7,
  PMatImplicit: 8,
  PMatMixed: 9,
};

/** Colour and dash pattern of a series: fixed for a representation name, else by position. */
export function seriesStyle(name: string, index: number): { colour: string; dash: string } {
  const slot = REPRESENTATION_SLOTS[name] ?? index;
  return { colour: PALETTE[slot % PALETTE.length]!, dash: DASHES[slot % DASHES.length]! };
}

/** Escapes text for HTML and SVG. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** One curve of a chart. */
export interface Series {
  /** Legend text; a representation name ('PMatKFAC') picks that representation's fixed style. */
  name: string;
  values: ArrayLike<number>;
  /** Overrides the colour of seriesStyle. */
  color?: string;
}

/** Width of the plotting area. */
const PLOT_W = 446;
const H = 380;
const M = { left: 64, right: 170, top: 16, bottom: 44 };

/**
 * A generous estimate of the width of `text` at `fontSize` in a sans-serif font (0.62 em per
 * character covers digits, capitals and underscores), used to size margins so labels fit.
 */
export function textWidth(text: string, fontSize: number): number {
  return Math.ceil(text.length * fontSize * 0.62);
}

function log10Ticks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.ceil(Math.log10(lo)); e <= Math.floor(Math.log10(hi)); e++) ticks.push(10 ** e);
  return ticks;
}

/** Right margin that holds the legend's longest name after its 40 px swatch. */
function legendMargin(series: ReadonlyArray<{ name: string }>): number {
  return Math.max(M.right, 40 + Math.max(0, ...series.map((s) => textWidth(s.name, 12))) + 8);
}

/** The legend at x0: a line sample with the series' dash pattern ('line') or a filled square ('box'). */
function legend(series: ReadonlyArray<{ name: string; color?: string }>, x0: number, swatch: 'line' | 'box'): string {
  return series
    .map((s, i) => {
      const y = M.top + 8 + i * 18;
      const style = seriesStyle(s.name, i);
      const c = s.color ?? style.colour;
      const mark = swatch === 'line'
        ? `<line x1="${x0 + 8}" x2="${x0 + 32}" y1="${y - 2}" y2="${y - 2}" stroke="${c}" stroke-width="2.4"${style.dash ? ` stroke-dasharray="${style.dash}"` : ''}/>`
        : `<rect x="${x0 + 14}" y="${y - 8}" width="12" height="12" fill="${c}"/>`;
      return `${mark}<text x="${x0 + 40}" y="${y + 2}" font-size="12">${esc(s.name)}</text>`;
    })
    .join('');
}

/**
 * Eigenvalues in descending order against their rank, log-scaled; values below
 * `dynamicRange` × the largest one are cut (they are round-off for a rank-deficient matrix).
 * Series k is drawn 1.5 + 1.2·(count − 1 − k) px wide with its dash pattern, so a curve hidden
 * under a later identical one still shows around and between its dashes.
 */
export function spectrumSvg(series: Series[], options: { dynamicRange?: number; title?: string } = {}): string {
  const all = series.flatMap((s) => Array.from(s.values)).filter((v) => v > 0);
  const hi = Math.max(...all, 1e-30);
  const lo = Math.max(Math.min(...all, hi), hi * (options.dynamicRange ?? 1e-10));
  const n = Math.max(...series.map((s) => s.values.length), 2);
  const right = legendMargin(series);
  const W = M.left + PLOT_W + right;
  const [y0, y1] = [Math.log10(lo), Math.log10(hi) + 1e-9];
  const px = (i: number) => M.left + (PLOT_W * i) / (n - 1);
  const py = (v: number) => M.top + ((H - M.top - M.bottom) * (y1 - Math.log10(v))) / (y1 - y0);
  const lines = series.map((s, k) => {
    const pts: string[] = [];
    for (let i = 0; i < s.values.length; i++) if (s.values[i]! >= lo) pts.push(`${px(i).toFixed(1)},${py(s.values[i]!).toFixed(1)}`);
    const style = seriesStyle(s.name, k);
    const width = 1.5 + 1.2 * (series.length - 1 - k);
    return `<polyline fill="none" stroke="${s.color ?? style.colour}" stroke-width="${width.toFixed(1)}"${style.dash ? ` stroke-dasharray="${style.dash}"` : ''} stroke-linejoin="round" points="${pts.join(' ')}"><title>${esc(s.name)}</title></polyline>`;
  });
  const yTicks = log10Ticks(lo, hi).map((t) => `<line x1="${M.left}" x2="${M.left + PLOT_W}" y1="${py(t)}" y2="${py(t)}" stroke="#ddd"/><text x="${M.left - 6}" y="${py(t) + 4}" font-size="11" text-anchor="end">1e${Math.round(Math.log10(t))}</text>`);
  const xTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * (n - 1))).map((i) => `<text x="${px(i)}" y="${H - M.bottom + 16}" font-size="11" text-anchor="middle">${i + 1}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(options.title ?? 'eigenvalue spectrum')}">` +
    `<rect x="${M.left}" y="${M.top}" width="${PLOT_W}" height="${H - M.top - M.bottom}" fill="#fff" stroke="#999"/>` +
    yTicks.join('') + xTicks.join('') + lines.join('') + legend(series, M.left + PLOT_W, 'line') +
    `<text x="${M.left + PLOT_W / 2}" y="${H - 8}" font-size="12" text-anchor="middle">rank of the eigenvalue</text>` +
    `<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" font-size="12" text-anchor="middle">eigenvalue (log scale)</text></svg>`;
}

/**
 * Grouped horizontal bars of tr(M_ll) per layer (log scale), one bar per representation in its
 * fixed colour; the label column is as wide as the longest layer id.
 */
export function layerTraceSvg(layers: string[], series: Array<{ name: string; traces: number[]; color?: string }>): string {
  const all = series.flatMap((s) => s.traces).filter((v) => v > 0);
  const hi = Math.max(...all, 1e-30) * 1.5;
  const lo = Math.min(...all, hi) / 3;
  const bar = 12;
  const groupH = series.length * bar + 14;
  const height = Math.max(M.top + layers.length * groupH + M.bottom, M.top + series.length * 18 + 12);
  const left = Math.max(110, Math.max(0, ...layers.map((id) => textWidth(id, 12))) + 16);
  const right = legendMargin(series);
  const W = left + PLOT_W + right;
  const px = (v: number) => left + (PLOT_W * (Math.log10(v) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const bars = layers.flatMap((id, l) => {
    const y0 = M.top + l * groupH;
    return [
      `<text x="${left - 8}" y="${y0 + (series.length * bar) / 2 + 4}" font-size="12" text-anchor="end">${esc(id)}</text>`,
      ...series.map((s, k) => {
        const v = s.traces[l]!;
        const w = v > 0 ? Math.max(1, px(v) - left) : 0;
        return `<rect x="${left}" y="${y0 + k * bar}" width="${w.toFixed(1)}" height="${bar - 2}" fill="${s.color ?? seriesStyle(s.name, k).colour}"><title>${esc(`${s.name}, ${id}: ${v.toPrecision(5)}`)}</title></rect>`;
      }),
    ];
  });
  const ticks = log10Ticks(lo, hi).map((t) => `<line x1="${px(t)}" x2="${px(t)}" y1="${M.top - 4}" y2="${height - M.bottom}" stroke="#ddd"/><text x="${px(t)}" y="${height - M.bottom + 16}" font-size="11" text-anchor="middle">1e${Math.round(Math.log10(t))}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="per-layer trace">` +
    ticks.join('') + bars.join('') + legend(series, left + PLOT_W, 'box') +
    `<text x="${left + PLOT_W / 2}" y="${height - 8}" font-size="12" text-anchor="middle">trace of the layer's diagonal block (log scale)</text></svg>`;
}
