/** Plain-text tables and number formats shared by the CLI commands and `npm start`. */

/** Left-aligned first column, right-aligned others; a rule under the header. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** 6 significant digits, or '—' for null. */
export function num(x: number | null | undefined, digits = 6): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return Math.abs(x) !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e7) ? x.toExponential(digits - 1) : x.toPrecision(digits);
}

/** Bytes with thousands separators ('1,234,567'). */
export function bytes(x: number | null): string {
  return x === null ? '—' : x.toLocaleString('en-US');
}

/** A human size: '83 MB'. */
export function humanBytes(x: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return `${x < 10 && i > 0 ? x.toFixed(1) : Math.round(x)} ${units[i]}`;
}
