/**
 * The compute threads of a worker process (one per concurrent job): tasks are queued and handed
 * to the first idle thread; a thread that crashes fails its task and is replaced. Node only.
 */
import type { Worker } from 'node:worker_threads';
import { DistributedError } from '../errors.js';
import type { PassDefinition } from './protocol.js';

/** Examples [start, end) of a shard, and the columns of an NTK tile. */
export interface ShardSpan {
  index: number;
  start: number;
  end: number;
  columns?: { start: number; end: number };
}

/** One partial of a merge, in merge order (with its span for NTK tiles). */
export interface MergePart {
  bytes: Uint8Array;
  examples: number;
  start?: number;
  end?: number;
  columns?: { start: number; end: number };
}

export type ComputeTask =
  | { id: number; type: 'shard'; pass: PassDefinition; shard: ShardSpan; basis: Uint8Array | null }
  | { id: number; type: 'merge'; pass: PassDefinition; parts: MergePart[] };

export type ComputeReply =
  | { id: number; type: 'progress'; examplesDone: number }
  | { id: number; type: 'done'; bytes: Uint8Array; examples: number }
  | { id: number; type: 'failed'; name: string; message: string };

type Pending = { task: ComputeTask; resolve: (r: { bytes: Uint8Array; examples: number }) => void; reject: (e: Error) => void; onProgress?: (done: number) => void };
type Slot = { worker: Worker; current: Pending | null };

/** An error from a compute thread, with the name of the original error kept in the message. */
function threadError(name: string, message: string): Error {
  const e = name === 'DistributedError' ? new DistributedError(message) : new Error(message);
  if (name !== 'DistributedError') e.name = name;
  return e;
}

export class ComputePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  private constructor() {}

  /** A pool of `threads` compute threads, started and ready. */
  static async start(threads: number): Promise<ComputePool> {
    const pool = new ComputePool();
    for (let i = 0; i < threads; i++) pool.slots.push(await pool.spawn());
    return pool;
  }

  private async spawn(): Promise<Slot> {
    const { Worker } = await import('node:worker_threads');
    const fromSources = import.meta.url.endsWith('.ts');
    const entry = new URL(fromSources ? './compute-thread.ts' : './compute-thread.js', import.meta.url);
    // From the sources the thread registers tsx first (the same bootstrap as the worker-thread pool).
    const worker = fromSources ? new Worker(new URL('../parallel/worker-bootstrap.mjs', import.meta.url), { workerData: { entry: entry.href } }) : new Worker(entry);
    const slot: Slot = { worker, current: null };
    worker.on('message', (reply: ComputeReply) => {
      const p = slot.current;
      if (!p || p.task.id !== reply.id) return;
      if (reply.type === 'progress') return p.onProgress?.(reply.examplesDone);
      slot.current = null;
      if (reply.type === 'done') p.resolve({ bytes: reply.bytes, examples: reply.examples });
      else p.reject(threadError(reply.name, reply.message));
      this.pump();
    });
    const lost = (why: string) => {
      const p = slot.current;
      slot.current = null;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      p?.reject(new DistributedError(`worker: the compute thread ${why}`));
      if (!this.closed) void this.spawn().then((s) => (this.slots.push(s), this.pump()));
    };
    worker.on('error', (e: Error) => lost(`crashed (${e.name}: ${e.message})`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    return slot;
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.current || this.queue.length === 0) continue;
      const p = this.queue.shift()!;
      slot.current = p;
      slot.worker.postMessage(p.task);
    }
  }

  /** Runs a task on the next idle thread. */
  run(task: Omit<Extract<ComputeTask, { type: 'shard' }>, 'id'> | Omit<Extract<ComputeTask, { type: 'merge' }>, 'id'>, onProgress?: (done: number) => void): Promise<{ bytes: Uint8Array; examples: number }> {
    if (this.closed) return Promise.reject(new DistributedError('worker: the compute threads are closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task: { ...task, id: this.nextId++ } as ComputeTask, resolve, reject, ...(onProgress ? { onProgress } : {}) });
      this.pump();
    });
  }

  /** Stops every thread; queued and running tasks fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new DistributedError('worker: shutting down'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
