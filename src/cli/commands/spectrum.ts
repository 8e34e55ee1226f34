/**
 * `nngeometry spectrum`: the top eigenvalues of a saved model's Fisher (matrix-free by
 * default, or any representation), optionally its trace (Hutch++ with a 95% interval) and its
 * spectral density (stochastic Lanczos quadrature); prints them, writes --json and an HTML
 * report (eigenvalue bars, the density on a log axis, the trace with its interval).
 */
import { resolve } from 'node:path';
import { tf } from '../../tf.js';
import { PMatImplicit, eigsh, estimateTrace, spectralDensity, type LinearOperator, type PMat, type SpectralProgress, type Variant, VARIANTS } from '../../index.js';
import { buildSpectrumReport } from '../../report/spectral.js';
import { CliError } from '../errors.js';
import { formatTable, humanBytes, num } from '../format.js';
import { collectLayers, loadInputs, positiveInt } from '../inputs.js';
import { boundedFlag, integerFlag, numberFlag } from '../flags.js';
import { checkOutputFiles, writeOutputFile } from '../output-file.js';
import { ProgressBar } from '../progress.js';
import { computeFisher, findRepresentation, type RepresentationInfo } from '../representations.js';
import { spectrumDistributed } from './spectrum-distributed.js';
import { disposeLoader, skipReason } from '../runs.js';

export const SPECTRUM_USAGE = `nngeometry spectrum --model model.json --data FILE [--representation implicit] [--k 10] [--which largest|smallest]
    [--trace] [--samples 30] [--density] [--probes 10] [--steps 80] [--seed 0] [--variant classif_logits] [--batch-size 64] [--count N]
    [--scale X] [--backend wasm|cpu] [--ignore-unsupported] [--report out.html] [--json out.json] [--quiet]
    [--redis redis://HOST:PORT [--shards 8] [--store DIR]]   (implicit: every product a distributed pass; others: the matrix by fim --redis)`;

export interface SpectrumValues {
  model?: string;
  data?: string;
  representation?: string;
  variant?: string;
  k?: string;
  which?: string;
  trace?: boolean;
  samples?: string;
  density?: boolean;
  probes?: string;
  steps?: string;
  seed?: string;
  'batch-size'?: string;
  count?: string;
  scale?: string;
  'ignore-unsupported'?: boolean;
  report?: string;
  json?: string;
  quiet?: boolean;
  redis?: string;
  shards?: string;
  store?: string;
}

/** A one-line product counter on stderr (a terminal only; silent for calls under a second). */
function productCounter(label: string, quiet: boolean): { onProgress?: (p: SpectralProgress) => void; finish(): void } {
  if (quiet || !process.stderr.isTTY) return { finish() {} };
  const start = performance.now();
  let shown = false;
  return {
    onProgress(p) {
      const s = (performance.now() - start) / 1000;
      if (s < 1) return;
      shown = true;
      process.stderr.write(`\r${label}: ${p.products} products (at most ${p.maxProducts}), ${s.toFixed(1)} s`);
    },
    finish() {
      if (shown) process.stderr.write('\n');
    },
  };
}

/**
 * Runs `nngeometry spectrum` with parsed options; throws CliError (exit code 2) for user errors.
 *
 * @example
 * await spectrumCommand({ model: 'model.json', data: 'x.csv', k: '5', trace: true }, 'wasm');
 */
export async function spectrumCommand(v: SpectrumValues, backend: string): Promise<void> {
  if (!v.model) throw new CliError('--model is required');
  if (!v.data) throw new CliError('--data is required');
  const info = findRepresentation(v.representation ?? 'implicit');
  const variant = (v.variant ?? 'classif_logits') as Variant;
  if (!VARIANTS.includes(variant) || variant === 'empirical') throw new CliError(`--variant must be one of ${VARIANTS.filter((x) => x !== 'empirical').join(', ')}, received '${v.variant}'`);
  const kRequested = integerFlag(v.k, '--k', 1, 1000, 10);
  const which = v.which ?? 'largest';
  if (which !== 'largest' && which !== 'smallest') throw new CliError(`--which must be largest or smallest, received '${which}'`);
  const samples = integerFlag(v.samples, '--samples', 3, 10_000, 30);
  const probes = integerFlag(v.probes, '--probes', 1, 1000, 10);
  const steps = integerFlag(v.steps, '--steps', 1, 1000, 80);
  const seed = boundedFlag(v.seed, '--seed', 0);
  const scale = numberFlag(v.scale, '--scale', 'a decimal number such as 0.5 or 1e-2');
  checkOutputFiles({ '--json': v.json, '--report': v.report });
  const flags: SpectrumFlags = { k: kRequested, which, samples, probes, steps, seed, variant, info };
  if (v.redis !== undefined) return spectrumDistributed(v, backend, flags, scale);
  for (const o of ['shards', 'store'] as const) if (v[o] !== undefined) throw new CliError(`--${o} applies to distributed runs only (with --redis)`);
  const { model, batches, n, outputs } = await loadInputs({
    model: v.model, data: v.data, batchSize: positiveInt(v['batch-size'], '--batch-size', 64),
    count: v.count === undefined ? undefined : positiveInt(v.count, '--count'), scale, needLabels: false,
  });
  try {
    const lc = collectLayers(model, v['ignore-unsupported'] ?? false);
    const name = info.representation.representationName;
    const reason = skipReason(info, lc, n, outputs, { maxBytes: 2e9, maxFlops: Infinity });
    if (reason) throw new CliError(`${name} cannot be computed for this model: ${reason}`);
    // Matrix-free: every product is a pass over the data; show the bar of each pass.
    const bar = v.quiet ? undefined : new ProgressBar(name, { total: n });
    const t0 = performance.now();
    const M = await computeFisher(info, { model, loader: batches, layerCollection: lc, variant, onProgress: bar?.onProgress });
    try {
      await reportSpectrum(v, backend, flags, { op: M as unknown as LinearOperator, stored: M instanceof PMatImplicit ? null : (M as PMat), modelName: model.name, n, d: lc.numel(), t0, finish: () => bar?.finish() });
    } finally {
      M.dispose();
    }
  } finally {
    disposeLoader(batches);
    model.dispose();
  }
}

/** The options of `nngeometry spectrum`, checked. */
export interface SpectrumFlags {
  k: number;
  which: 'largest' | 'smallest';
  samples: number;
  probes: number;
  steps: number;
  seed: number;
  variant: Variant;
  info: RepresentationInfo;
}

/**
 * Runs eigsh (and the trace and density when asked) on `ctx.op`, prints the table and writes
 * --json and --report: the part of `nngeometry spectrum` after the matrix (or operator) exists.
 */
export async function reportSpectrum(
  v: SpectrumValues,
  backend: string,
  flags: SpectrumFlags,
  ctx: { op: LinearOperator; stored: PMat | null; modelName: string; n: number; d: number; t0: number; finish(): void },
  /** Fields appended to the JSON (a function: read when the JSON is written, after the products). */
  extra: () => Record<string, unknown> = () => ({}),
): Promise<void> {
  const { which, samples, probes, steps, seed, variant } = flags;
  const { op, n, d, t0 } = ctx;
  const k = Math.min(flags.k, d);
  const name = flags.info.representation.representationName;
  let counter = productCounter('eigsh', v.quiet ?? false);
  const eig = await eigsh(op, { k, which, seed, onProgress: counter.onProgress });
  counter.finish();
  eig.vectors.forEach((x) => x.dispose());
  const eigSeconds = (performance.now() - t0) / 1000;
  let trace: { value: number; standardError: number; samples: number; method: string; exact?: number } | undefined;
  if (v.trace) {
    counter = productCounter('trace', v.quiet ?? false);
    const t = await estimateTrace(op, { samples, seed, onProgress: counter.onProgress });
    counter.finish();
    const exact = ctx.stored ? ctx.stored.trace() : undefined;
    trace = { ...t, method: 'Hutch++', ...(exact === undefined ? {} : { exact }) };
  }
  let density: { nodes: Float64Array; weights: Float64Array; products: number } | undefined;
  if (v.density) {
    counter = productCounter('density', v.quiet ?? false);
    const s = await spectralDensity(op, { probes, steps, seed, onProgress: counter.onProgress });
    counter.finish();
    density = { nodes: s.nodes, weights: s.weights, products: s.products };
  }
  ctx.finish();
  const seconds = (performance.now() - t0) / 1000;
  console.log(`spectrum of the FIM of '${ctx.modelName}' (d = ${d.toLocaleString('en-US')}) on ${n} examples of ${v.data}`);
  console.log(`${name}, variant ${variant}, eigsh route '${eig.route}' (${eig.iterations} products, ${eig.converged ? 'converged' : 'NOT converged'}), tfjs '${backend}'\n`);
  const rows = [
    ['quantity', 'value'],
    ['time (s)', seconds.toFixed(3)],
    ...Array.from(eig.values, (x, i) => [`eigenvalue ${i + 1}${which === 'smallest' ? ' (smallest)' : ''}`, `${num(x)}   (residual ${num(eig.residuals[i]!, 2)})`]),
  ];
  if (trace) rows.push([`trace (Hutch++, ${trace.samples} products, 95%)`, `${num(trace.value)} ± ${num(1.96 * trace.standardError, 3)}${trace.exact === undefined ? '' : `   (exact ${num(trace.exact)})`}`]);
  if (density) rows.push([`density (SLQ ${probes}×${steps})`, `${density.nodes.length} nodes in [${num(Math.min(...density.nodes), 3)}, ${num(Math.max(...density.nodes), 3)}]`]);
  console.log(formatTable(rows));
  if (v.json) {
    const json = {
      model: v.model, data: v.data, examples: n, parameters: d, representation: name, variant, backend, seconds, eigshSeconds: eigSeconds,
      which, route: eig.route, products: eig.iterations, converged: eig.converged, eigenvalues: Array.from(eig.values), residuals: Array.from(eig.residuals),
      trace: trace ?? null,
      density: density ? { probes, steps, products: density.products, nodes: Array.from(density.nodes), weights: Array.from(density.weights) } : null,
      ...extra(),
    };
    await writeOutputFile(v.json, '--json', JSON.stringify(json, null, 2) + '\n');
  }
  if (v.report) {
    const html = buildSpectrumReport({
      title: `Spectrum of the Fisher of ${v.model}`,
      intro: [`${n} examples of ${v.data}, d = ${d} parameters, ${name}, variant ${variant}; tfjs ${tf.version.tfjs} on '${backend}'`],
      rows: rows.slice(1),
      eigenvalues: eig.values,
      ...(trace ? { trace } : {}),
      ...(density ? { density: { name: 'FIM', nodes: density.nodes, weights: density.weights } } : {}),
      footer: 'Generated by nngeometry spectrum.',
    });
    await writeOutputFile(v.report, '--report', html);
    console.error(`wrote ${resolve(v.report)} (${humanBytes(html.length)})`);
  }
}
