/**
 * Saving and loading tfjs Layers models on the local file system in the format of
 * `model.save('file://…')` (model.json + binary weight shards), without tfjs-node: a tfjs
 * `IOHandler` over node:fs. Node only.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tf } from '../tf.js';
import { CliError } from './errors.js';

interface ModelJson {
  modelTopology?: unknown;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  trainingConfig?: unknown;
  userDefinedMetadata?: Record<string, unknown>;
}

/**
 * A tfjs IOHandler reading `model.json` and its weight shards (paths relative to model.json).
 *
 * @throws CliError (exit code 2) when the file is missing or is not a Layers model.
 */
export function fileModelLoader(path: string): tf.io.IOHandler {
  return {
    load: async (): Promise<tf.io.ModelArtifacts> => {
      if (!existsSync(path)) throw new CliError(`model file not found: ${path}`);
      let json: ModelJson;
      try {
        json = JSON.parse(await readFile(path, 'utf8')) as ModelJson;
      } catch (e) {
        throw new CliError(`${path} is not a JSON model file (${(e as Error).message})`);
      }
      if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
        throw new CliError(`${path} is not a tfjs Layers model.json (expected 'modelTopology' and 'weightsManifest', as written by model.save)`);
      }
      const specs: tf.io.WeightsManifestEntry[] = [];
      const shards: Uint8Array[] = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) {
          const shard = join(dirname(path), p);
          if (!existsSync(shard)) throw new CliError(`weight file not found: ${shard} (listed in ${path})`);
          shards.push(new Uint8Array(await readFile(shard)));
        }
      }
      const total = shards.reduce((a, s) => a + s.length, 0);
      const weightData = new Uint8Array(total);
      let at = 0;
      for (const s of shards) {
        weightData.set(s, at);
        at += s.length;
      }
      return {
        modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
        weightSpecs: specs,
        weightData: weightData.buffer,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        userDefinedMetadata: json.userDefinedMetadata as Record<string, unknown> | undefined as never,
      };
    },
  };
}

/** Loads a Layers model saved by `model.save` (or `saveModel` below) from `path` (model.json). */
export async function loadModelFile(path: string): Promise<tf.LayersModel> {
  const abs = resolve(path);
  try {
    return await tf.loadLayersModel(fileModelLoader(abs));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`could not load the model ${path}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/**
 * Saves `model` to `dir`/model.json + `dir`/weights.bin (one shard), the layout `loadModelFile`
 * and `tf.loadLayersModel('http://…/model.json')` read. Returns the model.json path.
 */
export async function saveModel(model: tf.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const jsonPath = join(dir, 'model.json');
  await model.save({
    save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      const data = artifacts.weightData;
      const bytes = data === undefined ? new Uint8Array(0) : Array.isArray(data) ? concatBuffers(data) : new Uint8Array(data);
      await writeFile(join(dir, 'weights.bin'), bytes);
      const json: ModelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
        ...(metadata ? { userDefinedMetadata: metadata } : {}),
      };
      await writeFile(jsonPath, JSON.stringify(json, null, 1) + '\n');
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON', weightDataBytes: bytes.length } };
    },
  });
  return jsonPath;
}

function concatBuffers(parts: ArrayBuffer[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), at);
    at += p.byteLength;
  }
  return out;
}
