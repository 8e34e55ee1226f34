/**
 * `tsx bench/yield-cost.ts`: what yielding to the event loop after every batch costs a pass,
 * and the pass's other per-batch check, the overflow guard (backend/magnitudes.ts: the largest
 * |input| and |output gradient| of every layer, read in one transfer).
 * The pass awaits one `yieldToEventLoop()` per batch (src/backend/yield.ts); this measures
 * (a) that await alone, microseconds per call, median of 5 runs of 20,000, and (b) the time
 * per batch of a FIM pass (PMatDiag, classif_logits, wasm) on the smallest model of the tests
 * (MLP 5-7-4, batches of 4: the worst case, where the batch itself costs least) and on the
 * bench MLP 784-512-512-10 (batches of 128). The overhead is (a) ÷ (b).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FIM, PMatDiag } from '../src/index.js';
import { yieldToEventLoop } from '../src/backend/yield.js';
import { MagnitudeGuard } from '../src/backend/magnitudes.js';
import { LayerCollection } from '../src/layers/layer-collection.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function yieldMicros(): Promise<number> {
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    for (let k = 0; k < 20000; k++) await yieldToEventLoop();
    runs.push(((performance.now() - t) * 1000) / 20000);
  }
  return median(runs);
}

async function msPerBatch(units: number[], batch: number, batches: number): Promise<number> {
  const model = tf.sequential();
  units.slice(1).forEach((u, i) =>
    model.add(tf.layers.dense({ units: u, activation: i < units.length - 2 ? 'relu' : 'linear', ...(i === 0 ? { inputShape: [units[0]!] } : {}) })),
  );
  const xs = tf.randomNormal([batch, units[0]!]);
  const loader = Array.from({ length: batches }, () => xs);
  const runs: number[] = [];
  for (let r = 0; r < 4; r++) {
    const t = performance.now();
    (await FIM({ model, loader, representation: PMatDiag, workers: 1 })).dispose();
    if (r > 0) runs.push((performance.now() - t) / batches); // the first run warms the kernels
  }
  xs.dispose();
  model.dispose();
  return median(runs);
}

await tf.setBackend('wasm');
await tf.ready();
const y = await yieldMicros();
console.log(`yieldToEventLoop: ${y.toFixed(2)} µs per call (median of 5 × 20,000)`);
for (const [name, units, batch, batches] of [
  ['MLP 5-7-4, batch 4', [5, 7, 4], 4, 400],
  ['MLP 784-512-512-10, batch 128', [784, 512, 512, 10], 128, 8],
] as const) {
  const ms = await msPerBatch([...units], batch, batches);
  console.log(`${name}: ${ms.toFixed(3)} ms per batch; one yield per batch = ${((y / 1000 / ms) * 100).toFixed(3)} % of the pass`);
}

// The guard on the bench MLP's batch of 128 with its 10 stacked outputs (gradients [1280, width]).
{
  const model = tf.sequential();
  [512, 512, 10].forEach((u, i) => model.add(tf.layers.dense({ units: u, ...(i === 0 ? { inputShape: [784] } : {}) })));
  const lc = LayerCollection.fromModel(model);
  const inputs = new Map(lc.layers.map((e, i) => [e.id, tf.randomNormal([128, [784, 512, 512][i]!])]));
  const grads = new Map(lc.layers.map((e, i) => [e.id, tf.randomNormal([1280, [512, 512, 10][i]!])]));
  const runs: number[] = [];
  for (let r = 0; r < 50; r++) {
    const t = performance.now();
    new MagnitudeGuard(lc.layers).check(inputs, grads);
    runs.push(performance.now() - t);
  }
  console.log(`overflow guard, MLP 784-512-512-10, batch 128 × 10 outputs: ${median(runs).toFixed(3)} ms per batch (median of 50)`);
  tf.dispose([...inputs.values(), ...grads.values()]);
  model.dispose();
}
