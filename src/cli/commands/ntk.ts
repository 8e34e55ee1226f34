/**
 * `nngeometry ntk`: the empirical neural tangent kernel K[o, i, o', j] of a saved model on the
 * first examples of a data file (GramMatrix → FMatDense, [O, n, O, n]); prints its size, trace,
 * Frobenius norm and top eigenvalues, optionally as JSON and as an HTML heatmap + spectrum.
 */
import { resolve } from 'node:path';
import { tf } from '../../tf.js';
import { GramMatrix, type FMatDense } from '../../index.js';
import { buildReport } from '../../report/html.js';
import { correlationMatrix, heatmapRGBA } from '../../report/heatmap.js';
import { pngDataUri } from '../../report/png.js';
import { CliError } from '../errors.js';
import { formatTable, humanBytes, num } from '../format.js';
import { collectLayers, loadInputs, positiveInt } from '../inputs.js';
import { numberFlag } from '../flags.js';
import { checkOutputFiles, writeOutputFile } from '../output-file.js';
import { ProgressBar } from '../progress.js';
import { disposeLoader } from '../runs.js';
import { ntkDistributed } from './ntk-distributed.js';

export const NTK_USAGE = `nngeometry ntk --model model.json --data FILE [--count 100] [--centering] [--top 10]
    [--batch-size 64] [--scale X] [--backend wasm|cpu] [--ignore-unsupported] [--report out.html] [--json out.json] [--quiet]
    [--redis redis://HOST:PORT [--shards 8] [--store DIR] [--run-id ID]]   (tiles of example pairs on nngeometry worker processes)`;

export interface NtkValues {
  model?: string;
  data?: string;
  count?: string;
  centering?: boolean;
  top?: string;
  'batch-size'?: string;
  scale?: string;
  'ignore-unsupported'?: boolean;
  report?: string;
  json?: string;
  quiet?: boolean;
  redis?: string;
  shards?: string;
  store?: string;
  'run-id'?: string;
}

/** The kernel is (O·n)² float64 entries: keep it under this many bytes. */
export const MAX_KERNEL_BYTES = 1e9;

/**
 * Runs `nngeometry ntk` with parsed options on the chosen backend; throws CliError (exit code 2)
 * for user errors.
 *
 * @example
 * await ntkCommand({ model: 'model.json', data: 'x.csv', count: '50' }, 'wasm');
 */
export async function ntkCommand(v: NtkValues, backend: string): Promise<void> {
  if (!v.model) throw new CliError('--model is required');
  if (!v.data) throw new CliError('--data is required');
  const count = positiveInt(v.count, '--count', 100);
  const scale = numberFlag(v.scale, '--scale', 'a decimal number such as 0.5 or 1e-2');
  const topRequested = positiveInt(v.top, '--top', 10);
  checkOutputFiles({ '--json': v.json, '--report': v.report });
  if (v.redis !== undefined) return ntkDistributed(v, backend, { count, scale, topRequested });
  for (const o of ['shards', 'store', 'run-id'] as const) if (v[o] !== undefined) throw new CliError(`--${o} applies to distributed runs only (with --redis)`);
  const { model, batches, n, outputs } = await loadInputs({
    model: v.model, data: v.data, count, batchSize: positiveInt(v['batch-size'], '--batch-size', 64), scale, needLabels: false,
  });
  try {
    const size = outputs * n;
    if (8 * size * size > MAX_KERNEL_BYTES) {
      throw new CliError(`the kernel would hold (O·n)² = ${size}² float64 entries (${humanBytes(8 * size * size)}); lower --count`);
    }
    const lc = collectLayers(model, v['ignore-unsupported'] ?? false);
    const bar = v.quiet ? undefined : new ProgressBar('NTK', { total: n });
    const t0 = performance.now();
    const K = await GramMatrix({ model, loader: batches, layerCollection: lc, centering: v.centering ?? false, onProgress: bar?.onProgress });
    bar?.finish();
    const seconds = (performance.now() - t0) / 1000;
    try {
      await printNtkResult(v, { K, modelName: model.name, backend, seconds, top: topRequested });
    } finally {
      K.dispose();
    }
  } finally {
    disposeLoader(batches);
    model.dispose();
  }
}

/**
 * Prints the table of `nngeometry ntk` and writes its --json and --report (`extra` fields
 * appended to the JSON: the distributed run's id, tiles and retries).
 */
export async function printNtkResult(
  v: NtkValues,
  r: { K: FMatDense; modelName: string; backend: string; seconds: number; top: number },
  extra: Record<string, unknown> = {},
): Promise<void> {
  const { K, backend, seconds } = r;
  const lc = K.layerCollection;
  const [outputs, n] = [K.numOutputs, K.numExamples];
  const size = outputs * n;
  const top = Math.min(r.top, size);
  const eig = K.eigendecomposition({ k: top });
  eig.vectors.dispose();
  const eigenvalues = Array.from(eig.values);
  const trace = K.trace();
  const frobenius = K.norm('fro');
  console.log(`empirical NTK of '${r.modelName}' (d = ${lc.numel().toLocaleString('en-US')}) on ${n} examples of ${v.data}${v.centering ? ', centered' : ''}, tfjs '${backend}'`);
  console.log(`K has shape [O, n, O, n] = [${outputs}, ${n}, ${outputs}, ${n}]\n`);
  console.log(formatTable([
    ['quantity', 'value'],
    ['time (s)', seconds.toFixed(3)],
    ['trace', num(trace)],
    ['Frobenius norm', num(frobenius)],
    ...eigenvalues.map((e, i) => [`eigenvalue ${i + 1}`, num(e)]),
  ]));
  if (v.json) {
    await writeOutputFile(v.json, '--json', JSON.stringify({ model: v.model, data: v.data, examples: n, outputs, parameters: lc.numel(), centering: v.centering ?? false, backend, seconds, trace, frobenius, eigenvalues, ...extra }, null, 2) + '\n');
  }
  if (v.report) {
    const values = K.values();
    const all = size <= 1500 ? K.eigendecomposition() : null;
    all?.vectors.dispose();
    const html = buildReport({
      title: `Empirical NTK of ${v.model}`,
      intro: [`${n} examples of ${v.data}, O = ${outputs} outputs, d = ${lc.numel()} parameters; tfjs ${tf.version.tfjs} on '${backend}'`],
      table: { header: ['quantity', 'value'], rows: [['trace', num(trace)], ['Frobenius norm', num(frobenius)], ...eigenvalues.map((e, i) => [`eigenvalue ${i + 1}`, num(e)])] },
      notes: [],
      heatmaps: [{ name: 'K', caption: `[O·n]² = ${size}², rows ordered by output then example`, png: pngDataUri(heatmapRGBA(correlationMatrix(values, size), size), size, size), size, layers: Array.from({ length: outputs }, (_, o) => ({ id: `output ${o}`, offset: o * n, numel: n })) }],
      subnetwork: 'Correlations |K_ab|/√(K_aa K_bb) of the whole kernel.',
      blocks: 'outputs',
      spectra: all ? [{ name: 'NTK', values: all.values }] : [],
      layerTraces: null,
      footer: 'Generated by nngeometry ntk.',
    });
    await writeOutputFile(v.report, '--report', html);
    console.error(`wrote ${resolve(v.report)} (${humanBytes(html.length)})`);
  }
}
