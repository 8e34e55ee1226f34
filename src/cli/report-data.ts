/**
 * Turns runs (whole model + sub-network) into the table rows and the report of src/report:
 * shared by `npm start` and `nngeometry fim --report`. Node only (PNG encoding).
 */
import type { LayerCollection } from '../index.js';
import { correlationMatrix, heatmapRGBA } from '../report/heatmap.js';
import { pngDataUri } from '../report/png.js';
import type { HeatmapFigure, ReportData } from '../report/html.js';
import type { RepresentationInfo } from './representations.js';
import type { SubnetworkRun, WholeModelRun } from './runs.js';
import { bytes, num } from './format.js';

export interface RunRecord {
  info: RepresentationInfo;
  whole: WholeModelRun;
  sub: SubnetworkRun | { skipped: string } | null;
}

export const TABLE_HEADER = ['representation', 'memory (bytes)', 'time (s)', 'trace', 'top eigenvalue', 'rel. Frobenius dist. to dense (sub-network)'];

/** One table row per run, as printed and as in the report. */
export function tableRows(runs: RunRecord[]): string[][] {
  return runs.map(({ info, whole, sub }) => {
    const name = info.representation.representationName;
    const distance = !sub ? '—' : 'skipped' in sub ? 'skipped' : sub.distance === null ? '—' : `${num(sub.distance, 3)}${sub.distanceNote ? ' (est.)' : ''}`;
    if ('skipped' in whole) return [name, 'skipped', '—', '—', '—', distance];
    const m = whole.measurement;
    const time = Number.isNaN(whole.seconds) ? '—' : whole.seconds.toFixed(2);
    const top = m.topEigenvalue === null ? '—' : `${num(m.topEigenvalue)}${m.topEigenvalueMethod.startsWith('lanczos') ? '*' : ''}`;
    return [name, bytes(m.bytes), time, num(m.trace), top, distance];
  });
}

/** Notes for skipped runs and estimated quantities. */
export function tableNotes(runs: RunRecord[], wholeLabel: string): string[] {
  const notes: string[] = [];
  for (const { info, whole, sub } of runs) {
    const name = info.representation.representationName;
    if ('skipped' in whole) notes.push(`${name} on ${wholeLabel}: skipped, ${whole.skipped}.`);
    if (sub && 'skipped' in sub) notes.push(`${name} on the sub-network: skipped, ${sub.skipped}.`);
    if (!('skipped' in whole) && whole.measurement.passSeconds !== undefined) notes.push(`${name} stores nothing: its time is that of one pass over the data (its trace).`);
    if (!('skipped' in whole) && whole.measurement.topEigenvalueMethod.startsWith('lanczos')) {
      notes.push(`${name}: top eigenvalue by ${whole.measurement.topEigenvalueMethod} (marked *).`);
    }
    if (sub && !('skipped' in sub) && sub.distanceNote) notes.push(`${name}: distance is a ${sub.distanceNote} (est.); a matrix-free matrix is not expanded, so it has no heatmap.`);
  }
  return notes;
}

/** The heatmap of one sub-network run, or null for a run without entries. */
export function heatmapFigure(name: string, run: SubnetworkRun, sub: LayerCollection): HeatmapFigure | null {
  if (!run.entries) return null;
  const d = sub.numel();
  const png = pngDataUri(heatmapRGBA(correlationMatrix(run.entries, d), d), d, d);
  const caption = run.distance === null ? `d = ${d}` : `‖M − F‖/‖F‖ = ${num(run.distance, 3)} (F dense), ${run.seconds.toFixed(2)} s`;
  return { name, caption, png, size: d, layers: sub.layers.map((e) => ({ id: e.id, offset: e.offset, numel: e.numel })) };
}

/** Everything but the title, intro and footer of a report. */
export function reportBody(runs: RunRecord[], sub: LayerCollection, wholeLabel: string, subLabel: string): Pick<ReportData, 'table' | 'notes' | 'heatmaps' | 'subnetwork' | 'spectra' | 'layerTraces'> {
  const heatmaps: HeatmapFigure[] = [];
  const spectra: ReportData['spectra'] = [];
  for (const r of runs) {
    if (!r.sub || 'skipped' in r.sub) continue;
    const fig = heatmapFigure(r.info.representation.representationName, r.sub, sub);
    if (fig) heatmaps.push(fig);
    if (r.sub.eigenvalues) spectra.push({ name: r.info.representation.representationName, values: r.sub.eigenvalues });
  }
  const withTraces = runs.filter((r) => !('skipped' in r.whole) && r.whole.measurement.layerTraces);
  const layers = withTraces[0] && !('skipped' in withTraces[0].whole) ? withTraces[0].whole.measurement.layerTraces!.map((l) => l.id) : [];
  return {
    table: { header: TABLE_HEADER, rows: tableRows(runs) },
    notes: tableNotes(runs, wholeLabel),
    heatmaps,
    subnetwork: subLabel,
    spectra,
    layerTraces: withTraces.length
      ? {
          layers,
          series: withTraces.map((r) => ({
            name: r.info.representation.representationName,
            traces: 'skipped' in r.whole ? [] : r.whole.measurement.layerTraces!.map((l) => l.trace),
          })),
        }
      : null,
  };
}
