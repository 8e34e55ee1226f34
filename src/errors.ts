/**
 * Error hierarchy of the library. Every error names the culprit (argument, layer, shape,
 * variant) and the way out, so that a wrong input never turns into a silently wrong number.
 */

/** Base class of every error thrown by nngeometry. */
export class NNGeometryError extends Error {
  /** An error whose message names the culprit and the way out; `name` is the subclass name. */
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A layer with trainable weights that no registered layer kind handles. */
export class UnsupportedLayerError extends NNGeometryError {}

/** A tensor, vector or batch whose shape does not match what the operation needs. */
export class ShapeMismatchError extends NNGeometryError {}

/** Two objects built on different layer collections were combined. */
export class LayerCollectionMismatchError extends NNGeometryError {}

/** An option or argument outside its allowed set or range. */
export class InvalidArgumentError extends NNGeometryError {}

/** A target read as a class index that is not an integer in [0, classes); the message names the example, the value and the number of classes. */
export class LabelError extends InvalidArgumentError {}

/** NaN or ±Infinity where finite numbers are required. */
export class NonFiniteError extends NNGeometryError {}

/** An object used after `dispose()`. */
export class DisposedError extends NNGeometryError {}

/** A matrix that had to be positive definite (for a Cholesky factorisation) is not. */
export class NotPositiveDefiniteError extends NNGeometryError {}

/** The loader yielded no examples. */
export class EmptyLoaderError extends NNGeometryError {}

/** A backend kernel failed its self-test against the reference cpu backend. */
export class KernelSelfTestError extends NNGeometryError {}

/** A pass over the data stopped because its AbortSignal fired; every tensor was released. */
export class AbortedError extends NNGeometryError {}

/** A worker thread failed outside the library's own errors (a crash, an exit, a foreign error); the message names the cause. */
export class WorkerThreadError extends NNGeometryError {
  /** The thread's error as `message`, the original error as `options.cause`. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options && 'cause' in options) this.cause = options.cause;
  }
}

/**
 * A distributed pass (BullMQ on Redis) failed: Redis unreachable or gone, a shard that failed
 * all its attempts (its error is in the message), a worker whose model or data differ from the
 * coordinator's, a partial whose content hash does not verify.
 */
export class DistributedError extends NNGeometryError {}
