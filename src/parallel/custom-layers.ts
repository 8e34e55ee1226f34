/**
 * Worker threads rebuild the model from its JSON with their own tfjs, whose class registry holds
 * only tfjs's built-in classes: a custom layer class registered in this thread
 * (`tf.serialization.registerClass`) is unknown there. `FIM({ workerSetup })` names an ES module
 * that each thread imports before rebuilding the model (it registers the classes there too);
 * without it, a model with such a layer is refused up front (an explicit `workers: k`) or
 * computed on this thread (`workers: 'auto'`), before any thread starts.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../object/arguments.js';
import { isNode, nodeBuiltin } from '../platform/node-builtin.js';

/**
 * The classes registered when the library was loaded: tfjs's own (a thread has the same). A
 * class registered before the library was imported counts as built-in here; the thread then
 * fails to rebuild it and the same advice comes from there (worker.ts).
 */
const BUILT_IN_CLASSES: ReadonlySet<string> = new Set(Object.keys(tf.serialization.SerializationMap.getMap().classNameMap));

/** The first layer (nested models searched) whose class a fresh thread would not know, or null. */
export function layerUnknownToThreads(model: tf.LayersModel): { name: string; className: string } | null {
  const visit = (layers: readonly tf.layers.Layer[]): { name: string; className: string } | null => {
    for (const layer of layers) {
      const className = layer.getClassName();
      if (!BUILT_IN_CLASSES.has(className)) return { name: layer.name, className };
      const inner = (layer as Partial<tf.LayersModel>).layers;
      if (Array.isArray(inner)) {
        const found = visit(inner);
        if (found) return found;
      }
    }
    return null;
  };
  return visit(model.layers);
}

/** Why threads cannot rebuild a model with `layer`, and the ways out. */
export function unknownLayerAdvice(layer: { name: string; className: string }): string {
  return (
    `layer '${layer.name}' is of class '${layer.className}', registered in this thread only: a worker thread cannot rebuild it. ` +
    `Give workerSetup: the path of an ES module that registers it (tf.serialization.registerClass), imported by each thread, or use workers: 1`
  );
}

/**
 * Validates the `workerSetup` option (a file path, relative to the current directory, or a
 * file: URL, of an ES module) and returns its file: URL; undefined when not given.
 */
export async function resolveWorkerSetup(value: unknown, where: string): Promise<string | undefined> {
  if (value === undefined) return undefined;
  const isUrl = value instanceof URL;
  if (!(isUrl || (typeof value === 'string' && value.length > 0))) {
    throw new InvalidArgumentError(`${where}: 'workerSetup' must be a module path or a file: URL, received ${describe(value)}`);
  }
  if (!isNode()) throw new InvalidArgumentError(`${where}: 'workerSetup' applies to worker threads, which need Node`);
  const urlModule = `node:${'url'}`; // computed, as in platform/node-builtin.ts: browser bundles resolve nothing
  const [{ pathToFileURL, fileURLToPath }, path, fs] = await Promise.all([
    import(/* webpackIgnore: true */ /* @vite-ignore */ urlModule) as Promise<typeof import('node:url')>,
    nodeBuiltin('path', 'workerSetup'),
    nodeBuiltin('fs', 'workerSetup'),
  ]);
  const text = isUrl ? value.href : value;
  let file: string;
  try {
    file = text.startsWith('file:') ? fileURLToPath(text) : path.resolve(text);
  } catch {
    throw new InvalidArgumentError(`${where}: 'workerSetup' ${JSON.stringify(text)} is not a file path or a file: URL`);
  }
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    throw new InvalidArgumentError(`${where}: 'workerSetup' module ${JSON.stringify(text)} does not exist (resolved to ${file})`);
  }
  return pathToFileURL(file).href;
}
