/**
 * Loading the LayersModels users bring (issue 4): saved to disk by `model.save('file://…')`
 * (tfjs-node) or by this library's `saveModel`, or produced in a browser (the JSON and weights of
 * a `downloads://` save, or in-memory artifacts as `tf.io.fromMemory` takes them). The model
 * comes back trainable, so every weight is a parameter of the matrices computed on it.
 * Custom layer classes must be registered (`tf.serialization.registerClass`) before loading.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { nodeFileSystem } from './node-file-system.js';

/**
 * The files of a browser save: the model JSON (parsed or as text) and its weights, either by
 * file name (resolved against the manifest's paths, as `tf.io.browserFiles` does) or as the
 * shards' bytes in manifest order.
 */
export interface BrowserModelFiles {
  modelJSON: tf.io.ModelJSON | string;
  weights: Record<string, ArrayBuffer | Uint8Array> | ArrayBuffer | Uint8Array | ReadonlyArray<ArrayBuffer | Uint8Array>;
}

/** What `loadModel` accepts. */
export type ModelSource = string | tf.io.IOHandler | tf.io.ModelArtifacts | BrowserModelFiles;

const toBuffer = (b: ArrayBuffer | Uint8Array): ArrayBuffer =>
  b instanceof ArrayBuffer ? b : (b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);

function isHandler(v: object): v is tf.io.IOHandler {
  return typeof (v as tf.io.IOHandler).load === 'function';
}

function isBrowserFiles(v: object): v is BrowserModelFiles {
  return 'modelJSON' in v && 'weights' in v;
}

/** The last path segment, so that './x.bin' and 'dir/x.bin' both match a file named 'x.bin'. */
const baseName = (p: string) => p.split('/').pop()!;

function fromBrowserFiles(files: BrowserModelFiles): tf.io.IOHandler {
  const modelJSON = typeof files.modelJSON === 'string' ? (JSON.parse(files.modelJSON) as tf.io.ModelJSON) : files.modelJSON;
  if (!modelJSON?.modelTopology) throw new InvalidArgumentError(`loadModel: 'modelJSON' has no 'modelTopology'; it is not a tfjs model.json`);
  const { weights } = files;
  return {
    load: () =>
      tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const paths = manifest.flatMap((g) => g.paths);
        let shards: ArrayBuffer[];
        if (weights instanceof ArrayBuffer || weights instanceof Uint8Array) shards = [toBuffer(weights)];
        else if (Array.isArray(weights)) shards = (weights as Array<ArrayBuffer | Uint8Array>).map(toBuffer);
        else {
          const byName = new Map(Object.entries(weights as Record<string, ArrayBuffer | Uint8Array>).map(([k, v]) => [baseName(k), v]));
          shards = paths.map((p) => {
            const hit = byName.get(baseName(p));
            if (!hit) throw new InvalidArgumentError(`loadModel: the manifest names weights file '${p}', which is not among the given files (${[...byName.keys()].join(', ')})`);
            return toBuffer(hit);
          });
        }
        return [manifest.flatMap((g) => g.weights), tf.io.concatenateArrayBuffers(shards)];
      }),
  };
}

/**
 * Loads a tf.LayersModel from a path (a model.json, `name.json`, or a directory holding
 * model.json; `file://` optional; Node only), an IOHandler, in-memory ModelArtifacts
 * (`tf.io.fromMemory` style) or the files of a browser save.
 *
 * @throws InvalidArgumentError naming the file when something is missing or inconsistent.
 * @example
 * const model = await loadModel('./saved/model.json');
 * const F = await FIM({ model, loader, representation: PMatDiag });
 */
export async function loadModel(source: ModelSource): Promise<tf.LayersModel> {
  if (typeof source === 'string') return tf.loadLayersModel(nodeFileSystem(source));
  if (typeof source !== 'object' || source === null) {
    throw new InvalidArgumentError(`loadModel: 'source' must be a path, an IOHandler, ModelArtifacts or { modelJSON, weights }; received ${source === null ? 'null' : typeof source}`);
  }
  if (isHandler(source)) return tf.loadLayersModel(source);
  if (isBrowserFiles(source)) return tf.loadLayersModel(fromBrowserFiles(source));
  if ('modelTopology' in source) return tf.loadLayersModel(tf.io.fromMemory(source));
  throw new InvalidArgumentError(`loadModel: 'source' has neither 'modelTopology' nor 'modelJSON' and 'weights'`);
}

/**
 * Saves a LayersModel to disk in Node (a directory receiving model.json + weights.bin, or a
 * path ending in .json), in the format `loadModel`, tfjs-node and tf.loadLayersModel read.
 */
export async function saveModel(model: tf.LayersModel, path: string): Promise<tf.io.SaveResult> {
  if (!(model instanceof tf.LayersModel)) throw new InvalidArgumentError(`saveModel: 'model' must be a tf.LayersModel`);
  return model.save(nodeFileSystem(path));
}
