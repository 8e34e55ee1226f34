/** Messages between the main thread and the worker threads of a parallel pass. */

/** A tensor as plain data (transferable). */
export interface TensorData {
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  data: Float32Array | Int32Array | Uint8Array;
}

/** What a worker computes: a mergeable representation of the matrix on its share of the data. */
export interface WorkerTask {
  /** tf.io model artifacts (topology, weight specs, weight data). */
  modelTopology: unknown;
  weightSpecs: unknown;
  weightData: ArrayBuffer;
  layerIds: string[];
  backend: string;
  representation: string;
  variant: string;
  sigma2?: number;
  loss?: string;
  batches: Array<{ xs: TensorData[]; ys?: TensorData }>;
}

export type WorkerReply = { ok: true; bytes: Uint8Array; examples: number } | { ok: false; message: string; name: string };
