/**
 * The README's quick example, runnable (`npx tsx examples/quickstart.ts`): computes the Fisher
 * information matrix of a small classifier in every representation the library has and prints
 * trace, Frobenius norm, and time for each, next to the relative gap of vᵀFv to the dense
 * matrix. (`npm start` does the same on a real model and data set: src/cli/start.ts.)
 *
 * Model: an MLP 20-32-32-5 (tanh) on 512 seeded synthetic examples (4 batches of 128).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  FIM,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatImplicit,
  PMatKFAC,
  PMatQuasiDiag,
  PMatLowRank,
  PVector,
  type AnyPMat,
  type Representation,
} from '../src/index.js';

await tf.setBackend('wasm');
await tf.ready();

const model = tf.sequential();
model.add(tf.layers.dense({ units: 32, inputShape: [20], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }));
model.add(tf.layers.dense({ units: 32, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }));
model.add(tf.layers.dense({ units: 5, kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }));

const loader = Array.from({ length: 4 }, (_, k) => ({ xs: tf.randomNormal([128, 20], 0, 1, 'float32', 100 + k) }));

console.log(`nngeometry quick start — tfjs ${tf.version.tfjs} on '${tf.getBackend()}'`);
console.log(`model: MLP 20-32-32-5, d = ${model.countParams()} parameters, n = 512 examples, variant classif_logits\n`);

const dense = await FIM({ model, loader, representation: PMatDense });
const v = PVector.random(dense.layerCollection, 1);
const reference = { trace: dense.trace(), vTMv: dense.vTMv(v) };

const rows: string[][] = [['representation', 'time (ms)', 'trace', '‖F‖_F', 'vᵀFv', 'rel. gap vᵀFv to dense']];
const reps: Array<Representation<AnyPMat>> = [PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag, PMatEKFACBlockDiag, PMatImplicit];
for (const rep of reps) {
  const t0 = performance.now();
  const F = await FIM({ model, loader, representation: rep });
  const trace = await F.trace();
  const ms = performance.now() - t0;
  const vtmv = await F.vTMv(v);
  const fro = F.norm?.('fro').toPrecision(6) ?? 'n/a (matrix-free)';
  rows.push([rep.representationName, ms.toFixed(0), trace.toPrecision(6), fro, vtmv.toPrecision(6), (Math.abs(vtmv - reference.vTMv) / reference.vTMv).toExponential(2)]);
  F.dispose();
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
console.log('\nDiag, BlockDiag, QuasiDiag and the Kronecker-factored ones approximate F, so their vᵀFv differs from the dense one; LowRank and Implicit are exact.');

dense.dispose();
v.dispose();
loader.forEach((b) => b.xs.dispose());
model.dispose();
