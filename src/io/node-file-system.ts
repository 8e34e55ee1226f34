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
 * `node:fs` is loaded on demand (platform/node-builtin.ts) so that browser bundles never resolve it.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { writeFileAtomic } from './atomic-write.js';
import { type ConfinedFile, readBoundedText, readConfined, realFolder, resolveInside } from './confined-files.js';
import { type ManifestGroup, checkManifest, entriesBytes } from './weights-manifest.js';
import { MAX_MODEL_JSON_BYTES } from './confined-fetch.js';
import { nodeBuiltin } from '../platform/node-builtin.js';

/** The path without a leading `file://`. */
export function stripFileScheme(path: string): string {
  return path.startsWith('file://') ? path.slice('file://'.length) : path;
}

async function nodeModules() {
  const [fs, path] = await Promise.all([nodeBuiltin('fs/promises', 'a model file path'), nodeBuiltin('path', 'a model file path')]);
  return { fs, path };
}


/**
 * Reads model.json and its shards into ModelArtifacts. Every shard is confined to the JSON
 * file's folder and checked to be a regular file, and the shards' sizes are compared with what
 * the manifest describes before any of them is read (see confined-files.ts).
 */
async function loadArtifacts(location: string): Promise<tf.io.ModelArtifacts> {
  const { fs, path } = await nodeModules();
  let jsonPath = stripFileScheme(location);
  const stat = await fs.stat(jsonPath).catch(() => undefined);
  if (!stat) throw new InvalidArgumentError(`loadModel: no file or directory at '${jsonPath}'`);
  if (stat.isDirectory()) jsonPath = path.join(jsonPath, 'model.json');
  const text = await readBoundedText(jsonPath, MAX_MODEL_JSON_BYTES, 'loadModel');
  let modelJSON: tf.io.ModelJSON;
  try {
    modelJSON = JSON.parse(text) as tf.io.ModelJSON;
  } catch (e) {
    throw new InvalidArgumentError(`loadModel: '${jsonPath}' is not valid JSON (${(e as Error).message})`);
  }
  if (!modelJSON || typeof modelJSON !== 'object' || !modelJSON.modelTopology) {
    throw new InvalidArgumentError(`loadModel: '${jsonPath}' has no 'modelTopology'; it is not a tfjs model.json`);
  }
  const where = `loadModel: '${jsonPath}'`;
  const groups = checkManifest(modelJSON.weightsManifest, where);
  const { weightsManifest: _ignored, ...rest } = modelJSON;
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: rest.modelTopology,
    format: rest.format,
    generatedBy: rest.generatedBy,
    convertedBy: rest.convertedBy,
    ...(rest.trainingConfig ? { trainingConfig: rest.trainingConfig } : {}),
    ...(rest.userDefinedMetadata ? { userDefinedMetadata: rest.userDefinedMetadata } : {}),
  };
  if (groups.length === 0) return artifacts;
  const root = await realFolder(path.dirname(jsonPath), where);
  // Resolve and size every shard first: nothing is read unless all of them are acceptable.
  const shards: ConfinedFile[] = [];
  let total = 0;
  for (const [k, group] of groups.entries()) {
    const files = await Promise.all(group.paths.map((p) => resolveInside(root, p, where)));
    const held = files.reduce((a, f) => a + f.size, 0);
    const expected = entriesBytes(group.weights, where);
    if (held !== expected) {
      throw new InvalidArgumentError(
        `${where}: the weight files of manifest group ${k} (${group.paths.join(', ')}) hold ${held} bytes but its manifest describes ${expected}; the files do not belong to this model.json`,
      );
    }
    shards.push(...files);
    total += held;
  }
  const data = new Uint8Array(total);
  let offset = 0;
  for (const f of shards) {
    await readConfined(f, data, offset, where);
    offset += f.size;
  }
  await checkGroupHashes(groups, data, where);
  return { ...artifacts, weightSpecs: groups.flatMap((g) => g.weights), weightData: data.buffer };
}

/** Lowercase hex SHA-256 of `bytes`. */
async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const crypto = await nodeBuiltin('crypto', 'a model file path');
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/**
 * Compares each group's shards (laid end to end in `data`, in manifest order) with the SHA-256
 * its manifest records, when it records one. The weights file and model.json are two renames:
 * a save interrupted between them, or a weights file copied from another save, leaves a pair
 * whose sizes may still agree; the hash is what tells.
 */
async function checkGroupHashes(groups: readonly ManifestGroup[], data: Uint8Array, where: string): Promise<void> {
  let start = 0;
  for (const [k, group] of groups.entries()) {
    const bytes = entriesBytes(group.weights, where);
    if (group.sha256 !== undefined && (await sha256Hex(data.subarray(start, start + bytes))) !== group.sha256) {
      throw new InvalidArgumentError(
        `${where}: the weight files of manifest group ${k} (${group.paths.join(', ')}) do not match the SHA-256 that model.json records: they come from another save (an interrupted save, or a weights file replaced); save the model again`,
      );
    }
    start += bytes;
  }
}

/**
 * Writes the weights file, then model.json, each atomically (a reader never sees a half-written
 * file). model.json records the weights' SHA-256, so a pair torn by an interruption between the
 * two renames is refused at load rather than read as a model.
 */
async function saveArtifacts(location: string, artifacts: tf.io.ModelArtifacts, metadata?: Record<string, unknown>): Promise<tf.io.SaveResult> {
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
  const userDefinedMetadata = (metadata ?? artifacts.userDefinedMetadata) as {} | undefined;
  const modelJSON: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology ?? {},
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [weightsName], weights: artifacts.weightSpecs ?? [], sha256: await sha256Hex(weights) } as tf.io.WeightsManifestConfig[number]],
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(userDefinedMetadata ? { userDefinedMetadata } : {}),
    ...(artifacts.signature ? { signature: artifacts.signature } : {}),
    ...(artifacts.modelInitializer ? { modelInitializer: artifacts.modelInitializer } : {}),
    ...(artifacts.initializerSignature ? { initializerSignature: artifacts.initializerSignature } : {}),
  };
  await writeFileAtomic(path.join(dir, weightsName), weights);
  await writeFileAtomic(jsonPath, JSON.stringify(modelJSON));
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

/**
 * An IOHandler reading and writing a LayersModel at `path` (see the file comment).
 *
 * @example
 * await model.save(nodeFileSystem('/tmp/my-model'));            // model.json + weights.bin
 * const copy = await tf.loadLayersModel(nodeFileSystem('/tmp/my-model'));
 */
export function nodeFileSystem(path: string, options: { userDefinedMetadata?: Record<string, unknown> } = {}): tf.io.IOHandler {
  if (typeof path !== 'string' || path.length === 0) {
    throw new InvalidArgumentError(`nodeFileSystem: 'path' must be a non-empty string, received ${typeof path}`);
  }
  return { load: () => loadArtifacts(path), save: (artifacts) => saveArtifacts(path, artifacts, options.userDefinedMetadata) };
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
