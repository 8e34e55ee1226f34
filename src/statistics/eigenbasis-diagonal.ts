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
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { checkKroneckerLayers } from './kronecker-factors.js';
import { HostSum } from './host-sum.js';
import type { Statistic } from './statistic.js';

/** An eigenbasis of one block: U_A (k×k) and U_G (c×c), float64 row-major, eigenvectors in columns. */
export interface EigenbasisBlock {
  readonly k: number;
  readonly c: number;
  readonly uA: Float64Array;
  readonly uG: Float64Array;
}

/** The eigenbases of one layer: its Kronecker block and, when its bias is a separate block, that block's (c = 1, U_A = U_B). */
export interface LayerEigenbasis {
  readonly weights: EigenbasisBlock;
  readonly bias: EigenbasisBlock | null;
}

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
  const device = (b: EigenbasisBlock) => tf.tidy(() => ({ uA: tf.tensor2d(new Float32Array(b.uA), [b.k, b.k]), uG: tf.tensor2d(new Float32Array(b.uG), [b.c, b.c]) }));
  const bases = layers.map((l) => ({ weights: device(l.weights), bias: l.bias ? tf.tensor2d(new Float32Array(l.bias.uA), [l.bias.k, l.bias.k]) : null }));
  // Where each layer's sums are: its block, then its bias block.
  const at: number[] = [];
  layers.reduce((j, l) => (at.push(j), j + (l.bias ? 2 : 1)), 0);
  // The input factor's eigenbasis: U_A, or U_G where the rows come from the gradients (Conv2DTranspose).
  const basis = (i: number, of: 'input' | 'output') => {
    const { uA, uG } = bases[i]!.weights;
    return (supports[i]!.rowFactor === 'gradients') === (of === 'input') ? uG : uA;
  };
  let projected: tf.Tensor3D[] = [];
  const dropProjections = () => {
    tf.dispose(projected);
    projected = [];
  };
  return {
    // k output-major stacked outputs at once (k = 1 the plain case).
    onOutputs: (out) => {
      if (out.firstOutput === 0) {
        dropProjections();
        projected = lc.layers.map((e, i) => tf.keep(supports[i]!.projectInputs(e.layer, out.inputs.get(e.id)!, basis(i, 'input'))));
      }
      lc.layers.forEach((e, i) => {
        const grads = out.grads.get(e.id)!;
        const support = supports[i]!;
        sums[at[i]!]!.add(support.eigenbasisSquaredSum(e.layer, projected[i]!, grads, basis(i, 'output'), out.count));
        // Separate bias block: Σᵢ (U_Bᵀ bᵢ)∘² (tensors here are released by the pass's tidy scope).
        const uB = bases[i]!.bias;
        if (uB) sums[at[i]! + 1]!.add(tf.sum(tf.square(tf.matMul(support.separateBias!.gradients(e.layer, grads), uB)), 0));
      });
    },
    onBatchEnd: () => {
      sums.forEach((s) => s.flush());
      dropProjections();
    },
    result: (examples) => sums.map((s) => s.mean(examples)),
    dispose: () => {
      sums.forEach((s) => s.dispose());
      bases.forEach((b) => tf.dispose([b.weights.uA, b.weights.uG, ...(b.bias ? [b.bias] : [])]));
      dropProjections();
    },
  };
}
