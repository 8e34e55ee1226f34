/**
 * Peak-memory formulas of the representations (docs/performance.md, "Peak memory"), evaluated
 * on the bench's workloads so that `npm run bench` prints each estimate beside the measured
 * peak. Memory is counted in float32 tfjs tensors (4 bytes per float) above what existed before
 * the call (model weights and data excluded); float64 host arrays (the summed results, Kronecker
 * factors and their eigendecompositions) are not tfjs tensors and not counted.
 *
 * Symbols (per workload and layer collection):
 *   B  batch size;  n examples;  O square-root outputs (10 for `classif_logits`, 1 for one
 *      Monte-Carlo sample);  d parameters of the layer collection;
 *   A  activation floats per example: Σ over every layer of the model of its output size
 *      (the input included), so that one forward+backward of a batch keeps ≈ 2·B·A floats;
 *   P  the largest per-example feature matrix of a collected layer, max_ℓ S_ℓ·k_ℓ (S_ℓ output
 *      positions, k_ℓ = d_ℓ / c_ℓ inputs per output channel: the im2col patches of a
 *      convolution, in+1 for Dense);
 *   K  Σ_ℓ (k_ℓ² + c_ℓ²), the Kronecker factors' floats;  Σd²  Σ_ℓ d_ℓ², the diagonal blocks;
 *   dmax  the largest layer.
 */
import type * as tf from '@tensorflow/tfjs';
import type { LayerCollection } from '../src/index.js';

export interface Sizes {
  B: number;
  n: number;
  O: number;
  d: number;
  A: number;
  P: number;
  K: number;
  blocks: number;
  dmax: number;
}

/** The sizes of a layer collection of `model` for batches of B, n examples and O outputs. */
export function sizesOf(model: tf.LayersModel, lc: LayerCollection, B: number, n: number, O = 10): Sizes {
  const perExample = (shape: tf.Shape | tf.Shape[]): number => {
    const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
    return s.slice(1).reduce<number>((a, x) => a * (x ?? 1), 1);
  };
  const A = perExample(model.inputs[0]!.shape) + model.layers.reduce((a, l) => a + perExample(l.outputShape), 0);
  let P = 0;
  let K = 0;
  let blocks = 0;
  let dmax = 0;
  for (const e of lc.layers) {
    const out = (e.layer.outputShape as tf.Shape).slice(1);
    const c = out[out.length - 1] ?? 1;
    const positions = out.slice(0, -1).reduce<number>((a, x) => a * (x ?? 1), 1);
    const k = e.numel / c;
    P = Math.max(P, positions * k);
    K += k * k + c * c;
    blocks += e.numel * e.numel;
    dmax = Math.max(dmax, e.numel);
  }
  return { B, n, O, d: lc.numel(), A, P, K, blocks, dmax };
}

/** A peak-memory formula: its text (as in docs/performance.md) and its value in floats. */
export interface Formula {
  text: string;
  floats(s: Sizes): number;
  /** Whether the peak grows with n (the profiled run then uses every example, not 2 batches). */
  growsWithN: boolean;
}

const f = (text: string, floats: (s: Sizes) => number, growsWithN = false): Formula => ({ text, floats, growsWithN });
/** One engine pass keeps the forward activations and, for the O outputs back-propagated together (stacked along the batch axis), their cotangents. */
const tape = (s: Sizes) => 2 * (s.O + 1) * s.B * s.A;

/** The formulas, by key; the bench picks one per row. T = 2(O+1)BA is the engine's tape of one batch. */
export const FORMULAS = {
  unit: f('2BA + 2d', (s) => 2 * s.B * s.A + 2 * s.d),
  diag: f('T + OBP + 3d', (s) => tape(s) + s.O * s.B * s.P + 3 * s.d),
  kfac: f('T + OBP + 2K', (s) => tape(s) + s.O * s.B * s.P + 2 * s.K),
  updateDiag: f('T + OBP + 2K + 3d', (s) => tape(s) + s.O * s.B * s.P + 2 * s.K + 3 * s.d),
  quasiDiag: f('T + OBP + 4d', (s) => tape(s) + s.O * s.B * s.P + 4 * s.d),
  mixed: f('T + OBP + 2K + 3Σd²', (s) => tape(s) + s.O * s.B * s.P + 2 * s.K + 3 * s.blocks),
  dense: f('T + OBd + 3d²', (s) => tape(s) + s.O * s.B * s.d + 3 * s.d * s.d),
  blockDiag: f('T + OBd + 3Σd²', (s) => tape(s) + s.O * s.B * s.d + 3 * s.blocks),
  lowRank: f('T + 2Ond', (s) => tape(s) + 2 * s.O * s.n * s.d, true),
  implicit: f('T + OBP + 3d', (s) => tape(s) + s.O * s.B * s.P + 3 * s.d),
  jacobian: f('T + 2Ond', (s) => tape(s) + 2 * s.O * s.n * s.d, true),
  gram: f('T + OBP + 4(On)²', (s) => tape(s) + s.O * s.B * s.P + 4 * (s.O * s.n) ** 2, true),
  /** mv and solve of the stored representations: the result (float64 work happens on the host). */
  vector: f('d', (s) => s.d),
  /** The first mv/solve of KFAC/EKFAC also uploads the factors as float32. */
  vectorKronecker: f('d + K', (s) => s.d + s.K),
  lowRankSolve: f('Ond + d', (s) => s.O * s.n * s.d + s.d),
  lowRankTrace: f('2Ond', (s) => 2 * s.O * s.n * s.d),
  none: f('0', () => 0),
} satisfies Record<string, Formula>;

export type FormulaKey = keyof typeof FORMULAS;

/** The formula's estimate in bytes (float32). */
export function estimateBytes(key: FormulaKey, s: Sizes): number {
  return 4 * FORMULAS[key].floats(s);
}
