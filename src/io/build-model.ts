/**
 * Turning loaded model artifacts (topology + weight specs + weight bytes) into a tf.LayersModel
 * with typed errors and without leaking a tensor when anything fails.
 *
 * `tf.loadLayersModel` answers a bad file with raw tfjs errors ("Unknown layer: Foo", "Shape
 * mismatch", "4 of 4 weights are not set") and, when its `loadWeights` step throws, leaves both
 * the new model's variables and the decoded weight tensors behind. Here tfjs only deserializes
 * the topology (with its fast zero initialisation, which a model with weights to load allows);
 * the weights are then decoded and assigned by this module, inside a try whose failure path
 * disposes the model and the decoded tensors. A topology that fails half-way through building
 * may already have created some layers' variables: those are found by name in the engine's
 * variable registry and released too.
 * Browser-safe.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, NNGeometryError } from '../errors.js';
import { entriesBytes } from './weights-manifest.js';

/** What `buildModel` needs to know beyond the artifacts. */
export interface BuildOptions {
  /** Accept a topology with weights but no weight data (the weights keep tfjs's random initialisation). */
  allowMissingWeights: boolean;
}

/** The first line of a tfjs error message (its messages continue with long advice lists). */
function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
}

/** The way out for the tfjs failures a model file can cause. */
function hint(message: string): string {
  if (/Unknown (layer|initializer|regularizer|constraint|activation)/i.test(message)) {
    return 'a custom class must be registered with tf.serialization.registerClass before loading; a Python-only layer must be ported to tfjs';
  }
  if (/weights are not set|no target variable|Shape mismatch|Duplicate weight/i.test(message)) {
    return "the weight files do not belong to this topology; save the model again with model.save or saveModel";
  }
  return 'the file is not a model tfjs can rebuild; save it again with model.save or saveModel';
}

/** Wraps a tfjs failure while building `where` into the library's error, naming the file and the way out. */
function wrap(e: unknown, where: string): NNGeometryError {
  if (e instanceof NNGeometryError) return e;
  const message = firstLine(e).replace(/ This may be due to.*$/, '');
  return new InvalidArgumentError(`loadModel: ${where} could not be rebuilt (${message}); ${hint(message)}`);
}

/** Releases the variables tfjs registered since `before` (a half-built topology's layers). */
function releaseNewVariables(before: ReadonlySet<string>): void {
  const registry = tf.engine().registeredVariables;
  for (const name of Object.keys(registry)) {
    if (!before.has(name)) registry[name]!.dispose();
  }
}

/**
 * Deserializes the topology of `artifacts` with tfjs, with its weights left at zero when
 * `fastInit` (tfjs skips the initialisers when weights are about to be loaded; that choice is
 * made from `weightData` being present, so the handler below shows the data to that check and
 * hides it from tfjs's own decoding, which this module does instead).
 */
async function deserialize(artifacts: tf.io.ModelArtifacts, fastInit: boolean): Promise<tf.LayersModel> {
  let reads = 0;
  const placeholder = new ArrayBuffer(0);
  const view: tf.io.ModelArtifacts = {
    modelTopology: artifacts.modelTopology,
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
    ...(fastInit ? { weightSpecs: [] } : {}),
  };
  if (fastInit) {
    // First read: the fast-initialisation test; later reads: "is there data to load?" — no.
    Object.defineProperty(view, 'weightData', { enumerable: true, get: () => (reads++ === 0 ? placeholder : undefined) });
  }
  return tf.loadLayersModel({ load: async () => view }, { strict: true });
}

/**
 * A LayersModel from `artifacts`, its weights decoded from `weightData` by `weightSpecs`.
 *
 * @param where how errors name the source ("'dir/model.json'", "the given artifacts").
 * @throws InvalidArgumentError naming `where` and the way out, for every failure; nothing leaks.
 */
export async function buildModel(artifacts: tf.io.ModelArtifacts, where: string, options: BuildOptions): Promise<tf.LayersModel> {
  const topology = artifacts.modelTopology;
  if (topology === null || typeof topology !== 'object' || topology instanceof ArrayBuffer || Array.isArray(topology)) {
    throw new InvalidArgumentError(`loadModel: ${where} has no JSON 'modelTopology'; it is not a tfjs LayersModel (a graph model cannot be loaded as layers)`);
  }
  const specs = artifacts.weightSpecs ?? [];
  if (!Array.isArray(specs)) throw new InvalidArgumentError(`loadModel: ${where}: 'weightSpecs' must be an array`);
  const data = artifacts.weightData === undefined ? undefined : new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const expected = entriesBytes(specs, `loadModel: ${where}`);
  const hasWeights = specs.length > 0 && data !== undefined;
  if (hasWeights && data.byteLength !== expected) {
    throw new InvalidArgumentError(`loadModel: the weight data of ${where} holds ${data.byteLength} bytes but its manifest describes ${expected}`);
  }
  const variablesBefore = new Set(Object.keys(tf.engine().registeredVariables));
  let model: tf.LayersModel;
  try {
    model = await deserialize(artifacts, hasWeights);
  } catch (e) {
    releaseNewVariables(variablesBefore);
    throw wrap(e, where);
  }
  if (!hasWeights) {
    if (model.weights.length > 0 && !options.allowMissingWeights) {
      const count = model.weights.length;
      model.dispose();
      throw new InvalidArgumentError(
        `loadModel: ${where} has ${specs.length > 0 ? 'no weight data' : "no weights in its 'weightsManifest'"} but its topology has ${count} weights; ` +
          'they would keep random initial values. Point at the model.json saved with its weight files, or pass { allowMissingWeights: true } to accept random weights',
      );
    }
    return model;
  }
  let decoded: tf.NamedTensorMap = {};
  try {
    decoded = tf.io.decodeWeights(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer, specs);
    const modelWeights: tf.NamedTensorMap = {};
    for (const s of specs) if (s.group !== 'optimizer') modelWeights[s.name] = decoded[s.name]!;
    model.loadWeights(modelWeights, true);
    return model;
  } catch (e) {
    model.dispose();
    releaseNewVariables(variablesBefore);
    throw wrap(e, where);
  } finally {
    tf.dispose(Object.values(decoded));
  }
}
