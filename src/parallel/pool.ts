/**
 * The pool of worker threads behind `FIM({ workers })` (Node): created lazily, kept between
 * calls (starting a thread, with its own tfjs, wasm module and, from the TypeScript sources, tsx,
 * costs seconds), idle threads `unref()`'d so that they never keep the process alive. A thread
 * that crashes or is terminated leaves the pool and is replaced by the next call that needs it.
 */
import type { Worker } from 'node:worker_threads';
import { NNGeometryError, WorkerThreadError } from '../errors.js';
import * as errors from '../errors.js';
import type { ReplyMessage, TaskMessage, WorkerReply, WorkerTask } from './protocol.js';
import { CONTROL } from './protocol.js';
import { nodeBuiltin } from '../platform/node-builtin.js';

interface PooledWorker {
  worker: Worker;
  busy: boolean;
  /** The topology key of the model the thread holds (mirrors the thread's own cache). */
  modelKey?: string;
  /** The task in flight: settles its promise when the thread replies, fails or exits. */
  pending?: { id: number; resolve: (r: WorkerReply) => void; reject: (e: Error) => void };
}

/** A task running on one pooled thread. */
export interface RunningTask {
  /** The thread's reply; rejects with WorkerThreadError when the thread dies. */
  reply: Promise<WorkerReply>;
  /** Control words shared with the thread (see CONTROL). */
  control: Int32Array;
}

const pool: PooledWorker[] = [];
let started = 0;
let nextTaskId = 1;

async function spawn(): Promise<PooledWorker> {
  const { Worker } = await nodeBuiltin('worker_threads', 'FIM({ workers })');
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url);
  // From the sources a thread registers tsx before loading the worker module.
  const worker = fromSources ? new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), { workerData: { entry: entry.href } }) : new Worker(entry);
  started++;
  const slot: PooledWorker = { worker, busy: false };
  const fail = (error: Error) => {
    const i = pool.indexOf(slot);
    if (i >= 0) pool.splice(i, 1);
    const pending = slot.pending;
    slot.pending = undefined;
    pending?.reject(error);
  };
  worker.on('message', (m: ReplyMessage) => {
    const pending = slot.pending;
    if (m.type !== 'reply' || pending?.id !== m.id) return;
    slot.pending = undefined;
    slot.busy = false;
    worker.unref();
    pending.resolve(m.reply);
  });
  worker.on('error', (e: Error) => fail(new WorkerThreadError(`worker thread ${worker.threadId} crashed: ${e.name}: ${e.message}`, { cause: e })));
  worker.on('exit', (code: number) => fail(new WorkerThreadError(`worker thread exited (code ${code}) before replying`)));
  worker.unref();
  pool.push(slot);
  return slot;
}

/** Takes `count` idle threads, starting new ones when the pool has too few. */
async function acquire(count: number): Promise<PooledWorker[]> {
  const taken = pool.filter((w) => !w.busy).slice(0, count);
  while (taken.length < count) taken.push(await spawn());
  taken.forEach((w) => {
    w.busy = true;
    // A thread with a task keeps the process alive until it replies.
    w.worker.ref();
  });
  return taken;
}

/**
 * Runs each task on its own pooled thread. `withModel(task, held)` completes a task's model
 * payload knowing whether the thread already holds the model of that key (then only the
 * weights travel).
 */
export async function runTasks(tasks: ReadonlyArray<(holdsModel: (key: string) => boolean) => WorkerTask>): Promise<RunningTask[]> {
  const slots = await acquire(tasks.length);
  return slots.map((slot, k) => {
    const task = tasks[k]!((key) => slot.modelKey === key);
    const control = new Int32Array(new SharedArrayBuffer(CONTROL.LENGTH * Int32Array.BYTES_PER_ELEMENT));
    const id = nextTaskId++;
    const reply = new Promise<WorkerReply>((resolve, reject) => {
      slot.pending = { id, resolve, reject };
    });
    // The thread caches the model it builds; a failed task may have dropped it, so forget it then.
    slot.modelKey = undefined;
    void reply.then((r) => {
      if (r.ok) slot.modelKey = task.model.key;
    }, () => undefined);
    slot.worker.postMessage({ type: 'task', id, task, control: control.buffer as SharedArrayBuffer } satisfies TaskMessage);
    return { reply, control };
  });
}

/** The error a failed reply stands for: the library's own error class when the thread threw one. */
export function replyError(reply: Extract<WorkerReply, { ok: false }>, where: string): Error {
  const known = (errors as Record<string, unknown>)[reply.name];
  const message = `${where}: ${reply.message}`;
  if (typeof known === 'function' && known.prototype instanceof NNGeometryError) {
    return new (known as new (m: string) => Error)(message);
  }
  return new WorkerThreadError(`${where} failed with ${reply.name}: ${reply.message}`);
}

/**
 * Terminates the worker threads that `FIM({ workers })` keeps between calls, releasing their
 * memory; a later call starts new ones. Idle threads never keep the process alive, so calling
 * this is optional; a task still running is rejected with WorkerThreadError.
 *
 * @example
 * const F = await FIM({ model, loader, representation: PMatDiag, workers: 2 });
 * await terminateWorkers();
 */
export async function terminateWorkers(): Promise<void> {
  const all = pool.splice(0, pool.length);
  await Promise.all(all.map((w) => w.worker.terminate()));
}

/** The pool as it stands (tests, benchmarks): live threads, idle ones, and threads started so far. */
export function workerPoolInfo(): { size: number; idle: number; started: number; threadIds: number[] } {
  return { size: pool.length, idle: pool.filter((w) => !w.busy).length, started, threadIds: pool.map((w) => w.worker.threadId) };
}
