/**
 * tf.layers.embedding: integer tokens x [B, ...] (any rank; cast to int32 as tfjs does),
 * embeddings E [V, D], s = E[x] (a gather). With the one-hot rows e(x_t) as features the layer
 * is a Dense layer without bias over the T token positions of an example, so per example
 *
 *   ∂f̃/∂E = Σ_t e(x_t) g_tᵀ   — the gradients g_t scattered into the rows of the used tokens,
 *
 * in E's row-major [V, D] layout; and with CONVENTIONS.md's 'expand' Kronecker factors
 * A = Σ_t e(x_t) e(x_t)ᵀ = diag(token counts), G = (1/T) Σ_t g_t g_tᵀ.
 *
 * Nothing of size B·V·D is formed except where the contract asks for it
 * (`perExampleGradients`); with ids k = (example, token) computed on the host:
 *   squaredGradientSum = Σ_{(i,v)} (Σ_{t: x_it = v} g_it)²  (segment sums, then a scatter),
 *   gradientDot_i = Σ_t ⟨g_it, V[x_it]⟩  (a gather),  weightedGradientSum = scatter of u_i g_it,
 *   gradientGram_ij = Σ_{t,s} [x_at = x_bs] ⟨g_at, g_bs⟩  (a [B_a·T_a, B_b·T_b] product).
 * Masks (`maskZero`) are not propagated by the executor, which refuses models that produce them.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { LayerKind } from './layer-kind.js';
import { tiledContractions } from './stacked-fallback.js';
import { linearLayerKind, parameterSpecs } from './linear-kind.js';
import { checkWeightCount } from './conv-geometry.js';
import { layerActivation } from './tfjs-internals.js';

function tableOf(layer: tf.layers.Layer, given?: readonly tf.Tensor[]): tf.Tensor2D {
  return (given?.[0] ?? layer.trainableWeights[0]!.read()) as tf.Tensor2D;
}

/** Tokens as int32 [B, T] (T = 1 for inputs of rank 1), checked against the vocabulary size. */
function tokens(layer: tf.layers.Layer, x: tf.Tensor): { ids: tf.Tensor2D; host: Int32Array; vocab: number } {
  const vocab = tableOf(layer).shape[0];
  const ids = (x.dtype === 'int32' ? x : tf.cast(x, 'int32')).reshape([x.shape[0]!, -1]) as tf.Tensor2D;
  const host = ids.dataSync() as Int32Array;
  for (const t of host) {
    if (t < 0 || t >= vocab) {
      throw new InvalidArgumentError(`layer '${layer.name}' (Embedding): token ${t} is outside the vocabulary [0, ${vocab})`);
    }
  }
  return { ids, host, vocab };
}

/** Gradients as [B·T, D]. */
const flatGradients = (g: tf.Tensor) => g.reshape([-1, g.shape[g.shape.length - 1]!]) as tf.Tensor2D;

/** Example index of every (example, position) slot: i for the T slots of example i. */
function exampleOfSlot(b: number, t: number): Int32Array {
  return Int32Array.from({ length: b * t }, (_, k) => Math.floor(k / t));
}

const base = linearLayerKind({
  name: 'embedding',
  classNames: ['Embedding'],
  parameters(layer) {
    checkWeightCount(layer, 'Embedding', 1, 1, 'embeddings');
    return parameterSpecs(layer, ['embeddings']);
  },
  preactivation(layer, x, given) {
    return tf.tidy(() => {
      const table = tableOf(layer, given);
      const ids = (x.dtype === 'int32' ? x : tf.cast(x, 'int32')).reshape([-1]);
      return tf.gather(table, ids).reshape([...x.shape, table.shape[1]]);
    });
  },
  features(layer, x) {
    const { ids, vocab } = tokens(layer, x);
    return tf.oneHot(ids, vocab).toFloat() as tf.Tensor3D;
  },
  gradients(_layer, g) {
    return g.reshape([g.shape[0]!, -1, g.shape[g.shape.length - 1]!]) as tf.Tensor3D;
  },
});

export const embeddingKind: LayerKind = {
  ...base,
  activate(layer, s) {
    const act = layerActivation(layer);
    return act ? act.apply(s) : s;
  },
  perExampleGradients(layer, x, g) {
    return tf.tidy(() => {
      const { host, vocab } = tokens(layer, x);
      const b = x.shape[0]!;
      const t = host.length / b;
      const d = g.shape[g.shape.length - 1]!;
      const slot = Int32Array.from(host, (v, k) => Math.floor(k / t) * vocab + v);
      return tf.unsortedSegmentSum(flatGradients(g), tf.tensor1d(slot, 'int32'), b * vocab).reshape([b, vocab * d]) as tf.Tensor2D;
    });
  },
  // Token-wise rules for one output; k stacked outputs repeat the tokens k times.
  ...tiledContractions({
    squaredGradientSum(layer, x, g) {
      return tf.tidy(() => {
        const { host, vocab } = tokens(layer, x);
        const t = host.length / x.shape[0]!;
        // One segment per distinct (example, token) pair: the rows of ∂f̃/∂E that are not zero.
        const segment = new Int32Array(host.length);
        const tokenOfSegment: number[] = [];
        const seen = new Map<number, number>();
        host.forEach((v, k) => {
          const key = Math.floor(k / t) * vocab + v;
          let s = seen.get(key);
          if (s === undefined) {
            s = tokenOfSegment.length;
            seen.set(key, s);
            tokenOfSegment.push(v);
          }
          segment[k] = s;
        });
        const rows = tf.unsortedSegmentSum(flatGradients(g), tf.tensor1d(segment, 'int32'), tokenOfSegment.length);
        const sums = tf.unsortedSegmentSum(tf.square(rows), tf.tensor1d(tokenOfSegment, 'int32'), vocab);
        return sums.reshape([-1]) as tf.Tensor1D;
      });
    },
    gradientDot(layer, x, g, v) {
      return tf.tidy(() => {
        const { ids } = tokens(layer, x);
        const d = g.shape[g.shape.length - 1]!;
        const picked = tf.gather(v.reshape([-1, d]), ids.reshape([-1]));
        return tf.sum(tf.mul(picked, flatGradients(g)).reshape([x.shape[0]!, -1]), 1) as tf.Tensor1D;
      });
    },
    weightedGradientSum(layer, x, g, u) {
      return tf.tidy(() => {
        const { ids, host, vocab } = tokens(layer, x);
        const b = x.shape[0]!;
        const weights = tf.gather(u, tf.tensor1d(exampleOfSlot(b, host.length / b), 'int32')).reshape([-1, 1]);
        return tf.unsortedSegmentSum(tf.mul(flatGradients(g), weights), ids.reshape([-1]) as tf.Tensor1D, vocab).reshape([-1]) as tf.Tensor1D;
      });
    },
  }),
  gradientGram(layer, xa, ga, xb, gb) {
    return tf.tidy(() => {
      const a = tokens(layer, xa).ids.reshape([-1, 1]);
      const b = tokens(layer, xb).ids.reshape([1, -1]);
      const same = tf.cast(tf.equal(a, b), 'float32');
      const gg = tf.matMul(flatGradients(ga), flatGradients(gb), false, true);
      const [na, nb] = [xa.shape[0]!, xb.shape[0]!];
      return tf.sum(tf.mul(same, gg).reshape([na, a.shape[0]! / na, nb, b.shape[1]! / nb]), [1, 3]) as tf.Tensor2D;
    });
  },
  kronecker: {
    ...base.kronecker!,
    inputFactor(layer, x, type) {
      return tf.tidy(() => {
        const { ids, host, vocab } = tokens(layer, x);
        if (type === 'expand') {
          // Σ_i Σ_t e(x_it) e(x_it)ᵀ = diag(token counts over the batch).
          const counts = tf.unsortedSegmentSum(tf.ones([host.length]), ids.reshape([-1]) as tf.Tensor1D, vocab);
          return tf.diag(counts) as tf.Tensor2D;
        }
        // Σ_i x̄_i x̄_iᵀ with x̄_i = (1/T) counts_i: the per-example counts as a [B, V] matrix.
        const b = x.shape[0]!;
        const t = host.length / b;
        const slot = Int32Array.from(host, (v, k) => Math.floor(k / t) * vocab + v);
        const counts = tf.unsortedSegmentSum(tf.fill([host.length], 1 / t), tf.tensor1d(slot, 'int32'), b * vocab).reshape([b, vocab]);
        return tf.matMul(counts, counts, true, false) as tf.Tensor2D;
      });
    },
    projectInputs(layer, x, uA) {
      // e(x_t)ᵀ U_A is row x_t of U_A.
      return tf.tidy(() => {
        const { ids } = tokens(layer, x);
        return tf.gather(uA, ids.reshape([-1])).reshape([ids.shape[0], ids.shape[1], uA.shape[1]]) as tf.Tensor3D;
      });
    },
  },
};
