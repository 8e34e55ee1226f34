/**
 * A `tf.io.IOHandler` on the local file system for Node, for when `@tensorflow/tfjs-node` (whose
 * `file://` handler this mirrors) is not installed. The format is tfjs's own LayersModel format:
 * a `model.json` (topology + `weightsManifest`) next to binary weight files whose bytes, in
 * manifest order, are the weights concatenated little-endian (peers.md §6.3).
 *
 * - Load: `path` is the model.json file itself (any name: `name.json` from a browser
 *   `downloads://` save works too) or a directory holding `model.json`; every shard the manifest
 *   names is read relative to the JSON file's directory and the shards are concatenated.
 * - Save: `path` is a directory (created if needed) receiving `model.json` and `weights.bin`, or
 *   a path ending in `.json` receiving that file and `<name>.weights.bin` beside it.
 *
 * `node:fs` is imported lazily, so that importing the library in a browser does not need it.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';

/** The path without a leading `file://`. */
export function stripFileScheme(path: string): string {
  return path.startsWith('file://') ? path.slice('file://'.length) : path;
}

async function nodeModules() {
  const [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
  return { fs, path };
}

/** Bytes of one element of each weight dtype (the encodings tfjs writes). */
const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** Expected bytes of the manifest, or undefined when an entry's size is not fixed (strings). */
function manifestBytes(specs: readonly tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const s of specs) {
    const dtype = s.quantization?.dtype ?? s.dtype;
    const bytes = BYTES[dtype];
    if (bytes === undefined) return undefined;
    total += s.shape.reduce((a, b) => a * b, 1) * bytes;
  }
  return total;
}

/** Reads model.json and its shards into ModelArtifacts. */
async function loadArtifacts(location: string): Promise<tf.io.ModelArtifacts> {
  const { fs, path } = await nodeModules();
  let jsonPath = stripFileScheme(location);
  const stat = await fs.stat(jsonPath).catch(() => undefined);
  if (!stat) throw new InvalidArgumentError(`loadModel: no file or directory at '${jsonPath}'`);
  if (stat.isDirectory()) jsonPath = path.join(jsonPath, 'model.json');
  const text = await fs.readFile(jsonPath, 'utf8').catch(() => {
    throw new InvalidArgumentError(`loadModel: cannot read '${jsonPath}' (expected a model.json written by model.save)`);
  });
  let modelJSON: tf.io.ModelJSON;
  try {
    modelJSON = JSON.parse(text) as tf.io.ModelJSON;
  } catch (e) {
    throw new InvalidArgumentError(`loadModel: '${jsonPath}' is not valid JSON (${(e as Error).message})`);
  }
  if (!modelJSON || typeof modelJSON !== 'object' || !modelJSON.modelTopology) {
    throw new InvalidArgumentError(`loadModel: '${jsonPath}' has no 'modelTopology'; it is not a tfjs model.json`);
  }
  const dir = path.dirname(jsonPath);
  return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const shards: ArrayBuffer[] = [];
    for (const group of manifest) {
      for (const shard of group.paths) {
        const file = path.join(dir, shard);
        const bytes = await fs.readFile(file).catch(() => {
          throw new InvalidArgumentError(`loadModel: the weights shard '${file}' named by '${jsonPath}' cannot be read`);
        });
        shards.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      }
      specs.push(...group.weights);
    }
    const data = tf.io.concatenateArrayBuffers(shards);
    const expected = manifestBytes(specs);
    if (expected !== undefined && expected !== data.byteLength) {
      throw new InvalidArgumentError(`loadModel: the weight files of '${jsonPath}' hold ${data.byteLength} bytes but its manifest describes ${expected}`);
    }
    return [specs, data];
  });
}

/** Writes model.json and one weights file. */
async function saveArtifacts(location: string, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    throw new InvalidArgumentError('saveModel: binary (graph-model) topologies are not supported; save a tf.LayersModel');
  }
  const { fs, path } = await nodeModules();
  const target = stripFileScheme(location);
  const isJson = target.endsWith('.json');
  const dir = isJson ? path.dirname(target) : target;
  const jsonPath = isJson ? target : path.join(dir, 'model.json');
  const weightsName = isJson ? `${path.basename(target, '.json')}.weights.bin` : 'weights.bin';
  await fs.mkdir(dir, { recursive: true });
  const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? []));
  const modelJSON: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology ?? {},
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [weightsName], weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
    ...(artifacts.signature ? { signature: artifacts.signature } : {}),
    ...(artifacts.modelInitializer ? { modelInitializer: artifacts.modelInitializer } : {}),
    ...(artifacts.initializerSignature ? { initializerSignature: artifacts.initializerSignature } : {}),
  };
  await fs.writeFile(path.join(dir, weightsName), weights);
  await fs.writeFile(jsonPath, JSON.stringify(modelJSON));
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

/**
 * An IOHandler reading and writing a LayersModel at `path` (see the file comment).
 *
 * @example
 * await model.save(nodeFileSystem('/tmp/my-model'));            // model.json + weights.bin
 * const copy = await tf.loadLayersModel(nodeFileSystem('/tmp/my-model'));
 */
export function nodeFileSystem(path: string): tf.io.IOHandler {
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidArgumentError(`nodeFileSystem: 'path' must be a non-empty string, received ${typeof path}`);
  }
  return { load: () => loadArtifacts(path), save: (artifacts) => saveArtifacts(path, artifacts) };
}

let routed = false;

/**
 * Registers `nodeFileSystem` for `file://` URLs, so that `model.save('file://dir')` and
 * `tf.loadLayersModel('file://dir/model.json')` work in Node without tfjs-node. Idempotent.
 */
export function registerFileSystemScheme(): void {
  if (routed) return;
  routed = true;
  // tfjs routers answer null for URLs they do not handle (its IORouter type omits the null).
  const router = ((url: string | string[]) => {
    const u = Array.isArray(url) ? url[0] : url;
    return typeof u === 'string' && u.startsWith('file://') ? nodeFileSystem(u) : null;
  }) as Parameters<typeof tf.io.registerSaveRouter>[0];
  tf.io.registerSaveRouter(router);
  tf.io.registerLoadRouter(router);
}
