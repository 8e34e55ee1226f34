/**
 * The empirical neural tangent kernel of a small MLP and its spectrum
 * (`npx tsx examples/ntk-spectrum.ts`).
 *
 * K[o, i, o', j] = ⟨∂f_o(x_i)/∂θ, ∂f_o'(x_j)/∂θ⟩ on 64 bundled Fashion-MNIST images (10 logits, so
 * K is 640 × 640), computed by `GramMatrix` and diagonalised by `eigendecomposition()`. Prints the
 * top eigenvalues, the share of the trace they hold and the effective rank
 * exp(H(λ/Σλ)) (Roy & Vetterli), next to the participation ratio (Σλ)²/Σλ².
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { GramMatrix, FMatDense } from '../src/index.js';
import { loadBundledData } from '../src/cli/bundled.js';

/** What `run` prints, for tests. */
export interface NtkSpectrumResult {
  /** Number of examples n and outputs O (K is (O·n)²). */
  examples: number;
  outputs: number;
  /** trace(K) from the matrix itself. */
  trace: number;
  /** All eigenvalues, descending. */
  eigenvalues: number[];
  /** exp of the entropy of the normalised spectrum. */
  effectiveRank: number;
  /** (Σλ)² / Σλ². */
  participationRatio: number;
}

/** Builds a seeded MLP 784-h-10 (tanh), untrained: the NTK at initialisation. */
function mlp(hidden: number): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: hidden, inputShape: [784], activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 11 }) }));
  model.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotNormal({ seed: 12 }) }));
  return model;
}

/**
 * Computes the NTK of the MLP on the first n bundled images and its eigendecomposition.
 * `small`: 32 examples and 16 hidden units instead of 64 and 32.
 */
export async function run(options: { small?: boolean; log?: (line: string) => void } = {}): Promise<NtkSpectrumResult> {
  const log = options.log ?? console.log;
  const n = options.small ? 32 : 64;
  const hidden = options.small ? 16 : 32;
  const model = mlp(hidden);
  const { xs } = await loadBundledData({ inputShape: [784], count: n });
  try {
    const K = await GramMatrix({ model, loader: xs, representation: FMatDense });
    const trace = K.trace();
    const eig = K.eigendecomposition();
    eig.vectors.dispose();
    K.dispose();
    const eigenvalues = Array.from(eig.values);
    const sum = eigenvalues.reduce((s, v) => s + v, 0);
    const positive = eigenvalues.filter((v) => v > 0);
    const entropy = -positive.reduce((s, v) => s + (v / sum) * Math.log(v / sum), 0);
    const effectiveRank = Math.exp(entropy);
    const participationRatio = sum ** 2 / eigenvalues.reduce((s, v) => s + v * v, 0);

    log(`NTK of an MLP 784-${hidden}-10 (tanh, at initialisation), d = ${model.countParams()}, on ${n} bundled images: K is ${10 * n} × ${10 * n}`);
    log(`trace(K) = ${trace.toPrecision(6)}, Σλ = ${sum.toPrecision(6)}`);
    const top = eigenvalues.slice(0, 10);
    log(`top eigenvalues: ${top.map((v) => v.toPrecision(4)).join(', ')}`);
    let acc = 0;
    for (const k of [1, 10, n]) {
      acc = eigenvalues.slice(0, k).reduce((s, v) => s + v, 0);
      log(`  top ${String(k).padStart(3)} hold ${((100 * acc) / sum).toFixed(1)}% of the trace`);
    }
    log(`smallest eigenvalue: ${eigenvalues[eigenvalues.length - 1]!.toExponential(3)}`);
    log(`effective rank exp(H) = ${effectiveRank.toFixed(2)}, participation ratio = ${participationRatio.toFixed(2)} (of ${10 * n})`);
    return { examples: n, outputs: 10, trace, eigenvalues, effectiveRank, participationRatio };
  } finally {
    xs.dispose();
    model.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await tf.setBackend('wasm');
  await tf.ready();
  await run({ small: process.argv.includes('--small') });
}
