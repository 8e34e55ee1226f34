/**
 * The pass over the data split across worker threads (Node): tfjs-wasm runs single-threaded, so
 * each worker runs its own tfjs instance on a copy of the model and a contiguous share of the
 * batches; the partial matrices come back serialized and are merged exactly, weighted by
 * their example counts (mergePartial). Eligible: an array of batches, a representation whose
 * registry entry merges (`merge`, or `mergedThrough` another: EKFAC through its KFAC factors),
 * a named loss, and layers tfjs can rebuild from the model's JSON.
 */
import { tf } from '../tf.js';
import { AbortedError } from '../errors.js';
import type { Loader } from '../data/loader.js';
import type { PassSpec, Progress } from '../backend/pass.js';
import { deserialize } from '../persistence/index.js';
import { mergePartial, type Mergeable } from '../persistence/merge.js';
import type { PMat, PMatBase, Representation } from '../object/pspace/pmat.js';
import { entryOfRepresentation, mergeableRepresentations } from '../object/pspace/registry.js';
import { checkClassLabels } from '../metrics/labels.js';
import { CONTROL, type TensorData, type WorkerTask } from './protocol.js';
import { replyError, runTasks, workerPoolInfo } from './pool.js';
import { layerUnknownToThreads, unknownLayerAdvice } from './custom-layers.js';
import { capSimdThreads } from '../backend/kernels/simd/module.js';
import { nodeBuiltin } from '../platform/node-builtin.js';

/** Representations whose partial results merge (the registry's `merge` or `mergedThrough`). */
const MERGEABLE: ReadonlyArray<Representation<PMatBase>> = mergeableRepresentations();

/**
 * Examples from which `workers: 'auto'` splits a pass when the pool must first start its
 * threads (the first call, or after terminateWorkers). Starting a thread (its own tfjs, wasm
 * module and model; tsx too from the TypeScript sources) measured 1.1–1.6 s (cold − warm call);
 * a second thread saves at most half the pass, and a 1-thread FIM on the MLP 784-512-512-10
 * took 1.4–2.3 s for 4,096 examples but 4.2–4.4 s for 8,192: only from 8,192 does the saving
 * exceed the start-up in the call that pays it (docs/performance.md, "Worker threads").
 */
export const AUTO_MIN_EXAMPLES = 8192;

/**
 * Examples from which `workers: 'auto'` splits a pass when the pool already holds enough idle
 * threads: only the weights, the batches and the partial matrices travel then, and the merge
 * runs here, a fixed 110–190 ms measured on that MLP (670k parameters) on a loaded machine;
 * from 1,024 examples half the pass (180–275 ms) outweighs it.
 */
export const AUTO_MIN_EXAMPLES_WARM = 1024;

interface ParallelRequest {
  spec: PassSpec;
  representation: Representation<PMatBase>;
  variant: string;
  sigma2?: number;
  loss?: unknown;
  workers: number | 'auto';
  /** file: URL of the module each thread imports before rebuilding the model (custom layer classes). */
  workerSetup?: string;
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

/**
 * The number of threads to use (this one included), or the reason not to. 'auto' decides from
 * the request alone — its examples, the machine's cores and whether this process's pool already
 * holds the threads — never from the momentary load of the machine, so that the same call
 * computes (and fails) the same way whatever else runs.
 */
export async function planWorkers(req: ParallelRequest): Promise<{ threads: number } | { reason: string }> {
  if (typeof process === 'undefined' || !process.versions?.node) return { reason: 'worker threads need Node' };
  if (!MERGEABLE.includes(req.representation)) return { reason: `${req.representation.representationName} (as passed) cannot be merged across threads` };
  if (typeof req.loss === 'function') return { reason: 'a loss function cannot be sent to a thread (use a named loss)' };
  const foreign = req.workerSetup === undefined ? layerUnknownToThreads(req.spec.model) : null;
  if (foreign) return { reason: unknownLayerAdvice(foreign) };
  const batches = plainBatches(req.spec.loader);
  if (typeof batches === 'string') return { reason: batches };
  const examples = batches.reduce((a, b) => a + (b.xs[0]?.shape[0] ?? 0), 0);
  let wanted = req.workers;
  let why = '';
  if (wanted === 'auto') {
    const os = await nodeBuiltin('os', "FIM({ workers: 'auto' })");
    const cores = Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
    const warm = workerPoolInfo().idle >= cores - 1;
    const min = warm ? AUTO_MIN_EXAMPLES_WARM : AUTO_MIN_EXAMPLES;
    wanted = examples >= min ? cores : 1;
    why = `auto: ${cores} core(s), ${examples} examples (${warm ? 'warm' : 'cold'} pool: threads from ${min}), ${batches.length} batch(es)`;
  }
  const threads = Math.min(wanted, batches.length);
  if (threads < 2) return { reason: why || `only ${batches.length} batch(es) to share` };
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

/** FNV-1a of the topology's JSON: the key under which a thread keeps the model it built. */
function topologyKey(topology: unknown): string {
  const text = JSON.stringify(topology);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return `${(h >>> 0).toString(16)}-${text.length}`;
}

const examplesOf = (share: ReadonlyArray<PlainBatch>) => share.reduce((a, b) => a + b.xs[0]!.shape[0]!, 0);

/** Contiguous shares of about equal example counts; the first one stays in this thread. */
function split(batches: PlainBatch[], threads: number): PlainBatch[][] {
  const total = examplesOf(batches);
  const shares: PlainBatch[][] = Array.from({ length: threads }, () => []);
  let done = 0;
  for (const b of batches) {
    const n = b.xs[0]!.shape[0]!;
    // By the batch's middle example, so that a share boundary falls on the nearest batch edge.
    shares[Math.min(threads - 1, Math.floor(((done + n / 2) * threads) / total))]!.push(b);
    done += n;
  }
  return shares.filter((s) => s.length > 0);
}

/**
 * Class-index labels of all shares, checked here so that a LabelError names the example's index
 * in the whole pass (a thread only knows its share) and before any thread starts working.
 */
function checkLabelsOfShares(req: ParallelRequest, batches: PlainBatch[]): void {
  if (req.variant !== 'empirical' || req.loss !== 'cross_entropy') return;
  const dims = req.spec.model.outputs[0]?.shape.slice(1) ?? [];
  if (!dims.every((d): d is number => typeof d === 'number')) return; // the threads check them
  const classes = dims.reduce((a, b) => a * b, 1);
  let first = 0;
  for (const b of batches) {
    if (b.ys && !b.ys.isDisposed && (b.ys.rank === 1 || (b.ys.rank === 2 && b.ys.shape[1] === 1))) checkClassLabels(b.ys, classes, `variant 'empirical' with loss 'cross_entropy'`, first);
    first += b.xs[0]!.shape[0]!;
  }
}

/**
 * Runs the pass on `threads` threads (this one and threads − 1 pooled workers, each on a
 * contiguous share of the batches) and merges the partial matrices exactly.
 */
export async function computeInWorkers(req: ParallelRequest, threads: number): Promise<PMatBase> {
  const { spec } = req;
  const batches = plainBatches(spec.loader) as PlainBatch[];
  checkLabelsOfShares(req, batches);
  const [mine, ...theirs] = split(batches, threads);
  const total = examplesOf(batches);
  const artifacts = await modelArtifacts(spec.model);
  const key = topologyKey(artifacts.modelTopology);
  const weightData = tf.io.concatenateArrayBuffers([artifacts.weightData as ArrayBuffer].flat());
  // A representation merged through another (EKFAC through KFAC factors) is computed as that one in every share.
  const entry = entryOfRepresentation(req.representation);
  const inThreads = entry?.mergedThrough ?? req.representation;
  const running = await runTasks(
    theirs.map((share) => (holdsModel: (key: string) => boolean): WorkerTask => ({
      model: { key, weightSpecs: artifacts.weightSpecs, weightData, ...(holdsModel(key) ? {} : { modelTopology: artifacts.modelTopology }) },
      layerIds: spec.layerCollection.ids(),
      backend: tf.getBackend(),
      representation: inThreads.representationName,
      variant: req.variant,
      ...(req.sigma2 !== undefined ? { sigma2: req.sigma2 } : {}),
      ...(typeof req.loss === 'string' ? { loss: req.loss } : {}),
      ...(req.workerSetup !== undefined ? { setup: req.workerSetup } : {}),
      batches: share.map((b) => ({ xs: b.xs.map(tensorData), ...(b.ys ? { ys: tensorData(b.ys) } : {}) })),
    })),
  );
  // Progress: this thread's examples plus those the threads publish after each of their batches.
  let mineDone = 0;
  let reported = -1;
  const report = () => {
    const done = mineDone + running.reduce((a, r) => a + Atomics.load(r.control, CONTROL.EXAMPLES_DONE), 0);
    if (done > reported) spec.onProgress?.({ examplesDone: (reported = done), examplesTotal: total } satisfies Progress);
  };
  const abortThreads = () => running.forEach((r) => Atomics.store(r.control, CONTROL.ABORT, 1));
  spec.signal?.addEventListener('abort', abortThreads);
  const ticker = setInterval(report, 100);
  ticker.unref();
  const parts: Array<{ matrix: Mergeable; examples: number }> = [];
  // Every core already computes a share: this thread's kernels stay on this core.
  const uncapSimd = capSimdThreads(1);
  try {
    const own = (await inThreads.compute({
      ...spec,
      loader: (spec.loader as unknown[]).slice(0, mine!.length) as Loader,
      onProgress: (p) => {
        mineDone = p.examplesDone;
        report();
      },
    })) as Mergeable;
    parts.push({ matrix: own, examples: examplesOf(mine!) });
    const replies = await Promise.all(running.map((r) => r.reply));
    for (const [k, reply] of replies.entries()) {
      if (!reply.ok) throw replyError(reply, `worker thread ${k + 1} of ${running.length}`);
      // The parts live on collections rebuilt from the model, equal to spec.layerCollection.
      parts.push({ matrix: deserialize(reply.bytes, spec.model) as Mergeable, examples: reply.examples });
    }
    uncapSimd();
    report();
    if (spec.signal?.aborted) throw new AbortedError('the parallel pass was aborted; no partial result is kept');
    const merged = parts.length === 1 ? parts.pop()!.matrix : mergePartial(parts);
    // planWorkers accepts a mergedThrough entry only with its fromMerged (mergeableRepresentations).
    if (!entry?.mergedThrough || !entry.fromMerged) return merged;
    try {
      return entry.fromMerged(merged as PMat, spec);
    } finally {
      merged.dispose();
    }
  } catch (e) {
    // Stop the other threads at their next batch and wait for them: the pool stays usable.
    abortThreads();
    await Promise.allSettled(running.map((r) => r.reply));
    throw e;
  } finally {
    uncapSimd();
    clearInterval(ticker);
    spec.signal?.removeEventListener('abort', abortThreads);
    parts.forEach((p) => p.matrix.dispose());
  }
}
