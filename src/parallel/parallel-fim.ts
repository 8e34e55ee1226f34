/**
 * The pass over the data split across worker threads (Node): tfjs-wasm runs single-threaded, so
 * each worker runs its own tfjs instance on a copy of the model and a contiguous share of the
 * batches; the partial matrices come back serialized and are merged exactly, weighted by
 * their example counts (mergePartial). Eligible: an array of batches, a mergeable
 * representation (Dense, Diag, BlockDiag, LowRank, KFAC, QuasiDiag, and EKFAC through its KFAC
 * factors), a named loss, and layers tfjs can rebuild from the model's JSON.
 */
import { tf } from '../tf.js';
import { AbortedError, InvalidArgumentError } from '../errors.js';
import type { Loader } from '../data/loader.js';
import type { PassSpec, Progress } from '../backend/engine.js';
import { deserialize } from '../persistence/index.js';
import { mergePartial, type Mergeable } from '../persistence/merge.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatLowRank } from '../object/pspace/low-rank.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatQuasiDiag } from '../object/pspace/quasi-diag.js';
import { PMatEKFAC, kfacEigenBlocks } from '../object/pspace/ekfac.js';
import type { PMatBase, Representation } from '../object/pspace/pmat.js';
import type { TensorData, WorkerReply, WorkerTask } from './protocol.js';

const MERGEABLE: ReadonlyArray<Representation<PMatBase>> = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatQuasiDiag, PMatEKFAC];

/**
 * Minimum number of examples for `workers: 'auto'` to use threads: starting a thread (its own
 * tfjs, wasm module and model) costs seconds (3.5–5 s measured from the TypeScript sources on a
 * loaded 2-core machine), so only long passes gain.
 */
export const AUTO_MIN_EXAMPLES = 8192;

interface ParallelRequest {
  spec: PassSpec;
  representation: Representation<PMatBase>;
  variant: string;
  sigma2?: number;
  loss?: unknown;
  workers: number | 'auto';
}

type PlainBatch = { xs: tf.Tensor[]; ys?: tf.Tensor };

function plainBatches(loader: Loader): PlainBatch[] | string {
  if (!Array.isArray(loader)) return 'the loader is not an array of batches';
  const out: PlainBatch[] = [];
  for (const b of loader as unknown[]) {
    if (b instanceof tf.Tensor) out.push({ xs: [b] });
    else if (Array.isArray(b)) out.push({ xs: Array.isArray(b[0]) ? (b[0] as tf.Tensor[]) : [b[0] as tf.Tensor], ys: b[1] as tf.Tensor | undefined });
    else if (b && typeof b === 'object' && 'xs' in b) {
      const { xs, ys } = b as { xs: tf.Tensor | tf.Tensor[]; ys?: tf.Tensor };
      out.push({ xs: Array.isArray(xs) ? xs : [xs], ys });
    } else return 'a batch is not {xs, ys}, [xs, ys] or a tensor';
  }
  return out;
}

/** The number of threads to use, or the reason not to (undefined reason = use them). */
export async function planWorkers(req: ParallelRequest): Promise<{ threads: number } | { reason: string }> {
  if (typeof process === 'undefined' || !process.versions?.node) return { reason: 'worker threads need Node' };
  if (!MERGEABLE.includes(req.representation)) return { reason: `${req.representation.representationName} (as passed) cannot be merged across threads` };
  if (typeof req.loss === 'function') return { reason: 'a loss function cannot be sent to a thread (use a named loss)' };
  const batches = plainBatches(req.spec.loader);
  if (typeof batches === 'string') return { reason: batches };
  const os = await import('node:os');
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const examples = batches.reduce((a, b) => a + (b.xs[0]?.shape[0] ?? 0), 0);
  // 'auto' counts only the cores the rest of the machine leaves free (1-minute load average).
  const free = Math.max(1, Math.floor(cores - os.loadavg()[0]! + 0.5));
  const wanted = req.workers === 'auto' ? (examples >= AUTO_MIN_EXAMPLES ? free : 1) : req.workers;
  const threads = Math.min(wanted, batches.length);
  if (threads < 2) {
    return { reason: req.workers === 'auto' ? `auto: ${free} free core(s), ${examples} examples, ${batches.length} batch(es)` : `only ${batches.length} batch(es) to share` };
  }
  return { threads };
}

function tensorData(t: tf.Tensor): TensorData {
  return { shape: t.shape, dtype: t.dtype as TensorData['dtype'], data: t.dataSync() as TensorData['data'] };
}

async function modelArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return saved!;
}

/** Runs the pass on `threads` workers and merges their matrices. */
export async function computeInWorkers(req: ParallelRequest, threads: number): Promise<PMatBase> {
  const { spec } = req;
  const batches = plainBatches(spec.loader) as PlainBatch[];
  const artifacts = await modelArtifacts(spec.model);
  const weightData = tf.io.concatenateArrayBuffers([artifacts.weightData as ArrayBuffer].flat());
  const inWorker = req.representation === PMatEKFAC ? 'PMatKFAC' : req.representation.representationName;
  // Contiguous shares of about equal example counts.
  const total = batches.reduce((a, b) => a + b.xs[0]!.shape[0]!, 0);
  const shares: PlainBatch[][] = Array.from({ length: threads }, () => []);
  let done = 0;
  for (const b of batches) {
    shares[Math.min(threads - 1, Math.floor((done * threads) / total))]!.push(b);
    done += b.xs[0]!.shape[0]!;
  }
  const { Worker } = await import('node:worker_threads');
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url);
  const workers: Array<InstanceType<typeof Worker>> = [];
  let finished = 0;
  const replies = shares.map((share) => {
    const task: WorkerTask = {
      modelTopology: artifacts.modelTopology,
      weightSpecs: artifacts.weightSpecs,
      weightData,
      layerIds: spec.layerCollection.ids(),
      backend: tf.getBackend(),
      representation: inWorker,
      variant: req.variant,
      ...(req.sigma2 !== undefined ? { sigma2: req.sigma2 } : {}),
      ...(typeof req.loss === 'string' ? { loss: req.loss } : {}),
      batches: share.map((b) => ({ xs: b.xs.map(tensorData), ...(b.ys ? { ys: tensorData(b.ys) } : {}) })),
    };
    const worker = fromSources
      ? new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), { workerData: { entry: entry.href, task } })
      : new Worker(entry, { workerData: { task } });
    workers.push(worker);
    return new Promise<WorkerReply>((resolve, reject) => {
      worker.once('message', (m: WorkerReply) => {
        finished += share.reduce((a, b) => a + b.xs[0]!.shape[0]!, 0);
        spec.onProgress?.({ examplesDone: finished, examplesTotal: total } satisfies Progress);
        resolve(m);
      });
      worker.once('error', reject);
    });
  });
  const onAbort = () => workers.forEach((w) => void w.terminate());
  spec.signal?.addEventListener('abort', onAbort);
  try {
    const settled = await Promise.race([
      Promise.all(replies),
      new Promise<never>((_, reject) => spec.signal?.addEventListener('abort', () => reject(new AbortedError('the parallel pass was aborted')))),
    ]);
    const failed = settled.find((r): r is Extract<WorkerReply, { ok: false }> => !r.ok);
    if (failed) throw new InvalidArgumentError(`a worker thread failed: ${failed.name}: ${failed.message}`);
    const parts = settled.map((r) => {
      const ok = r as Extract<WorkerReply, { ok: true }>;
      return { matrix: deserialize(ok.bytes, spec.model) as Mergeable, examples: ok.examples };
    });
    try {
      // The parts live on collections rebuilt from the model, equal to spec.layerCollection.
      const merged = mergePartial(parts);
      if (req.representation !== PMatEKFAC) return merged;
      const kfac = merged as PMatKFAC;
      const factors = spec.layerCollection.layers.map((e) => kfac.layerFactors(e.id));
      kfac.dispose();
      return new PMatEKFAC(spec.layerCollection, kfacEigenBlocks(factors), 'kfac', spec);
    } finally {
      parts.forEach((p) => p.matrix.dispose());
    }
  } finally {
    spec.signal?.removeEventListener('abort', onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

