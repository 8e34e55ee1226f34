/** Messages between the main thread and the pooled worker threads of a parallel pass. */

/** A tensor as plain data (structured-cloned). */
export interface TensorData {
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  data: Float32Array | Int32Array | Uint8Array;
}

/** The model a task runs on: its weights always, its topology only when the worker lacks it. */
export interface ModelPayload {
  /** Content hash of the topology: a worker keeps the last model it built and reuses it for this key. */
  key: string;
  /** tf.io model topology; absent when the worker already holds the model of `key`. */
  modelTopology?: unknown;
  weightSpecs: unknown;
  weightData: ArrayBuffer;
}

/** What a worker computes: a mergeable representation of the matrix on its share of the data. */
export interface WorkerTask {
  model: ModelPayload;
  layerIds: string[];
  backend: string;
  representation: string;
  variant: string;
  sigma2?: number;
  loss?: string;
  /** file: URL of an ES module the thread imports before rebuilding the model (FIM's `workerSetup`). */
  setup?: string;
  batches: Array<{ xs: TensorData[]; ys?: TensorData }>;
}

/**
 * Control words shared with a running task (Int32Array over a SharedArrayBuffer), read and
 * written with Atomics so that they work while either thread is busy computing: the main thread
 * raises ABORT, the worker publishes its examples done after each batch.
 */
export const CONTROL = { ABORT: 0, EXAMPLES_DONE: 1, LENGTH: 2 } as const;

/** Main thread → worker. */
export interface TaskMessage {
  type: 'task';
  id: number;
  task: WorkerTask;
  control: SharedArrayBuffer;
}

export type WorkerReply = { ok: true; bytes: Uint8Array; examples: number } | { ok: false; message: string; name: string; stack?: string };

/** Worker → main thread. */
export interface ReplyMessage {
  type: 'reply';
  id: number;
  reply: WorkerReply;
}
