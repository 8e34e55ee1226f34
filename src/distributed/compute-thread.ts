/**
 * Entry of a worker's compute thread: it runs shard and merge tasks one at a time with its own
 * tfjs instance and replies with persistence bytes, so that the worker's main thread keeps its
 * event loop free for BullMQ's lock renewal and stalled-job checks during long passes.
 */
import { parentPort } from 'node:worker_threads';
import { computeShard, mergeShards } from './compute.js';
import type { ComputeReply, ComputeTask } from './compute-pool.js';

parentPort!.on('message', (task: ComputeTask) => {
  const run = async (): Promise<ComputeReply> => {
    if (task.type === 'shard') {
      const { bytes, examples } = await computeShard(task.pass, task.shard, task.basis, (p) =>
        parentPort!.postMessage({ id: task.id, type: 'progress', examplesDone: p.examplesDone } satisfies ComputeReply),
      );
      return { id: task.id, type: 'done', bytes, examples };
    }
    const bytes = await mergeShards(task.pass, task.parts);
    return { id: task.id, type: 'done', bytes, examples: task.parts.reduce((a, p) => a + p.examples, 0) };
  };
  run().then(
    (reply) => parentPort!.postMessage(reply, reply.type === 'done' ? [reply.bytes.buffer as ArrayBuffer] : []),
    (e: unknown) => {
      const error = e instanceof Error ? e : new Error(String(e));
      parentPort!.postMessage({ id: task.id, type: 'failed', name: error.name, message: error.message } satisfies ComputeReply);
    },
  );
});
