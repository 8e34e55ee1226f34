/**
 * `nngeometry info --model model.json [--json out.json]`: the model's layers, their parameter
 * counts and the representations each supports (Kronecker-factored ones need
 * `entry.kind.kronecker`; layers without trainable weights are traversed).
 */
import { tf } from '../../tf.js';
import { LayerCollection } from '../../index.js';
import { loadModelFile } from '../model-io.js';
import { REPRESENTATIONS } from '../representations.js';
import { formatTable } from '../format.js';
import { checkOutputFiles, writeOutputFile } from '../output-file.js';

export const INFO_USAGE = `nngeometry info --model model.json [--json out.json]`;

export interface LayerInfo {
  id: string;
  className: string;
  parameters: number;
  status: 'supported' | 'unsupported' | 'no trainable weights';
  representations: string[];
}

/** Leaf layers of a model with their ids ('inner/dense_1' inside nested models). */
function* leaves(model: tf.LayersModel, prefix = ''): Generator<{ id: string; layer: tf.layers.Layer }> {
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) yield* leaves(layer, `${prefix}${layer.name}/`);
    else yield { id: `${prefix}${layer.name}`, layer };
  }
}

/**
 * What `info` reports for each leaf layer: a layer is supported when the library's layer
 * collection takes it, and has the Kronecker-factored representations when its kind defines
 * `kronecker`.
 */
export function describeLayers(model: tf.LayersModel): LayerInfo[] {
  const lc = LayerCollection.fromModel(model, { ignoreUnsupported: true });
  return [...leaves(model)].map(({ id, layer }) => {
    const parameters = layer.trainableWeights.reduce((a, w) => a + (w.shape as number[]).reduce((x, y) => x * y, 1), 0);
    const className = layer.getClassName();
    if (parameters === 0) return { id, className, parameters, status: 'no trainable weights', representations: [] };
    if (!lc.has(id)) return { id, className, parameters, status: 'unsupported', representations: [] };
    const kind = lc.get(id).kind;
    const representations = REPRESENTATIONS.filter((r) => !r.needsKronecker || kind.kronecker !== undefined).map((r) => r.name);
    return { id, className, parameters, status: 'supported', representations };
  });
}

/**
 * Runs `nngeometry info`: prints the layer table (and writes it as JSON with `json`).
 *
 * @example
 * await infoCommand({ model: 'model.json' });
 */
export async function infoCommand(values: { model?: string; json?: string }): Promise<void> {
  checkOutputFiles({ '--json': values.json });
  const model = await loadModelFile(values.model!);
  const layers = describeLayers(model);
  const lc = LayerCollection.fromModel(model, { ignoreUnsupported: true });
  const all = REPRESENTATIONS.map((r) => r.name);
  console.log(`model '${model.name}': input [${model.inputs.map((i) => i.shape.map((s) => s ?? 'batch'))}], output [${model.outputs[0]!.shape.map((s) => s ?? 'batch')}]`);
  console.log(`${lc.numel().toLocaleString('en-US')} parameters in ${lc.layers.length} supported layer(s) (the FIM's d)\n`);
  const rows = layers.map((l) => [
    l.id,
    l.className,
    l.parameters.toLocaleString('en-US'),
    l.status === 'supported' ? (l.representations.length === all.length ? 'all' : `all but ${all.filter((r) => !l.representations.includes(r)).join(', ')} (no Kronecker factors)`) : l.status === 'unsupported' ? 'UNSUPPORTED (fim fails unless --ignore-unsupported)' : '— (traversed)',
  ]);
  console.log(formatTable([['layer', 'class', 'parameters', 'representations'], ...rows]));
  console.log(`\nrepresentations: ${all.join(', ')}`);
  if (values.json) await writeOutputFile(values.json, '--json', JSON.stringify({ name: model.name, parameters: lc.numel(), layers }, null, 2) + '\n');
}
