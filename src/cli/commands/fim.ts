/**
 * `nngeometry fim`: the Fisher information matrix of a saved model on a data file, in one
 * representation; prints trace, norms, top eigenvalue and per-layer traces, and optionally
 * writes them as JSON and an HTML report (heatmap on a sub-network next to the dense one).
 */
import { resolve } from 'node:path';
import { tf } from '../../tf.js';
import { LayerCollection, MONTE_CARLO_VARIANTS, VARIANTS, type Variant } from '../../index.js';
import { buildReport } from '../../report/html.js';
import { CliError } from '../errors.js';
import { formatTable, humanBytes, num } from '../format.js';
import { collectLayers, loadInputs, positiveInt } from '../inputs.js';
import { boundedFlag, numberFlag } from '../flags.js';
import { checkOutputFiles, writeOutputFile, writeOutputFileSync } from '../output-file.js';
import { type Measurement, pickSubnetwork } from '../measure.js';
import { ProgressBar } from '../progress.js';
import { findRepresentation, type FisherRequest } from '../representations.js';
import { type RunRecord, reportBody } from '../report-data.js';
import { disposeLoader, runSubnetwork, runWholeModel, skipReason } from '../runs.js';
import { fimDistributed } from './fim-distributed.js';

export const FIM_USAGE = `nngeometry fim --model model.json --data FILE [--labels FILE] [--representation diag]
    [--variant classif_logits] [--loss cross_entropy|mse] [--sigma2 1] [--mc TRIALS] [--seed 0] [--batch-size 64] [--count N] [--scale X]
    [--backend wasm|cpu] [--max-memory 2e9] [--ignore-unsupported] [--report out.html] [--json out.json] [--quiet]
    [--redis redis://HOST:PORT [--shards 8] [--store DIR] [--run-id ID]]   (spread over nngeometry worker processes)`;

export interface FimValues {
  model?: string;
  data?: string;
  labels?: string;
  representation?: string;
  variant?: string;
  loss?: string;
  sigma2?: string;
  mc?: string;
  seed?: string;
  'batch-size'?: string;
  count?: string;
  scale?: string;
  'max-memory'?: string;
  'ignore-unsupported'?: boolean;
  report?: string;
  json?: string;
  quiet?: boolean;
  redis?: string;
  shards?: string;
  store?: string;
  'run-id'?: string;
}

function checkVariant(name: string, monteCarlo: boolean): Variant {
  const valid: readonly string[] = monteCarlo ? MONTE_CARLO_VARIANTS : VARIANTS;
  if (!valid.includes(name)) throw new CliError(`--variant must be one of ${valid.join(', ')}${monteCarlo ? ' (with --mc)' : ''}, received '${name}'`);
  return name as Variant;
}

/**
 * Runs `nngeometry fim` with parsed options on the chosen backend; throws CliError (exit code 2)
 * for user errors.
 *
 * @example
 * await fimCommand({ model: 'model.json', data: 'x.csv', representation: 'kfac' }, 'wasm');
 */
export async function fimCommand(v: FimValues, backend: string): Promise<void> {
  if (!v.model) throw new CliError('--model is required');
  if (!v.data) throw new CliError('--data is required');
  const info = findRepresentation(v.representation ?? 'diag');
  const trials = v.mc === undefined ? undefined : boundedFlag(v.mc, '--mc');
  const variant = checkVariant(v.variant ?? 'classif_logits', trials !== undefined);
  const scale = numberFlag(v.scale, '--scale', 'a decimal number such as 0.5 or 1e-2');
  if (v.loss !== undefined && v.loss !== 'cross_entropy' && v.loss !== 'mse') throw new CliError(`--loss must be cross_entropy or mse, received '${v.loss}'`);
  if (v.loss !== undefined && variant !== 'empirical') throw new CliError(`--loss applies to --variant empirical only`);
  const sigma2 = numberFlag(v.sigma2, '--sigma2', 'a decimal number > 0', (x) => x > 0);
  if (sigma2 !== undefined && variant !== 'regression') throw new CliError(`--sigma2 applies to --variant regression only`);
  const maxBytes = numberFlag(v['max-memory'], '--max-memory', 'a number of bytes in (0, 1e15]', (x) => x > 0 && x <= 1e15) ?? 2e9;
  const seed = boundedFlag(v.seed, '--seed', 0);
  checkOutputFiles({ '--json': v.json, '--report': v.report });
  if (v.redis !== undefined) return fimDistributed(v, backend, { info, trials, variant, scale, sigma2, seed });
  for (const o of ['shards', 'store', 'run-id'] as const) if (v[o] !== undefined) throw new CliError(`--${o} applies to distributed runs only (with --redis)`);
  const inputs = await loadInputs({
    model: v.model, data: v.data, labels: v.labels, batchSize: positiveInt(v['batch-size'], '--batch-size', 64),
    count: v.count === undefined ? undefined : positiveInt(v.count, '--count'), scale, needLabels: variant === 'empirical', labelsAreClasses: v.loss !== 'mse',
  });
  const { model, batches, n, outputs } = inputs;
  try {
    const lc = collectLayers(model, v['ignore-unsupported'] ?? false);
    const name = info.representation.representationName;
    const reason = skipReason(info, lc, n, outputs, { maxBytes, maxFlops: Infinity });
    if (reason) throw new CliError(`${name} cannot be computed for this model: ${reason}`);
    const request: FisherRequest = {
      model, loader: batches, layerCollection: lc, variant, monteCarloTrials: trials, seed,
      loss: v.loss as 'cross_entropy' | 'mse' | undefined, sigma2,
    };
    const bar = v.quiet ? undefined : new ProgressBar(`${name}`, { total: n });
    const whole = await runWholeModel(info, { ...request, onProgress: bar?.onProgress });
    bar?.finish();
    const how = printFimResult(v, { modelName: model.name, lc, n, name, variant, trials, seed: request.seed!, backend, whole });
    if (v.report) await writeFimReport(v, { info, whole, request, lc, n, outputs, how });
  } finally {
    disposeLoader(batches);
    model.dispose();
  }
}

/**
 * Prints the result table of `nngeometry fim` and writes its --json (`extra` fields appended:
 * the distributed run's id, shards and retries); returns how the matrix was computed.
 */
export function printFimResult(
  v: FimValues,
  r: { modelName: string; lc: LayerCollection; n: number; name: string; variant: Variant; trials: number | undefined; seed: number; backend: string; whole: { seconds: number; measurement: Measurement } },
  extra: Record<string, unknown> = {},
): string {
  const { lc, n, name, variant, trials, backend, whole } = r;
  const m = whole.measurement;
  const how = trials ? `Monte-Carlo (${trials} sampled label${trials > 1 ? 's' : ''} per example, seed ${r.seed})` : 'closed form';
  console.log(`FIM of '${r.modelName}' (d = ${lc.numel().toLocaleString('en-US')}) on ${n} examples of ${v.data}`);
  console.log(`${name}, variant ${variant}, ${how}, tfjs '${backend}'\n`);
  console.log(formatTable([
    ['quantity', 'value'],
    ['time (s)', whole.seconds.toFixed(3)],
    ['memory (bytes)', m.bytes === null ? '—' : m.bytes.toLocaleString('en-US')],
    ['trace', num(m.trace)],
    ['Frobenius norm', num(m.frobenius)],
    [`top eigenvalue (${m.topEigenvalueMethod})`, num(m.topEigenvalue)],
  ]));
  if (m.layerTraces) {
    console.log(`\n${formatTable([['layer', 'parameters', 'trace'], ...m.layerTraces.map((l) => [l.id, lc.get(l.id).numel.toLocaleString('en-US'), num(l.trace)])])}`);
  }
  if (v.json) {
    const json = {
      model: v.model, data: v.data, examples: n, parameters: lc.numel(), representation: name, variant,
      monteCarloTrials: trials ?? null, seed: trials ? r.seed : null, backend, seconds: whole.seconds, ...m,
      layers: lc.layers.map((e, i) => ({ id: e.id, parameters: e.numel, trace: m.layerTraces?.[i]?.trace ?? null })),
      ...extra,
    };
    writeOutputFileSync(v.json, '--json', JSON.stringify(json, null, 2) + '\n');
  }
  return how;
}

/** Writes the --report HTML of `nngeometry fim` (the sub-network heatmaps are computed here, on `ctx.request`'s data). */
export async function writeFimReport(
  v: FimValues,
  ctx: { info: ReturnType<typeof findRepresentation>; whole: RunRecord['whole']; request: FisherRequest; lc: LayerCollection; n: number; outputs: number; how: string },
): Promise<void> {
  const sub = pickSubnetwork(ctx.request.model, ctx.lc, 400);
  const dense = findRepresentation('dense');
  const records: RunRecord[] = [];
  const subRequest = { ...ctx.request, layerCollection: sub };
  const reference = await runSubnetwork(dense, subRequest, null);
  if (ctx.info.name !== 'dense') records.push({ info: dense, whole: { skipped: 'not requested (the reference of the heatmaps)' }, sub: reference });
  const skip = skipReason(ctx.info, sub, ctx.n, ctx.outputs, { maxBytes: 1e9, maxFlops: Infinity });
  records.push({ info: ctx.info, whole: ctx.whole, sub: skip ? { skipped: skip } : ctx.info.name === 'dense' ? reference : await runSubnetwork(ctx.info, subRequest, reference.entries) });
  const describe = (c: LayerCollection) => c.layers.map((e) => `${e.id} ${e.numel.toLocaleString('en-US')}`).join(', ');
  const html = buildReport({
    title: `${ctx.info.representation.representationName} FIM of ${v.model}`,
    intro: [
      `model: ${v.model} — ${describe(ctx.lc)} = ${ctx.lc.numel().toLocaleString('en-US')} parameters`,
      `data: ${ctx.n} examples of ${v.data}; variant ${ctx.request.variant}, ${ctx.how}; tfjs ${tf.version.tfjs} on '${tf.getBackend()}'`,
    ],
    ...reportBody(records, sub, 'the model', `Computed on the sub-network ${describe(sub)} (d = ${sub.numel()}); F is the dense matrix.`),
    footer: 'Generated by nngeometry fim.',
  });
  await writeOutputFile(v.report!, '--report', html);
  console.error(`wrote ${resolve(v.report!)} (${humanBytes(html.length)})`);
}
