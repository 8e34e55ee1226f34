/**
 * Loading the LayersModels users bring: saved to disk by `model.save('file://…')`
 * (tfjs-node) or by this library's `saveModel`, or produced in a browser (the JSON and weights of
 * a `downloads://` save, or in-memory artifacts as `tf.io.fromMemory` takes them). The model
 * comes back trainable, so every weight is a parameter of the matrices computed on it.
 * Custom layer classes must be registered (`tf.serialization.registerClass`) before loading.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, NNGeometryError } from '../errors.js';
import { checkOptions, describe } from '../validation.js';
import { buildModel } from './build-model.js';
import { confinedFetch } from './confined-fetch.js';
import { nodeFileSystem, stripFileScheme } from './node-file-system.js';

/**
 * The files of a browser save: the model JSON (parsed or as text) and its weights, either by
 * file name (resolved against the manifest's paths, as `tf.io.browserFiles` does) or as the
 * shards' bytes in manifest order.
 */
export interface BrowserModelFiles {
  /** The model.json file: parsed, or its text. */
  modelJSON: tf.io.ModelJSON | string;
  /** The weight shards: by path as the manifest names them, one buffer, or the manifest's shards in order. */
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

/** Options of `loadModel`. */
export interface LoadModelOptions {
  /**
   * Accept a model.json without weights (no `weightsManifest`, or an empty one) whose topology
   * has weights: they keep tfjs's random initial values. Default false: such a file is refused,
   * since a Fisher matrix of random weights is rarely what was meant.
   */
  allowMissingWeights?: boolean;
}

/** Options of `saveModel`. */
export interface SaveModelOptions {
  /** JSON metadata stored in model.json (`userDefinedMetadata`), replacing the model's own. */
  userDefinedMetadata?: Record<string, unknown>;
}

/** Where errors say the model came from. */
function describeSource(source: Exclude<ModelSource, string>): string {
  if (isHandler(source)) return 'the IOHandler';
  if (isBrowserFiles(source)) return 'the given modelJSON and weights';
  return 'the given model artifacts';
}

/**
 * The artifacts of `source`, read but not yet turned into a model. A local path is read through
 * `nodeFileSystem` (confined to the model's folder); an http(s) URL through tfjs's http handler
 * with every request confined to the model.json's origin and folder.
 */
async function artifactsOf(source: ModelSource): Promise<{ artifacts: tf.io.ModelArtifacts; where: string }> {
  if (typeof source === 'string') {
    if (/^https?:\/\//i.test(source)) return { artifacts: await tf.io.http(source, { fetchFunc: confinedFetch(source) }).load!(), where: `'${source}'` };
    return { artifacts: await nodeFileSystem(source).load!(), where: `'${stripFileScheme(source)}'` };
  }
  if (typeof source !== 'object' || source === null) {
    throw new InvalidArgumentError(`loadModel: 'source' must be a path, an IOHandler, ModelArtifacts or { modelJSON, weights }; received ${source === null ? 'null' : typeof source}`);
  }
  const where = describeSource(source);
  if (isHandler(source)) {
    try {
      return { artifacts: await source.load!(), where };
    } catch (e) {
      if (e instanceof NNGeometryError) throw e;
      throw new InvalidArgumentError(`loadModel: the IOHandler's load() failed (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`);
    }
  }
  if (isBrowserFiles(source)) return { artifacts: await fromBrowserFiles(source).load!(), where };
  if ('modelTopology' in source) return { artifacts: source, where };
  throw new InvalidArgumentError(`loadModel: 'source' has neither 'modelTopology' nor 'modelJSON' and 'weights'`);
}

/**
 * Loads a tf.LayersModel from a path (a model.json, `name.json`, or a directory holding
 * model.json; `file://` optional; Node only), an http(s) URL of a model.json, an IOHandler,
 * in-memory ModelArtifacts (`tf.io.fromMemory` style) or the files of a browser save.
 *
 * What is checked before any weight byte is used: the weight files a model.json names stay in its
 * folder (no absolute path, no `..`, no symlink leading out, regular files only; for a URL, its
 * origin and folder), their sizes equal what the manifest describes (both longer and shorter are
 * refused) and nothing beyond that is read, every manifest entry has a known dtype and a shape
 * of integers ≥ 0, and the weights match the topology by name and shape. Every failure inside
 * tfjs (an unknown layer class, a shape mismatch, a bad configuration) is reported as an
 * InvalidArgumentError naming the source and the way out, and leaves no tensor behind.
 *
 * @param options.allowMissingWeights accept a model.json without weights (default false).
 * @throws InvalidArgumentError naming the file when something is missing, misplaced or inconsistent.
 * @example
 * const model = await loadModel('./saved/model.json');
 * const F = await FIM({ model, loader, representation: PMatDiag });
 */
export async function loadModel(source: ModelSource, options?: LoadModelOptions): Promise<tf.LayersModel> {
  const o = checkOptions(options, ['allowMissingWeights'], 'loadModel') as LoadModelOptions;
  if (o.allowMissingWeights !== undefined && typeof o.allowMissingWeights !== 'boolean') {
    throw new InvalidArgumentError(`loadModel: option 'allowMissingWeights' must be a boolean, received ${describe(o.allowMissingWeights)}`);
  }
  const { artifacts, where } = await artifactsOf(source);
  return buildModel(artifacts, where, { allowMissingWeights: o.allowMissingWeights ?? false });
}

/**
 * Saves a LayersModel to disk in Node (a directory receiving model.json + weights.bin, or a
 * path ending in .json), in the format `loadModel`, tfjs-node and tf.loadLayersModel read. Each
 * file is written atomically (a temporary file in the same folder, fsync, rename): a save that is
 * interrupted leaves the previous file whole.
 *
 * @example
 * await saveModel(model, './saved');  // ./saved/model.json + ./saved/weights.bin
 */
export async function saveModel(model: tf.LayersModel, path: string, options?: SaveModelOptions): Promise<tf.io.SaveResult> {
  if (!(model instanceof tf.LayersModel)) throw new InvalidArgumentError(`saveModel: 'model' must be a tf.LayersModel`);
  const o = checkOptions(options, ['userDefinedMetadata'], 'saveModel') as SaveModelOptions;
  const meta = o.userDefinedMetadata;
  if (meta !== undefined && (typeof meta !== 'object' || meta === null || Array.isArray(meta))) {
    throw new InvalidArgumentError(`saveModel: option 'userDefinedMetadata' must be a plain object, received ${describe(meta)}`);
  }
  return model.save(nodeFileSystem(path, meta ? { userDefinedMetadata: meta } : {}));
}
