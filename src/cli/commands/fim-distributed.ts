/**
 * `nngeometry fim … --redis URL`: the same matrix, table, --json and --report as the local
 * command, computed by the `nngeometry worker` processes serving that Redis in `--shards`
 * shards, plus the run id, shard count and retries. Ctrl-C cancels the run's pending jobs.
 */
import { resolve } from 'node:path';
import { distributedFIM } from '../../distributed/coordinator.js';
import type { DistributedProgress } from '../../distributed/flow.js';
import type { Variant } from '../../index.js';
import { CliError } from '../errors.js';
import { collectLayers, loadInputs, positiveInt } from '../inputs.js';
import { measure } from '../measure.js';
import { loadModelFile } from '../model-io.js';
import { type RepresentationInfo, unsupportedReason } from '../representations.js';
import { disposeLoader } from '../runs.js';
import { printFimResult, writeFimReport, type FimValues } from './fim.js';

/** One progress line on stderr: redrawn on a terminal, at each half of the shards otherwise. */
export function progressLine(label: string, unit = 'shards', stream: NodeJS.WriteStream = process.stderr): { update(p: DistributedProgress): void; finish(): void } {
  let printedHalf = 0;
  let pass = 1;
  let visible = false;
  const t0 = performance.now();
  const render = (p: DistributedProgress) =>
    `${label}${p.passes > 1 ? ` (pass ${p.pass}/${p.passes})` : ''}: ${unit === 'shards' ? `${p.examplesDone}/${p.examplesTotal} examples, ` : ''}${p.shardsDone}/${p.shards} ${unit}, ` +
    `${p.retries} retried, ${p.workers} worker${p.workers === 1 ? '' : 's'}, ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  return {
    update: (p) => {
      if (p.pass !== pass) {
        pass = p.pass;
        printedHalf = 0;
        if (visible) stream.write('\n');
        visible = false;
      }
      if (stream.isTTY) {
        stream.write(`\r${render(p)}`);
        visible = true;
      } else {
        const half = Math.floor((2 * p.shardsDone) / p.shards);
        if (half > printedHalf) {
          printedHalf = half;
          stream.write(`${render(p)}\n`);
        }
      }
    },
    finish: () => {
      if (visible) stream.write('\n');
    },
  };
}

/** Runs the distributed `fim` (options already checked by fimCommand). */
export async function fimDistributed(
  v: FimValues,
  backend: string,
  o: { info: RepresentationInfo; trials: number | undefined; variant: Variant; scale: number | undefined; sigma2: number | undefined; seed: number },
): Promise<void> {
  const shards = positiveInt(v.shards, '--shards', 8);
  const batchSize = positiveInt(v['batch-size'], '--batch-size', 64);
  const count = v.count === undefined ? undefined : positiveInt(v.count, '--count');
  const seed = o.seed;
  // The layer collection as the local command builds it (checked here, before any job exists).
  const probe = await loadModelFile(v.model!);
  let layerIds: string[];
  try {
    const lc = collectLayers(probe, v['ignore-unsupported'] ?? false);
    const reason = unsupportedReason(o.info, lc);
    if (reason) throw new CliError(`${o.info.representation.representationName} cannot be computed for this model: ${reason}`);
    layerIds = lc.ids();
  } finally {
    probe.dispose();
  }
  const name = o.info.representation.representationName;
  const bar = v.quiet ? null : progressLine(`${name} on ${v.redis}`);
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once('SIGINT', cancel);
  let run;
  try {
    run = await distributedFIM({
      redis: v.redis!, model: v.model!, data: v.data!, ...(v.labels ? { labels: v.labels } : {}), representation: o.info.representation,
      variant: o.variant, ...(v.loss ? { loss: v.loss as 'cross_entropy' | 'mse' } : {}), ...(o.sigma2 !== undefined ? { sigma2: o.sigma2 } : {}),
      ...(o.trials ? { trials: o.trials } : {}), seed, batchSize, ...(count ? { count } : {}), ...(o.scale !== undefined ? { scale: o.scale } : {}),
      layerIds, shards, ...(v.store ? { store: resolve(v.store) } : {}), ...(v['run-id'] ? { runId: v['run-id'] } : {}), backend,
      signal: controller.signal, ...(bar ? { onProgress: bar.update } : {}),
    });
  } finally {
    process.off('SIGINT', cancel);
    bar?.finish();
  }
  const { matrix, model } = run;
  try {
    const measurement = await measure(matrix);
    const distributed = { redis: v.redis, runId: run.runId, shards: run.shards, retries: run.retries, workers: run.workers, reused: run.reused };
    const how = printFimResult(v, { modelName: model.name, lc: matrix.layerCollection, n: run.examples, name, variant: o.variant, trials: o.trials, seed, backend, whole: { seconds: run.seconds, measurement } }, { distributed });
    console.log(`\nrun ${run.runId}: ${run.shards} shards, ${run.retries} retried, workers ${run.workers.join(', ') || '—'}${run.reused ? ' (the result of an identical earlier run, reused)' : ''}`);
    if (v.report) {
      // The report's sub-network heatmaps are computed here, on the coordinator's copy of the data.
      const inputs = await loadInputs({ model: v.model!, data: v.data!, labels: v.labels, batchSize, count, scale: o.scale, needLabels: o.variant === 'empirical' });
      try {
        const request = { model: inputs.model, loader: inputs.batches, layerCollection: collectLayers(inputs.model, v['ignore-unsupported'] ?? false), variant: o.variant, monteCarloTrials: o.trials, seed, loss: v.loss as 'cross_entropy' | 'mse' | undefined, sigma2: o.sigma2 };
        await writeFimReport(v, { info: o.info, whole: { seconds: run.seconds, measurement }, request, lc: request.layerCollection, n: run.examples, outputs: inputs.outputs, how });
      } finally {
        disposeLoader(inputs.batches);
        inputs.model.dispose();
      }
    }
  } finally {
    matrix.dispose();
    model.dispose();
  }
}
