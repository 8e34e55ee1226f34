/**
 * A pooled worker thread: it stays alive and handles tasks one at a time. Each task brings the
 * model's weights (they change between calls) and, when this thread does not hold the model yet,
 * its topology; the thread computes the matrix on its share of the batches with its own tfjs
 * instance and sends it back serialized (persistence format) with its example count, for an
 * exact example-weighted merge on the main thread.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { FIM, LayerCollection, serialize, type Saveable, type Variant } from '../index.js';
import { threadRepresentation } from '../object/pspace/registry.js';
import { InvalidArgumentError } from '../errors.js';
import { CONTROL, type ReplyMessage, type TaskMessage, type TensorData, type WorkerReply, type WorkerTask } from './protocol.js';

const toTensor = (t: TensorData) => tf.tensor(t.data, t.shape, t.dtype);

let backend: string | undefined;
/** The last model built here and the key of its topology (the main thread mirrors the key). */
let held: { key: string; model: tf.LayersModel } | undefined;

async function useBackend(name: string): Promise<void> {
  if (backend === name) return;
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} could not be set in the worker thread`);
  await tf.ready();
  backend = name;
}

async function modelFor(payload: WorkerTask['model']): Promise<tf.LayersModel> {
  const weightSpecs = payload.weightSpecs as tf.io.WeightsManifestEntry[];
  if (held?.key === payload.key) {
    // Same topology as the previous task: only the weights are new.
    const weights = tf.io.decodeWeights(payload.weightData, weightSpecs);
    try {
      held.model.loadWeights(weights);
    } finally {
      Object.values(weights).forEach((t) => t.dispose());
    }
    return held.model;
  }
  if (payload.modelTopology === undefined) throw new Error(`the worker thread does not hold the model ${payload.key}`);
  held?.model.dispose();
  held = undefined;
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: payload.modelTopology as object, weightSpecs, weightData: payload.weightData }));
  held = { key: payload.key, model };
  return model;
}

/** The `workerSetup` modules imported in this thread (each once; a failed one is retried). */
const setups = new Set<string>();

async function importSetup(href: string): Promise<void> {
  if (setups.has(href)) return;
  try {
    await import(href);
  } catch (e) {
    throw new InvalidArgumentError(`workerSetup module ${href} failed to load in the worker thread: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  setups.add(href);
}

async function run(task: WorkerTask, control: Int32Array): Promise<WorkerReply> {
  await useBackend(task.backend);
  if (task.setup !== undefined) await importSetup(task.setup);
  let model: tf.LayersModel;
  try {
    model = await modelFor(task.model);
  } catch (e) {
    // Typically "Unknown layer: X": a class registered in the main thread only.
    throw new InvalidArgumentError(
      `the worker thread cannot rebuild the model (${e instanceof Error ? e.message : String(e)}); register custom classes in the threads with ` +
        `FIM's workerSetup option (the path of an ES module that calls tf.serialization.registerClass), or use workers: 1`,
    );
  }
  // Any registry representation whose partial results merge (the main thread sends a
  // mergedThrough representation's name, e.g. PMatKFAC for PMatEKFAC).
  const representation = threadRepresentation(task.representation);
  if (!representation) throw new Error(`representation ${task.representation} cannot run in a worker thread`);
  const batches = task.batches.map((b) => ({ xs: b.xs.map(toTensor), ys: b.ys ? toTensor(b.ys) : undefined }));
  // The main thread cannot post into this thread while it computes: it raises a shared flag,
  // checked after every batch, that aborts the pass through an ordinary AbortSignal.
  const abort = new AbortController();
  const poll = () => {
    if (Atomics.load(control, CONTROL.ABORT) !== 0) abort.abort('aborted by the main thread');
  };
  poll();
  try {
    const M = await FIM({
      model,
      loader: batches.map((b) => (b.ys ? { xs: b.xs, ys: b.ys } : { xs: b.xs })),
      representation,
      layerCollection: LayerCollection.fromLayers(model, task.layerIds),
      variant: task.variant as Variant,
      ...(task.sigma2 !== undefined ? { sigma2: task.sigma2 } : {}),
      ...(task.loss !== undefined ? { loss: task.loss as 'cross_entropy' | 'mse' } : {}),
      workers: 1,
      signal: abort.signal,
      onProgress: (p) => {
        Atomics.store(control, CONTROL.EXAMPLES_DONE, p.examplesDone);
        poll();
      },
    });
    try {
      const examples = batches.reduce((a, b) => a + b.xs[0]!.shape[0]!, 0);
      return { ok: true, bytes: serialize(M as Saveable), examples };
    } finally {
      M.dispose();
    }
  } finally {
    batches.forEach((b) => {
      b.xs.forEach((x) => x.dispose());
      b.ys?.dispose();
    });
  }
}

parentPort!.on('message', (message: TaskMessage) => {
  const control = new Int32Array(message.control);
  run(message.task, control).then(
    (reply) => parentPort!.postMessage({ type: 'reply', id: message.id, reply } satisfies ReplyMessage, reply.ok ? [reply.bytes.buffer as ArrayBuffer] : []),
    (e: unknown) => {
      const error = e instanceof Error ? e : new Error(String(e));
      const reply: WorkerReply = { ok: false, name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
      parentPort!.postMessage({ type: 'reply', id: message.id, reply } satisfies ReplyMessage);
    },
  );
});
