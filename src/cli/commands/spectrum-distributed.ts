/**
 * `nngeometry spectrum … --redis URL`: the same table, --json and --report as the local command,
 * with the curvature computed by the `nngeometry worker` processes serving that Redis. The
 * matrix-free 'implicit' representation becomes a distributed operator (every product F v one
 * distributed pass, in `--shards` shards); a stored representation is computed once as by
 * `fim --redis` and its spectrum taken here. Ctrl-C cancels the pending jobs.
 */
import { resolve } from 'node:path';
import { distributedFIM } from '../../distributed/coordinator.js';
import { distributedOperator } from '../../distributed/operator.js';
import type { LinearOperator, PMat } from '../../index.js';
import { CliError } from '../errors.js';
import { collectLayers, positiveInt } from '../inputs.js';
import { loadModelFile } from '../model-io.js';
import { unsupportedReason } from '../representations.js';
import { progressLine } from './fim-distributed.js';
import { reportSpectrum, type SpectrumFlags, type SpectrumValues } from './spectrum.js';

/** Runs the distributed `spectrum` (options already checked by spectrumCommand). */
export async function spectrumDistributed(v: SpectrumValues, backend: string, flags: SpectrumFlags, scale: number | undefined): Promise<void> {
  const shards = positiveInt(v.shards, '--shards', 8);
  const batchSize = positiveInt(v['batch-size'], '--batch-size', 64);
  const count = v.count === undefined ? undefined : positiveInt(v.count, '--count');
  const probe = await loadModelFile(v.model!);
  let layerIds: string[];
  try {
    const lc = collectLayers(probe, v['ignore-unsupported'] ?? false);
    const reason = unsupportedReason(flags.info, lc);
    if (reason) throw new CliError(`${flags.info.representation.representationName} cannot be computed for this model: ${reason}`);
    layerIds = lc.ids();
  } finally {
    probe.dispose();
  }
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once('SIGINT', cancel);
  const common = {
    redis: v.redis!, model: v.model!, data: v.data!, variant: flags.variant, batchSize, ...(count ? { count } : {}), ...(scale !== undefined ? { scale } : {}),
    layerIds, shards, ...(v.store ? { store: resolve(v.store) } : {}), backend, signal: controller.signal,
  };
  const t0 = performance.now();
  try {
    if (flags.info.matrixFree) {
      const op = await distributedOperator(common);
      try {
        const extra = () => ({ distributed: { redis: v.redis, shards: op.shards, products: op.stats.products, retries: op.stats.retries, workers: op.stats.workers } });
        await reportSpectrum(v, backend, flags, { op: op as LinearOperator, stored: null, modelName: op.model.name, n: op.examples, d: op.layerCollection.numel(), t0, finish: () => undefined }, extra);
        console.log(`\n${op.stats.products} distributed products of ${op.shards} shards, ${op.stats.retries} retried, workers ${op.stats.workers.join(', ') || '—'}`);
      } finally {
        await op.close();
      }
      return;
    }
    const bar = v.quiet ? null : progressLine(`${flags.info.representation.representationName} on ${v.redis}`);
    let run;
    try {
      run = await distributedFIM({ ...common, representation: flags.info.representation, ...(bar ? { onProgress: bar.update } : {}) });
    } finally {
      bar?.finish();
    }
    try {
      const M = run.matrix as unknown as PMat;
      const distributed = { redis: v.redis, runId: run.runId, shards: run.shards, retries: run.retries, workers: run.workers, reused: run.reused };
      await reportSpectrum(v, backend, flags, { op: M as unknown as LinearOperator, stored: M, modelName: run.model.name, n: run.examples, d: M.layerCollection.numel(), t0, finish: () => undefined }, () => ({ distributed }));
      console.log(`\nrun ${run.runId}: ${run.shards} shards, ${run.retries} retried, workers ${run.workers.join(', ') || '—'}${run.reused ? ' (the result of an identical earlier run, reused)' : ''}`);
    } finally {
      run.matrix.dispose();
      run.model.dispose();
    }
  } finally {
    process.off('SIGINT', cancel);
  }
}
