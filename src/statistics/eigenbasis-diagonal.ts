/**
 * The eigenbasis-diagonal statistic of EKFAC (George et al. 2018): given per layer the
 * eigenbases U_A (k×k) and U_G (c×c) of its Kronecker factors, the second moment of the
 * per-example gradients ∇W_{i,o} ([k, c] in the layer's parameter layout) in that basis,
 *   D[a, b] = (1/n) Σᵢ Σ_o (U_Aᵀ ∇W_{i,o} U_G)[a, b]²,
 * the best diagonal in the basis in Frobenius norm; and for a separate bias block with
 * eigenbasis U_B (Conv2DTranspose), (1/n) Σᵢ Σ_o (U_Bᵀ b_{i,o})∘².
 *
 * The inputs in the input factor's eigenbasis do not depend on the output: they are projected
 * once per batch and shared by all its square-root outputs (the projection cache).
 *
 * A wide input factor (A = RᵀR from m < k rows, decomposed through its Gram matrix) comes as its
 * range U_r (k×r): U_A = [Q_⊥, U_r] with Q_⊥ an orthonormal basis of the null space. Since
 * ∇W_{i,o} = X̃ᵢᵀ Γ_{i,o} (rows of X̃ᵢ: the example's input rows, one per shared position),
 * Q_⊥ᵀ ∇W_{i,o} = (X̃ᵢ Q_⊥)ᵀ Γ_{i,o} vanishes when every input row lies in span(U_r) — always
 * for the data the factor was built from. So the inputs are projected on U_r only (k·r
 * instead of k² per row) and each batch's rows are checked: when every row x̃ satisfies
 * ‖x̃ − U_r U_rᵀ x̃‖² ≤ NULL_SPACE_TOLERANCE·‖x̃‖², the batch's null rows of D are 0 (what they
 * are to rounding); from the first batch with a row outside, Q_⊥ is materialised
 * (`nullBasis()`) and the null rows are summed exactly like the others. Either way D is the
 * statistic of U_A = [Q_⊥, U_r]; the rows dropped from batches that passed the check weigh at
 * most NULL_SPACE_TOLERANCE of their gradients' squared norm (exactly so with one position per
 * example, Dense: ‖Q_⊥ᵀ x̃ γᵀ‖² = ‖P_⊥ x̃‖² ‖γ‖²).
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { KroneckerSupport } from '../layers/layer-kind.js';
import { checkKroneckerLayers } from './kronecker-factors.js';
import { HostSum } from './host-sum.js';
import type { Statistic } from './statistic.js';

/** An eigenbasis of one block: U_A (k×k) and U_G (c×c), float64 row-major, eigenvectors in columns. */
export interface EigenbasisBlock {
  readonly k: number;
  readonly c: number;
  /**
   * U_A (k×k row-major). With `range` it is read only when some batch's inputs leave span(U_r)
   * (an implicit basis materialises its null space then).
   */
  readonly uA: Float64Array;
  readonly uG: Float64Array;
  /**
   * For a wide input factor: U_r (k×rank row-major), the last `rank` columns of U_A (the first
   * k − rank, the null space of eigenvalue 0, being implicit). Absent: U_A serves throughout.
   */
  readonly range?: { readonly rank: number; readonly vectors: Float64Array };
}

/** The eigenbases of one layer: its Kronecker block and, when its bias is a separate block, that block's (c = 1, U_A = U_B). */
export interface LayerEigenbasis {
  readonly weights: EigenbasisBlock;
  readonly bias: EigenbasisBlock | null;
}

/**
 * The largest ‖P_⊥ x̃‖² / ‖x̃‖² of an input row (P_⊥ = I − U_r U_rᵀ) whose null-space part is
 * taken as 0. Rows of the factor's own data sit at float32 rounding, ~10⁻¹² here (the bench
 * CNN's 5,409-wide dense input: at most 1.2·10⁻¹³); rows of other data 0.2 there.
 */
export const NULL_SPACE_TOLERANCE = 1e-8;

/**
 * The diagonals D per block, float64 [k·c] row-major, in parameter order (each layer's block,
 * then its separate bias block if any), for the eigenbases `layers` of `lc`'s layers in order
 * (`representation` names the caller in the refusal of a layer without Kronecker factors).
 *
 * @example
 * const { value: diagonals } = await accumulate({ ...spec, loader }, eigenbasisDiagonal(lc, layers, 'PMatEKFAC'));
 */
export function eigenbasisDiagonal(lc: LayerCollection, layers: readonly LayerEigenbasis[], representation: string): Statistic<Float64Array[]> {
  const supports = checkKroneckerLayers(lc, representation);
  const blocks = layers.flatMap((l) => (l.bias ? [l.weights, l.bias] : [l.weights]));
  const sums = blocks.map((b) => new HostSum(b.k * b.c));
  // Where each layer's sums are: its block, then its bias block.
  const at: number[] = [];
  layers.reduce((j, l) => (at.push(j), j + (l.bias ? 2 : 1)), 0);
  const projectors: InputProjector[] = [];
  const biasBases: Array<tf.Tensor2D | null> = [];
  const uOutputs: tf.Tensor2D[] = [];
  const release = () => {
    projectors.forEach((p) => p.dispose());
    tf.dispose([...uOutputs, ...biasBases.filter((b): b is tf.Tensor2D => b !== null)]);
  };
  try {
    layers.forEach((l, i) => {
      // The input factor's eigenbasis: U_A, or U_G where the rows come from the gradients (Conv2DTranspose).
      const gradientRows = supports[i]!.rowFactor === 'gradients';
      const w = l.weights;
      projectors.push(gradientRows ? InputProjector.explicit(w.uG, w.c) : InputProjector.of(w, supports[i]!));
      uOutputs.push(upload(gradientRows ? w.uA : w.uG, gradientRows ? w.k : w.c, gradientRows ? w.k : w.c));
      biasBases.push(l.bias ? upload(l.bias.uA, l.bias.k, l.bias.k) : null);
    });
  } catch (e) {
    release();
    throw e;
  }
  return {
    // k output-major stacked outputs at once (k = 1 the plain case).
    onOutputs: (out) => {
      lc.layers.forEach((e, i) => {
        const support = supports[i]!;
        const projector = projectors[i]!;
        if (out.firstOutput === 0) projector.project(support, e.layer, out.inputs.get(e.id)!, out.batchSize);
        const grads = out.grads.get(e.id)!;
        const sum = sums[at[i]!]!;
        for (const part of projector.parts) sum.add(support.eigenbasisSquaredSum(e.layer, part.projected, grads, uOutputs[i]!, out.count), part.offset * blocks[at[i]!]!.c);
        // Separate bias block: Σᵢ (U_Bᵀ bᵢ)∘² (tensors here are released by the pass's tidy scope).
        const uB = biasBases[i];
        if (uB) sums[at[i]! + 1]!.add(tf.sum(tf.square(tf.matMul(support.separateBias!.gradients(e.layer, grads), uB)), 0));
      });
    },
    onBatchEnd: () => {
      sums.forEach((s) => s.flush());
      projectors.forEach((p) => p.drop());
    },
    result: (examples) => sums.map((s) => s.mean(examples)),
    dispose: () => {
      sums.forEach((s) => s.dispose());
      release();
    },
  };
}

function upload(a: Float64Array, rows: number, cols: number): tf.Tensor2D {
  return tf.tensor2d(new Float32Array(a), [rows, cols]);
}

/** A batch's inputs in (part of) the input eigenbasis: `projected` [B, S, rows], whose sums go to rows offset… of D. */
interface ProjectedPart {
  readonly projected: tf.Tensor3D;
  readonly offset: number;
}

/**
 * Projects each batch's inputs on a layer's input eigenbasis, once per batch: on U_A, or for a
 * wide factor on U_r, with the null-space basis Q_⊥ added from the first batch whose inputs
 * leave span(U_r) (see the file's documentation).
 */
class InputProjector {
  /** This batch's projections (kept across the pass's tidy scopes until `drop`). */
  parts: ProjectedPart[] = [];
  /** Q_⊥ on the device, once some batch needed it. */
  private nullBasis: tf.Tensor2D | null = null;

  private constructor(
    /** U_A, or U_r (the last `rank` columns of U_A). */
    private readonly basis: tf.Tensor2D,
    /** For a wide factor: the block, to materialise Q_⊥ from, and U_rᵀ for the check. */
    private readonly wide: { readonly block: EigenbasisBlock; readonly rangeT: tf.Tensor2D; readonly nullity: number } | null,
  ) {}

  static explicit(u: Float64Array, k: number): InputProjector {
    return new InputProjector(upload(u, k, k), null);
  }

  static of(block: EigenbasisBlock, support: KroneckerSupport): InputProjector {
    const range = block.range;
    // The check needs the input rows themselves: only the kinds that give them can stay thin.
    if (!range || range.rank >= block.k || !support.inputRows) return InputProjector.explicit(block.uA, block.k);
    const ur = upload(range.vectors, block.k, range.rank);
    return new InputProjector(ur, { block, rangeT: tf.transpose(ur), nullity: block.k - range.rank });
  }

  /** Projects the batch's inputs x ([B, ...], B = `batchSize`), replacing the previous batch's. */
  project(support: KroneckerSupport, layer: tf.layers.Layer, x: tf.Tensor, batchSize: number): void {
    this.drop();
    const wide = this.wide;
    if (!wide) {
      this.parts = [{ projected: tf.keep(support.projectInputs(layer, x, this.basis)), offset: 0 }];
      return;
    }
    // The rows X̃ [N = B·S, k] (what projectInputs multiplies by the basis), shared by the range
    // projection, the check and the null-space projection.
    const rows = support.inputRows!(layer, x, 'expand');
    const positions = rows.shape[0] / batchSize;
    const onto = (u: tf.Tensor2D) => tf.keep(tf.matMul(rows, u).reshape([batchSize, positions, u.shape[1]]) as tf.Tensor3D);
    const projected = onto(this.basis);
    this.parts = [{ projected, offset: wide.nullity }];
    if (!this.nullBasis && leavesRange(rows, projected, wide.rangeT)) {
      // Q_⊥: the first k − r columns of U_A (materialised by the basis's owner on first read).
      const { k, uA } = wide.block;
      const z = wide.nullity;
      const q = new Float32Array(k * z);
      for (let i = 0; i < k; i++) for (let j = 0; j < z; j++) q[i * z + j] = uA[i * k + j]!;
      this.nullBasis = tf.keep(tf.tensor2d(q, [k, z]));
    }
    if (this.nullBasis) this.parts.push({ projected: onto(this.nullBasis), offset: 0 });
  }

  drop(): void {
    tf.dispose(this.parts.map((p) => p.projected));
    this.parts = [];
  }

  dispose(): void {
    this.drop();
    tf.dispose([this.basis, ...(this.wide ? [this.wide.rangeT] : []), ...(this.nullBasis ? [this.nullBasis] : [])]);
    this.nullBasis = null;
  }
}

/** Whether some row x̃ of `rows` [N, k] has ‖x̃ − U_r U_rᵀ x̃‖² > NULL_SPACE_TOLERANCE·‖x̃‖², given its coordinates on U_r. */
function leavesRange(rows: tf.Tensor2D, projected: tf.Tensor3D, rangeT: tf.Tensor2D): boolean {
  const outside = tf.tidy(() => {
    const coords = projected.reshape([rows.shape[0], -1]) as tf.Tensor2D;
    const residual = tf.sub(rows, tf.matMul(coords, rangeT));
    return tf.any(tf.greater(tf.sum(tf.square(residual), 1), tf.mul(tf.sum(tf.square(rows), 1), NULL_SPACE_TOLERANCE)));
  });
  try {
    return outside.dataSync()[0] !== 0;
  } finally {
    outside.dispose();
  }
}
