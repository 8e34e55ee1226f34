/**
 * Self-influence in a Kronecker eigenbasis without forming large per-example gradients: for a layer
 * whose per-example gradient is ∇Wᵢ = X̃ᵢᵀGᵢ, U_Aᵀ∇WᵢU_G = (X̃ᵢU_A)ᵀ(GᵢU_G), so the inputs are
 * projected once per batch and each example costs S·k·c (a Dense layer, S = 1: an outer product)
 * instead of the k²c + kc² of projecting a full [k, c] gradient (George et al. 2018 use the
 * same factorisation for the EK-FAC diagonal; here through the layer kind's own
 * `projectInputs` / `eigenbasisSquaredSum`, one example at a time). Then
 *   s_i = Σ_l Σ_ab (U_Aᵀ ∇W_i U_G)²_ab / (D_ab + λ).
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { OutputGradients } from '../backend/pass.js';
import { checkKroneckerLayers } from '../statistics/kronecker-factors.js';
import { layerJacobian } from '../statistics/contractions.js';
import { type KroneckerBlock, kroneckerQuadratic } from './curvature-spectrum.js';

/**
 * Blocks with k²c + kc² (the operations of projecting one per-example gradient) below this are
 * projected from their per-example gradients in one batched product; larger ones factored, one
 * example at a time (on tfjs-wasm a call costs about as much as 10⁶ multiply-adds).
 */
const FACTORED_MIN_OPERATIONS = 1e6;

/** Per layer: its weight block and, when separate (Conv2DTranspose), its bias block. */
function layerBlocks(lc: LayerCollection, blocks: ReadonlyArray<KroneckerBlock>): Array<{ weights: KroneckerBlock; bias: KroneckerBlock | null }> | null {
  let j = 0;
  const out: Array<{ weights: KroneckerBlock; bias: KroneckerBlock | null }> = [];
  for (const e of lc.layers) {
    const w = blocks[j++];
    if (!w || w.offset !== e.offset) return null;
    if (w.k * w.c === e.numel) out.push({ weights: w, bias: null });
    else {
      const b = blocks[j++];
      if (!b || b.c !== 1 || w.k * w.c + b.k !== e.numel) return null;
      out.push({ weights: w, bias: b });
    }
  }
  return j === blocks.length ? out : null;
}

/**
 * A per-batch reduction (inputs, output gradients of the loss) ↦ self-influence [B], or null
 * when a layer has no Kronecker support or the blocks do not match the layers (then the caller
 * projects per-example gradients instead).
 */
export function kroneckerSelfInfluence(lc: LayerCollection, blocks: ReadonlyArray<KroneckerBlock>, damping: number): ((out: OutputGradients) => tf.Tensor1D) | null {
  const byLayer = layerBlocks(lc, blocks);
  if (!byLayer) return null;
  let supports;
  try {
    supports = checkKroneckerLayers(lc, 'selfInfluence');
  } catch {
    return null;
  }
  const weight = (b: KroneckerBlock, shape: number[]) => tf.tensor(Float32Array.from(b.eigenvalues, (x) => 1 / (x + damping)), shape);
  return (out) =>
    tf.tidy(() => {
      const b = out.batchSize;
      return lc.layers
        .map((e, i) => {
          const support = supports[i]!;
          const { weights, bias } = byLayer[i]!;
          // The input factor's basis is U_A, or U_G where the rows come from the gradients.
          const swap = support.rowFactor === 'gradients';
          const uInput = swap ? weights.uG : weights.uA;
          const uOutput = swap ? weights.uA : weights.uG;
          const x = out.inputs.get(e.id)!;
          const g = out.grads.get(e.id)!;
          if (!bias && weights.k * weights.c * (weights.k + weights.c) < FACTORED_MIN_OPERATIONS) {
            // A small block: projecting its per-example gradients costs less than a call per example.
            return kroneckerQuadratic(weights, layerJacobian(e, out), (v) => 1 / (v + damping));
          }
          const projected = support.projectInputs(e.layer, x, uInput);
          const squares = Array.from({ length: b }, (_, n) => support.eigenbasisSquaredSum(e.layer, tf.slice(projected, [n], [1]), tf.slice(g, [n], [1]), uOutput, 1));
          let s = tf.sum(tf.mul(tf.stack(squares), weight(weights, [1, weights.k, weights.c])), [1, 2]);
          if (bias) {
            const pb = tf.matMul(support.separateBias!.gradients(e.layer, g), bias.uA);
            s = tf.add(s, tf.sum(tf.mul(tf.square(pb), weight(bias, [1, bias.k])), 1));
          }
          return s;
        })
        .reduce((a, c) => tf.add(a, c)) as tf.Tensor1D;
    });
}
