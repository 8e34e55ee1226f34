/**
 * `npm start`: the Fisher information matrix of the bundled CNN on the 2,000 bundled
 * Fashion-MNIST test images, in every representation the library has. Prints a table (memory,
 * time, trace, top eigenvalue, distance to the dense matrix on a sub-network), the SLQ spectral
 * density of the whole-model Fisher, and writes report.html (heatmaps, spectra, per-layer
 * traces, the density).
 *
 * Usage: tsx src/cli/start.ts [--model fmnist-cnn|fmnist-mlp] [--count 2000] [--out report.html] [--backend wasm|cpu]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { tf } from '../tf.js';
import { FIM, LayerCollection, PMatImplicit, initLinalg, linalgInfo, spectralDensity, type Variant } from '../index.js';
import { buildReport } from '../report/html.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { densitySection } from '../report/spectral.js';
import { useBackend } from './backend.js';
import { loadBundledData, loadBundledModel } from './bundled.js';
import { formatTable, humanBytes, num } from './format.js';
import { pickSubnetwork } from './measure.js';
import { ProgressBar } from './progress.js';
import { REPRESENTATIONS, type FisherRequest } from './representations.js';
import { type RunRecord, TABLE_HEADER, reportBody, tableNotes, tableRows } from './report-data.js';
import { type SubnetworkRun, disposeLoader, runSubnetwork, runWholeModel, skipReason } from './runs.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'fmnist-cnn' },
    count: { type: 'string', default: '2000' },
    out: { type: 'string', default: 'report.html' },
    backend: { type: 'string', default: 'wasm' },
    'batch-size': { type: 'string', default: '250' },
  },
});
// npm start must finish in about two minutes on a 2-core machine: a representation whose
// accumulation would take more than this many multiply-adds is left to the CLI.
const FLOP_BUDGET = 20e9;
const variant: Variant = 'classif_logits';

const started = performance.now();
await initLinalg();
const backend = await useBackend(args.backend!);
const model = await loadBundledModel(args.model!);
const inputShape = model.inputs[0]!.shape.slice(1) as number[];
const { xs, labels } = await loadBundledData({ inputShape, count: Number(args.count) });
const n = xs.shape[0]!;
const batchSize = Number(args['batch-size']);
const loader = Array.from({ length: Math.ceil(n / batchSize) }, (_, k) => ({ xs: xs.slice([k * batchSize], [Math.min(batchSize, n - k * batchSize)]) }));
const accuracy = tf.tidy(() => tf.mean(tf.equal(tf.argMax(model.predict(xs) as tf.Tensor, -1), tf.tensor1d(labels, 'int32'))).dataSync()[0]!);
const outputs = model.outputs[0]!.shape[1] as number;

const lc = LayerCollection.fromModel(model);
const sub = pickSubnetwork(model, lc, 400);
const describe = (c: LayerCollection) => `${c.layers.map((e) => `${e.id} ${e.numel.toLocaleString('en-US')}`).join(', ')}`;
const intro = [
  `model: data/models/${args.model}/model.json — ${describe(lc)} = ${lc.numel().toLocaleString('en-US')} parameters, accuracy ${(accuracy * 100).toFixed(1)}% on the bundled images`,
  `data: ${n.toLocaleString('en-US')} Fashion-MNIST test images (bundled, MIT licence, Zalando SE), batches of ${batchSize}`,
  `FIM variant ${variant}, tfjs ${tf.version.tfjs} on '${backend}', float64 linear algebra: ${linalgInfo().implementation}`,
];
console.log(`nngeometry — the Fisher information matrix in every representation\n${intro.join('\n')}\n`);

const base: Omit<FisherRequest, 'layerCollection'> = { model, loader, variant };
const runs: RunRecord[] = REPRESENTATIONS.map((info) => ({ info, whole: { skipped: 'not run' }, sub: null }));

// Sub-network first: the dense reference, then every representation against it.
console.error(`sub-network for the heatmaps: ${describe(sub)} (d = ${sub.numel()})`);
const denseIndex = runs.findIndex((r) => r.info.name === 'dense');
const order = [denseIndex, ...runs.keys()].filter((i, k, all) => all.indexOf(i) === k);
let reference: Float32Array | null = null;
for (const i of order) {
  const r = runs[i]!;
  const reason = skipReason(r.info, sub, n, outputs, { maxBytes: 1e9, maxFlops: Infinity });
  if (reason) {
    r.sub = { skipped: reason };
    continue;
  }
  const bar = new ProgressBar(`${r.info.representation.representationName} (sub-network)`, { total: n });
  const run: SubnetworkRun = await runSubnetwork(r.info, { ...base, layerCollection: sub, onProgress: bar.onProgress }, reference);
  bar.finish();
  if (r.info.name === 'dense') reference = run.entries;
  r.sub = run;
}

// Whole model.
for (const r of runs) {
  const reason = skipReason(r.info, lc, n, outputs, { maxBytes: 1e9, maxFlops: FLOP_BUDGET });
  if (reason) {
    r.whole = { skipped: reason };
    continue;
  }
  const bar = new ProgressBar(`${r.info.representation.representationName} (whole model)`, { total: n });
  r.whole = await runWholeModel(r.info, { ...base, layerCollection: lc, onProgress: bar.onProgress });
  bar.finish();
}

// The spectral density of the whole-model Fisher by stochastic Lanczos quadrature, matrix-free
// (every product one pass): on the first SLQ_EXAMPLES images to keep npm start short.
const SLQ_EXAMPLES = Math.min(n, 250);
const SLQ = { probes: 4, steps: 24 };
const slqStart = performance.now();
const slqLoader = [{ xs: xs.slice([0], [SLQ_EXAMPLES]) }];
const slqBar = new ProgressBar(`SLQ density (${SLQ.probes} probes × ${SLQ.steps} steps, ${SLQ_EXAMPLES} images)`, { total: SLQ.probes * SLQ.steps });
const implicit = await FIM({ model, loader: slqLoader, layerCollection: lc, variant, representation: PMatImplicit });
const density = await spectralDensity(implicit, { ...SLQ, seed: 0, onProgress: (p) => slqBar.onProgress({ examplesDone: p.products, examplesTotal: p.maxProducts }) });
slqBar.finish();
implicit.dispose();
disposeLoader(slqLoader);
const slqSeconds = (performance.now() - slqStart) / 1000;
const bulk = density.weights.reduce((a, w, j) => a + (density.nodes[j]! < 1e-3 * Math.max(...density.nodes) ? w : 0), 0);
const slqLine = `SLQ spectral density of the whole-model Fisher on ${SLQ_EXAMPLES} images (${SLQ.probes} probes × ${SLQ.steps} Lanczos steps, ${density.products} passes, ${slqSeconds.toFixed(1)} s): ` +
  `nodes in [${num(Math.min(...density.nodes), 3)}, ${num(Math.max(...density.nodes), 3)}]; ${(100 * bulk).toFixed(0)}% of the spectral mass below 10⁻³·λ_max`;

const wholeLabel = `the whole model (d = ${lc.numel().toLocaleString('en-US')}, n = ${n.toLocaleString('en-US')})`;
console.log(`On ${wholeLabel}; distances on the sub-network ${describe(sub)} (d = ${sub.numel()}):\n`);
console.log(formatTable([TABLE_HEADER, ...tableRows(runs)]));
const notes = tableNotes(runs, 'the whole model');
if (notes.length) console.log(`\n${notes.map((s) => `- ${s}`).join('\n')}`);
console.log(`\n${slqLine}`);

const subLabel = `Each representation computed on the sub-network ${describe(sub)} (d = ${sub.numel()}) over all ${n.toLocaleString('en-US')} images; F is the dense matrix.`;
const html = buildReport({
  title: `Fisher information of ${args.model} on Fashion-MNIST`,
  intro,
  ...reportBody(runs, sub, 'the whole model', subLabel),
  sections: [densitySection([{ name: 'FIM (whole model)', nodes: density.nodes, weights: density.weights }], slqLine)],
  footer: `Generated by nngeometry (npm start) in ${((performance.now() - started) / 1000).toFixed(0)} s. Fashion-MNIST © 2017 Zalando SE, MIT licence.`,
});
const out = resolve(args.out!);
await writeFileAtomic(out, html);
console.log(`\nwrote ${out} (${humanBytes(html.length)}) in ${((performance.now() - started) / 1000).toFixed(1)} s total`);

disposeLoader(loader);
xs.dispose();
model.dispose();
