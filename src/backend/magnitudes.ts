/**
 * The pass's share of the finiteness policy (statistics/finiteness.ts): every representation
 * squares what the pass hands it — Σ x xᵀ and Σ g gᵀ (KFAC, EKFAC), x²ᵀg² (Diag, QuasiDiag),
 * per-example gradients x ⊗ g and their Gram products (Dense, BlockDiag, LowRank, Implicit) —
 * each in its own order, so the same model would overflow float32 in some representations and
 * not in others. The pass therefore refuses, for every representation alike, a batch where a
 * collected layer's largest |input| m_x, largest |output gradient| m_g, or their product reaches
 * 2⁶⁴ ≈ 1.8·10¹⁹ (the square of such a value exceeds float32's largest, ≈ 2¹²⁸). Values that
 * large mean an overflowing model (weights or inputs of magnitude ~10¹⁹); sums that overflow
 * below the bound are still caught by each representation's own check, with the same error.
 */
import { tf } from '../tf.js';
import { NonFiniteError } from '../errors.js';
import type { LayerEntry } from '../layers/layer-collection.js';

/** 2⁶⁴: a magnitude whose square overflows float32. */
export const SQUARE_OVERFLOW_BOUND = 2 ** 64;

/** Checks one batch: the layer inputs once, the output gradients of every chunk of outputs. */
export class MagnitudeGuard {
  private inputMaxima: Float32Array | null = null;

  constructor(private readonly layers: readonly LayerEntry[]) {}

  /**
   * Reads the largest |x| (first call of the batch) and |g| of every layer in one transfer and
   * throws NonFiniteError naming the first layer past the bound (or holding NaN).
   */
  check(inputs: ReadonlyMap<string, tf.Tensor>, grads: ReadonlyMap<string, tf.Tensor>): void {
    const withInputs = this.inputMaxima === null;
    const maxima = tf.tidy(() => {
      const largest = (t: tf.Tensor) => tf.max(tf.abs(t.dtype === 'float32' ? t : tf.cast(t, 'float32')));
      const xs = withInputs ? this.layers.map((e) => largest(inputs.get(e.id)!)) : [];
      return tf.stack([...xs, ...this.layers.map((e) => largest(grads.get(e.id)!))]);
    });
    const values = maxima.dataSync() as Float32Array;
    maxima.dispose();
    const n = this.layers.length;
    if (withInputs) this.inputMaxima = values.slice(0, n);
    const gradMaxima = values.subarray(withInputs ? n : 0);
    this.layers.forEach((e, i) => {
      const mx = this.inputMaxima![i]!;
      const mg = gradMaxima[i]!;
      const what = !(mx < SQUARE_OVERFLOW_BOUND) ? `its inputs reach ${fmt(mx)}` : !(mg < SQUARE_OVERFLOW_BOUND) ? `its output gradients reach ${fmt(mg)}` : !(mx * mg < SQUARE_OVERFLOW_BOUND) ? `its per-example gradients reach ${fmt(mx)} × ${fmt(mg)} = ${fmt(mx * mg)}` : null;
      if (what === null) return;
      throw new NonFiniteError(
        `layer '${e.id}': ${what}, at or past 2^64 ≈ 1.8e19 — float32 overflow of the Fisher statistics (their squares exceed 3.4e38 ` +
          `in every representation: per-example gradients or layer inputs too large, e.g. weights or inputs of magnitude 1e19); ` +
          `the matrix would be meaningless. Rescale the weights or the inputs`,
      );
    });
  }
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toExponential(2) : String(v));
