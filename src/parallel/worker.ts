/**
 * Worker thread of a parallel pass: rebuilds the model from its artifacts with its own tfjs
 * instance, computes the matrix on its share of the batches, and sends it back serialized
 * (persistence format) with its example count, for an exact example-weighted merge.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { FIM, LayerCollection, PMatBlockDiag, PMatDense, PMatDiag, PMatKFAC, PMatLowRank, PMatQuasiDiag, serialize, type PMatBase, type Representation, type Saveable, type Variant } from '../index.js';
import type { TensorData, WorkerReply, WorkerTask } from './protocol.js';

const representations = { PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatQuasiDiag } as const;

const toTensor = (t: TensorData) => tf.tensor(t.data, t.shape, t.dtype);

async function run(task: WorkerTask): Promise<WorkerReply> {
  if (task.backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend(task.backend);
  await tf.ready();
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: task.modelTopology as object, weightSpecs: task.weightSpecs as tf.io.WeightsManifestEntry[], weightData: task.weightData }),
  );
  const batches = task.batches.map((b) => ({ xs: b.xs.map(toTensor), ys: b.ys ? toTensor(b.ys) : undefined }));
  const representation = representations[task.representation as keyof typeof representations] as Representation<PMatBase> | undefined;
  if (!representation) throw new Error(`representation ${task.representation} cannot run in a worker`);
  const M = await FIM({
    model,
    loader: batches.map((b) => (b.ys ? { xs: b.xs, ys: b.ys } : { xs: b.xs })),
    representation,
    layerCollection: LayerCollection.fromLayers(model, task.layerIds),
    variant: task.variant as Variant,
    ...(task.sigma2 !== undefined ? { sigma2: task.sigma2 } : {}),
    ...(task.loss !== undefined ? { loss: task.loss as 'cross_entropy' | 'mse' } : {}),
  });
  const bytes = serialize(M as Saveable);
  const examples = batches.reduce((a, b) => a + b.xs[0]!.shape[0]!, 0);
  M.dispose();
  return { ok: true, bytes, examples };
}

run((workerData as { task: WorkerTask }).task).then(
  (reply) => parentPort!.postMessage(reply),
  (e: Error) => parentPort!.postMessage({ ok: false, message: e.message, name: e.name } satisfies WorkerReply),
);
