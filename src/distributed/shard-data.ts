/**
 * The examples of one shard as batches, read from the same files and in the same way as the
 * `nngeometry fim` command (IDX, CSV or JSON; uint8 IDX pixels scaled by 1/255 unless a scale
 * is given), so that a shard's batches are exactly the batches of the single-process pass over
 * examples [start, end). The parsed file is kept per content hash: a worker parses it once.
 */
import { tf } from '../tf.js';
import { DistributedError } from '../errors.js';
import { integerLabels, readExamples, readLabels } from '../cli/data-io.js';
import type { PassDefinition } from './protocol.js';

type Parsed = { values: Float32Array; n: number; uint8: boolean; labels?: Int32Array };
let held: { hash: string; parsed: Parsed } | null = null;

async function parsed(pass: PassDefinition): Promise<Parsed> {
  if (held?.hash === pass.dataHash) return held.parsed;
  let data;
  try {
    data = await readExamples(pass.data, 'data');
    const labels = pass.labels !== undefined ? (await readLabels(pass.labels)).labels : data.labels ? integerLabels(data.labels, `${pass.data}: "ys"`) : undefined;
    if (labels && labels.length !== data.n) throw new Error(`${labels.length} labels for ${data.n} examples`);
    held = { hash: pass.dataHash, parsed: { values: data.values, n: data.n, uint8: data.uint8, ...(labels ? { labels } : {}) } };
  } catch (e) {
    throw new DistributedError(`shard data: ${(e as Error).message}`);
  }
  return held.parsed;
}

/** Number of examples in the data (and labels) of `pass`. */
export async function exampleCount(pass: PassDefinition): Promise<number> {
  return (await parsed(pass)).n;
}

/** Batches of examples [start, end) shaped to the model's input (the caller disposes them). */
export async function shardBatches(pass: PassDefinition, model: tf.LayersModel, start: number, end: number): Promise<Array<{ xs: tf.Tensor; ys?: tf.Tensor }>> {
  const data = await parsed(pass);
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const per = inputShape.reduce((a, b) => a * b, 1);
  if (data.values.length !== data.n * per) {
    throw new DistributedError(`shard data: examples in ${pass.data} have ${data.values.length / data.n} values, the model expects [${inputShape}] (${per} values)`);
  }
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= data.n)) {
    throw new DistributedError(`shard data: examples [${start}, ${end}) are outside the ${data.n} examples of ${pass.data}`);
  }
  const scale = pass.scale ?? (data.uint8 ? 1 / 255 : 1);
  const batches: Array<{ xs: tf.Tensor; ys?: tf.Tensor }> = [];
  for (let s = start; s < end; s += pass.batchSize) {
    const e = Math.min(end, s + pass.batchSize);
    const values = data.values.slice(s * per, e * per);
    if (scale !== 1) for (let i = 0; i < values.length; i++) values[i]! *= scale;
    const xs = tf.tensor(values, [e - s, ...inputShape]);
    batches.push(data.labels ? { xs, ys: tf.tensor1d(data.labels.slice(s, e), 'int32') } : { xs });
  }
  return batches;
}
