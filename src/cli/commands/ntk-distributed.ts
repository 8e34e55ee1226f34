/**
 * `nngeometry ntk … --redis URL`: the same kernel, table, --json and --report as the local
 * command, computed by the `nngeometry worker` processes serving that Redis in tiles of example
 * pairs (at least `--shards` tiles), plus the run id, tile count and retries. Ctrl-C cancels the
 * run's pending jobs.
 */
import { resolve } from 'node:path';
import { distributedNTK } from '../../distributed/ntk-coordinator.js';
import { CliError } from '../errors.js';
import { collectLayers, positiveInt } from '../inputs.js';
import { loadModelFile } from '../model-io.js';
import { progressLine } from './fim-distributed.js';
import { printNtkResult, type NtkValues } from './ntk.js';

/** Runs the distributed `ntk` (options already checked by ntkCommand). */
export async function ntkDistributed(v: NtkValues, backend: string, o: { count: number; scale: number | undefined; topRequested: number }): Promise<void> {
  const shards = positiveInt(v.shards, '--shards', 8);
  const batchSize = positiveInt(v['batch-size'], '--batch-size', 64);
  // The layer collection as the local command builds it (checked here, before any job exists).
  const probe = await loadModelFile(v.model!);
  let layerIds: string[];
  try {
    layerIds = collectLayers(probe, v['ignore-unsupported'] ?? false).ids();
  } finally {
    probe.dispose();
  }
  const bar = v.quiet ? null : progressLine(`NTK on ${v.redis}`, 'tiles');
  const controller = new AbortController();
  const cancel = () => controller.abort();
  process.once('SIGINT', cancel);
  let run;
  try {
    run = await distributedNTK({
      redis: v.redis!, model: v.model!, data: v.data!, count: o.count, batchSize, ...(o.scale !== undefined ? { scale: o.scale } : {}), centering: v.centering ?? false,
      layerIds, shards, ...(v.store ? { store: resolve(v.store) } : {}), ...(v['run-id'] ? { runId: v['run-id'] } : {}), backend,
      signal: controller.signal, ...(bar ? { onProgress: bar.update } : {}),
    });
  } catch (e) {
    // A kernel too large for this machine is the user's to fix, as in the local command.
    if (e instanceof Error && /the kernel would hold/.test(e.message)) throw new CliError(e.message.replace('distributedNTK: ', '').replace("'count'", '--count'));
    throw e;
  } finally {
    process.off('SIGINT', cancel);
    bar?.finish();
  }
  const { kernel, model } = run;
  try {
    const distributed = { redis: v.redis, runId: run.runId, shards: run.shards, retries: run.retries, workers: run.workers, reused: run.reused };
    await printNtkResult(v, { K: kernel, modelName: model.name, backend, seconds: run.seconds, top: o.topRequested }, { distributed });
    console.log(`\nrun ${run.runId}: ${run.shards} tiles, ${run.retries} retried, workers ${run.workers.join(', ') || '—'}${run.reused ? ' (the result of an identical earlier run, reused)' : ''}`);
  } finally {
    kernel.dispose();
    model.dispose();
  }
}
