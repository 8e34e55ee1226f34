/**
 * Turns what users call "data" into a stream of batches: a tf.data.Dataset of `{xs, ys}` or
 * `[xs, ys]` elements, an array or (async) iterable of such batches, or one batch. `xs` may be
 * one tensor or an array of tensors (models with several inputs).
 *
 * Ownership: tensors produced by a tf.data.Dataset belong to the consumer and are disposed
 * after use; tensors the user passes in arrays or iterables are never disposed.
 */
import { tf } from '../tf.js';
import { describe } from '../object/arguments.js';
import { DisposedError, EmptyLoaderError, InvalidArgumentError, NonFiniteError, ShapeMismatchError } from '../errors.js';

/** A model's inputs for one batch: one tensor, or one per model input. */
export type Inputs = tf.Tensor | tf.Tensor[];
/** One batch: inputs and optional targets. */
export type BatchLike =
  | tf.Tensor
  | {
      /** The model's inputs [B, ...]. */
      xs: Inputs;
      /** The targets [B, ...] (class indices, one-hot rows or real values), when the variant needs them. */
      ys?: tf.Tensor;
    }
  | [Inputs, tf.Tensor?];
/** Everything accepted as `loader`. */
export type Loader =
  | tf.data.Dataset<tf.TensorContainer>
  | BatchLike
  | ReadonlyArray<BatchLike>
  | Iterable<BatchLike>
  | AsyncIterable<BatchLike>;

/** A normalised batch. `owned`: the library must dispose its tensors after use. */
export interface Batch {
  readonly xs: tf.Tensor[];
  readonly ys?: tf.Tensor;
  readonly size: number;
  readonly owned: boolean;
}

function isTensor(v: unknown): v is tf.Tensor {
  return v instanceof tf.Tensor;
}

function isBatchLike(v: unknown): v is BatchLike {
  if (isTensor(v)) return true;
  if (Array.isArray(v)) {
    if (v.length < 1 || v.length > 2) return false;
    if (isTensor(v[0])) return true;
    // [inputs[], ys?] for a model with several inputs; [[xs, ys], [xs, ys]] is two batches.
    return Array.isArray(v[0]) && v[0].every(isTensor) && (v.length === 1 || v[1] === undefined || isTensor(v[1]));
  }
  return typeof v === 'object' && v !== null && 'xs' in v;
}

function normalise(raw: unknown, index: number, owned: boolean): Batch {
  let xs: unknown;
  let ys: unknown;
  if (isTensor(raw)) xs = raw;
  else if (Array.isArray(raw)) [xs, ys] = raw;
  else if (typeof raw === 'object' && raw !== null && 'xs' in raw) ({ xs, ys } = raw as { xs: unknown; ys?: unknown });
  else throw new InvalidArgumentError(`loader: batch ${index} must be a tensor, {xs, ys} or [xs, ys]; received ${describe(raw)}`);
  const xList = Array.isArray(xs) ? xs : [xs];
  if (xList.length === 0 || !xList.every(isTensor)) {
    throw new InvalidArgumentError(`loader: batch ${index} has no input tensor 'xs'`);
  }
  if (ys !== undefined && !isTensor(ys)) throw new InvalidArgumentError(`loader: batch ${index}: 'ys' must be a tensor, received ${ys === null ? 'null' : typeof ys}`);
  for (const [k, x] of xList.entries()) {
    if (x.isDisposed) throw new DisposedError(`loader: batch ${index}: input ${k} has been disposed`);
  }
  if (ys?.isDisposed) throw new DisposedError(`loader: batch ${index}: 'ys' has been disposed`);
  const size = xList[0]!.shape[0] ?? 0;
  for (const [k, x] of xList.entries()) {
    if (x.rank < 1 || x.shape[0] !== size) {
      throw new ShapeMismatchError(`loader: batch ${index}: input ${k} has shape [${x.shape}] but input 0 has batch size ${size}`);
    }
  }
  if (ys && ys.shape[0] !== size) {
    throw new ShapeMismatchError(`loader: batch ${index}: ys has batch size ${ys.shape[0]} but xs has ${size}`);
  }
  return { xs: xList, ys: ys as tf.Tensor | undefined, size, owned };
}

/** Yields the loader's batches, normalised. Throws EmptyLoaderError if it yields no example. */
export async function* iterateBatches(loader: Loader): AsyncGenerator<Batch> {
  let index = 0;
  let examples = 0;
  const emit = (raw: unknown, owned: boolean): Batch => {
    const b = normalise(raw, index++, owned);
    examples += b.size;
    return b;
  };
  if (loader instanceof tf.data.Dataset) {
    const it = await loader.iterator();
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      yield emit(r.value, true);
    }
  } else if (isBatchLike(loader)) {
    yield emit(loader, false);
  } else if (typeof (loader as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    for await (const raw of loader as AsyncIterable<unknown>) yield emit(raw, false);
  } else if (typeof (loader as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const raw of loader as Iterable<unknown>) yield emit(raw, false);
  } else {
    throw new InvalidArgumentError(
      `'loader' must be a tf.data.Dataset, a batch ({xs, ys}, [xs, ys] or a tensor), or an array / iterable of batches; received ${typeof loader}`,
    );
  }
  if (examples === 0) {
    const oneShot = isOneShotIterator(loader);
    throw new EmptyLoaderError(
      `the loader yielded no examples (${index} batches); pass at least one non-empty batch` +
        (oneShot ? '. It is a one-shot iterator (a generator), already consumed by an earlier pass: pass an array or a tf.data.Dataset, which can be iterated again' : ''),
    );
  }
}

/** Disposes a batch's tensors if the library owns them. */
export function releaseBatch(batch: Batch): void {
  if (!batch.owned) return;
  tf.dispose(batch.xs);
  if (batch.ys) batch.ys.dispose();
}

/** Throws NonFiniteError if `t` holds NaN or ±Infinity: Σ 0·t is NaN exactly then. */
export function assertFinite(t: tf.Tensor, what: string): void {
  if (t.dtype !== 'float32') return;
  const probe = tf.tidy(() => tf.sum(tf.mul(t, 0)));
  const v = probe.dataSync()[0]!;
  probe.dispose();
  if (!Number.isFinite(v)) throw new NonFiniteError(`${what} contains NaN or Infinity; clean the data (or the weights) first`);
}

/**
 * Checks a batch's inputs against the model's inputs (count, rank, non-batch sizes, dtype) and
 * that they are finite, naming the input and both shapes. `where` prefixes the message.
 */
export function checkBatchInputs(model: tf.LayersModel, batch: Batch, where: string): void {
  const expected = model.inputs;
  if (batch.xs.length !== expected.length) {
    throw new ShapeMismatchError(`${where}: the model has ${expected.length} input(s) but the batch has ${batch.xs.length}`);
  }
  batch.xs.forEach((x, k) => {
    const shape = expected[k]!.shape;
    if (!(x.rank === shape.length && shape.every((d, j) => j === 0 || d === null || d === x.shape[j]))) {
      throw new ShapeMismatchError(
        `${where}: input ${k} ('${model.inputNames[k] ?? k}') has shape [${x.shape}] but the model expects [${shape.map((d) => d ?? 'batch')}]`,
      );
    }
    if (x.dtype !== expected[k]!.dtype && !(x.dtype === 'int32' && feedsOnlyEmbeddings(model, k))) {
      throw new InvalidArgumentError(`${where}: input ${k} has dtype ${x.dtype} but the model expects ${expected[k]!.dtype}; cast it first (tf.cast)`);
    }
    assertFinite(x, `input ${k}`);
  });
}

/**
 * Whether input k goes only to Embedding layers, which take integer indices whatever the
 * declared input dtype (a Sequential starting with an Embedding declares float32).
 */
function feedsOnlyEmbeddings(model: tf.LayersModel, k: number): boolean {
  const input = model.inputs[k]?.sourceLayer;
  const consumers = (input as unknown as { outboundNodes?: Array<{ outboundLayer: tf.layers.Layer }> } | undefined)?.outboundNodes ?? [];
  return consumers.length > 0 && consumers.every((n) => n.outboundLayer.getClassName() === 'Embedding');
}

/** Generators and other iterators that return themselves can be traversed only once. */
function isOneShotIterator(loader: unknown): boolean {
  const it = loader as { [Symbol.iterator]?: () => unknown; [Symbol.asyncIterator]?: () => unknown };
  return (
    (typeof it[Symbol.iterator] === 'function' && it[Symbol.iterator]!() === loader) ||
    (typeof it[Symbol.asyncIterator] === 'function' && it[Symbol.asyncIterator]!() === loader)
  );
}

/** The number of examples when it is known without iterating (arrays and single batches). */
export function countExamples(loader: Loader): number | undefined {
  const sizeOf = (b: unknown): number | undefined => {
    if (!isBatchLike(b)) return undefined;
    const xs = b instanceof tf.Tensor ? b : Array.isArray(b) ? b[0] : (b as { xs: Inputs }).xs;
    const first = Array.isArray(xs) ? xs[0] : xs;
    return first instanceof tf.Tensor ? first.shape[0] : undefined;
  };
  if (loader instanceof tf.data.Dataset) return undefined;
  if (isBatchLike(loader)) return sizeOf(loader);
  if (Array.isArray(loader)) {
    let n = 0;
    for (const b of loader) {
      const s = sizeOf(b);
      if (s === undefined) return undefined;
      n += s;
    }
    return n;
  }
  return undefined;
}
