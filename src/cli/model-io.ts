/**
 * The CLI's model files: the library's own `loadModel` and `saveModel` (one code path, with its
 * confinement of weight files to the model's folder and its typed errors), with the CLI's wording
 * for a path that does not exist. Node only.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tf } from '../tf.js';
import { loadModel, saveModel as saveLayersModel } from '../index.js';
import { CliError } from './errors.js';

/**
 * Loads a Layers model saved by `model.save` (or `saveModel` below) from `path` (model.json).
 *
 * @throws CliError (exit code 2) when the file is missing; the library's InvalidArgumentError
 * (also exit code 2) when the file or its weights are not acceptable.
 */
export async function loadModelFile(path: string): Promise<tf.LayersModel> {
  if (!existsSync(path)) throw new CliError(`model file not found: ${path}`);
  return loadModel(resolve(path));
}

/**
 * Saves `model` to `dir`/model.json + `dir`/weights.bin (one shard, each file written
 * atomically), the layout `loadModelFile` and `tf.loadLayersModel('http://…/model.json')` read.
 * Returns the model.json path.
 */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<string> {
  await saveLayersModel(model, dir, metadata ? { userDefinedMetadata: metadata } : {});
  return join(dir, 'model.json');
}
