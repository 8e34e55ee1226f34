/**
 * What every coordinator (distributedFIM, distributedNTK, distributedOperator) does first with
 * the files it names: resolve them to absolute paths (the workers read the same paths on shared
 * storage), hash them (a worker whose copy differs refuses the job), and load the model
 * through the library's confined loader.
 */
import { resolve } from 'node:path';
import type { tf } from '../tf.js';
import { loadModel } from '../io/load-model.js';
import { DistributedError } from '../errors.js';
import { dataHash, modelHash } from './hash.js';
import { SAFE_ID } from './flow.js';

/** The coordinator's view of its inputs. */
export interface RunInputs {
  modelPath: string;
  dataPath: string;
  labelsPath: string | undefined;
  /** SHA-256 of model.json and its weight files. */
  modelHash: string;
  /** SHA-256 of the data file (and the labels file). */
  dataHash: string;
  /** The model, loaded on this process (the caller disposes it). */
  model: tf.LayersModel;
}

/**
 * Resolves, hashes and loads the model and data files of a distributed run.
 *
 * @example
 * const inputs = await openRunInputs('/shared/model.json', '/shared/x.idx');
 */
export async function openRunInputs(model: string, data: string, labels?: string): Promise<RunInputs> {
  const modelPath = resolve(model);
  const dataPath = resolve(data);
  const labelsPath = labels === undefined ? undefined : resolve(labels);
  const [mHash, dHash] = await Promise.all([modelHash(modelPath), dataHash(dataPath, labelsPath)]);
  return { modelPath, dataPath, labelsPath, modelHash: mHash, dataHash: dHash, model: await loadModel(modelPath) };
}

/** Refuses a run id that is not 1–100 letters, digits, '-' or '_' (it names Redis keys and files). */
export function checkRunId(where: string, runId: string | undefined): void {
  if (runId !== undefined && !SAFE_ID.test(runId)) throw new DistributedError(`${where}: 'runId' must be 1–100 letters, digits, '-' or '_', received '${runId}'`);
}
