/**
 * The browser demo: loads a bundled model and the bundled Fashion-MNIST images, computes the
 * chosen representation of the FIM on a small sub-network (demo/compute.ts) with tfjs — webgl,
 * else wasm, else cpu, or the backend named by `?backend=` — and draws it next to the dense one.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { parseIdx } from '../src/cli/idx.js';
import { num } from '../src/cli/format.js';
import { findRepresentation } from '../src/cli/representations.js';
import { correlationMatrix, heatmapRGBA } from '../src/report/heatmap.js';
import { preloadSimdKernels } from '../src/backend/kernels/simd/index.js';
import { DEMO_MODELS, DEMO_REPRESENTATIONS, computeDemo, type DemoResult } from './compute.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string) => ($('status').textContent = text);

/** Tries the requested backend, else webgl → wasm → cpu; returns the one in use. */
async function chooseBackend(): Promise<string> {
  setWasmPaths(new URL('tfjs-wasm/', document.baseURI).href);
  const requested = new URLSearchParams(location.search).get('backend');
  for (const name of requested ? [requested] : ['webgl', 'wasm', 'cpu']) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        // Browsers refuse synchronous compilation of the SIMD module on the main thread.
        if (name === 'wasm') await preloadSimdKernels();
        return name;
      }
    } catch {
      // not available here: try the next one
    }
  }
  throw new Error(`no tfjs backend could be initialised${requested ? ` (requested '${requested}')` : ''}`);
}

/** Fetches a gzipped IDX file of the bundle. */
async function fetchIdx(path: string) {
  const response = await fetch(path);
  if (!response.ok || !response.body) throw new Error(`${path}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await new Response(response.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
  return parseIdx(bytes, path);
}

function draw(canvas: HTMLCanvasElement, entries: Float32Array, d: number): void {
  canvas.width = d;
  canvas.height = d;
  const ctx = canvas.getContext('2d')!;
  ctx.putImageData(new ImageData(heatmapRGBA(correlationMatrix(entries, d), d) as Uint8ClampedArray<ArrayBuffer>, d, d), 0, 0);
}

function show(r: DemoResult, backend: string): void {
  draw($('heatmap'), r.entries, r.d);
  draw($('reference'), r.reference, r.d);
  $('heatmap-caption').textContent = `${r.representation}: ‖M − F‖/‖F‖ = ${num(r.distance, 3)}`;
  const cells: Record<string, string> = {
    representation: r.representation,
    layers: r.layers.map((l) => `${l.id} (${l.numel})`).join(', '),
    d: String(r.d),
    n: String(r.n),
    time: r.seconds.toFixed(2),
    bytes: r.bytes === null ? '—' : r.bytes.toLocaleString('en-US'),
    trace: num(r.trace),
    frobenius: num(r.frobenius),
    top: num(r.topEigenvalue),
    distance: num(r.distance),
  };
  for (const [k, v] of Object.entries(cells)) $(`out-${k}`).textContent = v;
  $('numbers').hidden = false;
  status(`done: ${r.representation} on ${r.n} examples in ${r.seconds.toFixed(2)} s (${backend})`);
  document.body.dataset.state = 'done';
}

async function start(): Promise<void> {
  const backend = await chooseBackend();
  $('backend').textContent = backend;
  const modelSelect = $<HTMLSelectElement>('model');
  const repSelect = $<HTMLSelectElement>('representation');
  for (const m of DEMO_MODELS) modelSelect.add(new Option(m, m));
  for (const r of DEMO_REPRESENTATIONS) repSelect.add(new Option(`${findRepresentation(r).representation.representationName} — ${findRepresentation(r).summary}`, r));
  const params = new URLSearchParams(location.search);
  if (params.get('model')) modelSelect.value = params.get('model')!;
  if (params.get('representation')) repSelect.value = params.get('representation')!;
  status('loading the Fashion-MNIST images…');
  const images = await fetchIdx('data/fashion-mnist/test-images-idx3-ubyte.gz');
  const pixels = Float32Array.from(images.data, (v) => v / 255);
  const models = new Map<string, tf.LayersModel>();
  const button = $<HTMLButtonElement>('compute');
  button.disabled = false;
  status(`ready (tfjs ${tf.version.tfjs} on ${backend})`);
  document.body.dataset.state = 'ready';
  $('controls').addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      button.disabled = true;
      document.body.dataset.state = 'computing';
      try {
        const name = modelSelect.value;
        if (!models.has(name)) models.set(name, await tf.loadLayersModel(`data/models/${name}/model.json`));
        const model = models.get(name)!;
        const n = Number($<HTMLSelectElement>('examples').value);
        status(`computing ${repSelect.value} on ${n} examples…`);
        const inputShape = model.inputs[0]!.shape.slice(1) as number[];
        const xs = tf.tensor(pixels.subarray(0, n * 784), [n, ...inputShape]);
        try {
          show(await computeDemo(model, xs, repSelect.value, n), backend);
        } finally {
          xs.dispose();
        }
      } catch (e) {
        status(`error: ${(e as Error).message}`);
        document.body.dataset.state = 'error';
      } finally {
        button.disabled = false;
      }
    })();
  });
}

start().catch((e: unknown) => {
  status(`error: ${(e as Error).message}`);
  document.body.dataset.state = 'error';
});
