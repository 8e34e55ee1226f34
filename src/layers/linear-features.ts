/**
 * Shared algebra of the layers whose per-example gradient is a sum of outer products over
 * shared positions: for features X̃_i ∈ R^{S×K} (inputs augmented with a 1 when the layer has a
 * bias) and pre-activation gradients G_i ∈ R^{S×C}, the gradient is X̃_iᵀ G_i ∈ R^{K×C}, whose
 * row-major flattening is exactly "kernel then bias" in tfjs layout (CONVENTIONS.md). Dense has
 * S = product of the middle axes (1 for 2-D inputs); Conv2D has X̃ = image patches and
 * S = H_out·W_out.
 *
 * Every contraction avoids per-example outer products where an identity exists, e.g. for S = 1
 * Σ_i (x̃_i g_iᵀ)² = (x̃∘x̃)ᵀ(g∘g) (one matrix product), and ⟨X̃_iᵀG_i, V⟩ = Σ_s ((X̃_i V)∘G_i).
 */
import { tf } from '../tf.js';
// XᵀX with the project's SIMD kernel on wasm (half the products, ~2x XNNPACK), tf.matMul elsewhere.
import { symmetricRankUpdate } from '../backend/kernels/simd/index.js';

/** Features [B, S, K] and gradients [B, S, C] of one layer on one batch. */
export interface LinearFeatures {
  readonly features: tf.Tensor3D;
  readonly gradients: tf.Tensor3D;
}

/** Row i = vec(X̃_iᵀ G_i), shape [B, K·C]. */
export function linearPerExampleGradients({ features, gradients }: LinearFeatures): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, s, k] = features.shape;
    const c = gradients.shape[2];
    if (s === 1) {
      // Broadcast product is several times faster than a batched matMul on wasm.
      const outer = tf.mul(features.reshape([b, k, 1]), gradients.reshape([b, 1, c]));
      return outer.reshape([b, k * c]);
    }
    const xt = tf.transpose(features, [0, 2, 1]);
    return tf.matMul(xt, gradients).reshape([b, k * c]);
  });
}

/**
 * Σ_o Σ_i vec(X̃_iᵀ G_oi)² over k output-major stacked outputs (gradients [k·B, S, C]; k = 1: one
 * output), shape [K·C]. For S = 1, Σ_i x̃ᵢ² ⊗ Σ_o g_oi²: one product for all outputs.
 */
export function linearSquaredGradientSum(lf: LinearFeatures, k = 1): tf.Tensor1D {
  return tf.tidy(() => {
    const [b, s, kk] = lf.features.shape;
    const c = lf.gradients.shape[2];
    if (s === 1) {
      const g2 = tf.sum(tf.square(lf.gradients.reshape([k, b, c])), 0);
      return tf.matMul(tf.square(lf.features.reshape([b, kk])), g2, true, false).reshape([kk * c]);
    }
    return stackedSquaredProductSum(lf.features, lf.gradients, k).reshape([kk * c]);
  });
}

/**
 * ⟨vec(X̃_iᵀ G_oi), v⟩ for every example and each of k stacked outputs (gradients [k·B, S, C]),
 * shape [k·B]: X̃V is formed once and shared by the outputs.
 */
export function linearGradientDot(lf: LinearFeatures, v: tf.Tensor1D, k = 1): tf.Tensor1D {
  return tf.tidy(() => {
    const [b, s, kk] = lf.features.shape;
    const c = lf.gradients.shape[2];
    const xv = tf.matMul(lf.features.reshape([b * s, kk]), v.reshape([kk, c])).reshape([1, b, s * c]);
    return tf.sum(tf.mul(xv, lf.gradients.reshape([k, b, s * c])), 2).reshape([k * b]);
  });
}

/**
 * Σ_o Σ_i u_oi vec(X̃_iᵀ G_oi) = vec(X̃ᵀ Σ_o (u_o ∘ G_o)) for k stacked outputs and weights u [k·B]:
 * one product, shape [K·C].
 */
export function linearWeightedGradientSum(lf: LinearFeatures, u: tf.Tensor1D, k = 1): tf.Tensor1D {
  return tf.tidy(() => {
    const [b, s, kk] = lf.features.shape;
    const c = lf.gradients.shape[2];
    const gu = tf.sum(tf.mul(lf.gradients, u.reshape([k * b, 1, 1])).reshape([k, b * s, c]), 0);
    return tf.matMul(lf.features.reshape([b * s, kk]), gu, true, false).reshape([kk * c]);
  });
}

/**
 * ⟨X̃_aiᵀG_ai, X̃_bjᵀG_bj⟩ = Σ_{s,t} (x̃_ais·x̃_bjt)(g_ais·g_bjt) for all i, j, shape [B_a, B_b]:
 * for S = 1 the Hadamard product (X̃_a X̃_bᵀ)∘(G_a G_bᵀ).
 */
export function linearGradientGram(a: LinearFeatures, b: LinearFeatures): tf.Tensor2D {
  return tf.tidy(() => {
    const [ba, sa, k] = a.features.shape;
    const [bb, sb] = b.features.shape;
    const c = a.gradients.shape[2];
    // Position pairs cost B_a·S_a·B_b·S_b·(K + C); forming the per-example gradients first costs
    // (B_a·S_a + B_b·S_b + B_a·B_b)·K·C: far less for convolutions with few parameters and many
    // positions (a 3×3×16 layer on 28×28 maps: 10⁴ times less).
    const pairs = ba * sa * bb * sb * (k + c);
    const perExample = (ba * sa + bb * sb + ba * bb) * k * c;
    if ((sa > 1 || sb > 1) && perExample < pairs) {
      return tf.matMul(linearPerExampleGradients(a), linearPerExampleGradients(b), false, true) as tf.Tensor2D;
    }
    const xx = tf.matMul(a.features.reshape([ba * sa, k]), tf.transpose(b.features.reshape([bb * sb, k])));
    const gg = tf.matMul(a.gradients.reshape([ba * sa, c]), tf.transpose(b.gradients.reshape([bb * sb, c])));
    const prod = tf.mul(xx, gg);
    if (sa === 1 && sb === 1) return prod as tf.Tensor2D;
    return tf.sum(prod.reshape([ba, sa, bb, sb]), [1, 3]) as tf.Tensor2D;
  });
}

/** Appends a constant-1 feature (the bias input) along the last axis. */
export function appendOnes(x: tf.Tensor3D): tf.Tensor3D {
  // A constant pad: a native kernel on wasm, where the inner-axis concat copies row by row in JS.
  return tf.pad(x, [[0, 0], [0, 0], [0, 1]], 1);
}

/** Σᵢ of the KFAC input-factor term, [K, K] (see KroneckerSupport.inputFactor). */
export function linearInputFactor(features: tf.Tensor3D, type: 'expand' | 'reduce'): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, s, k] = features.shape;
    const rows = (type === 'expand' ? features.reshape([b * s, k]) : tf.mean(features, 1)) as tf.Tensor2D;
    return symmetricRankUpdate(rows);
  });
}

/** Σᵢ of the KFAC output-factor term, [C, C] (see KroneckerSupport.outputFactor). */
export function linearOutputFactor(gradients: tf.Tensor3D, type: 'expand' | 'reduce'): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, s, c] = gradients.shape;
    if (type === 'reduce') return symmetricRankUpdate(tf.sum(gradients, 1) as tf.Tensor2D);
    return tf.div(symmetricRankUpdate(gradients.reshape([b * s, c]) as tf.Tensor2D), s) as tf.Tensor2D;
  });
}

/** X̃ᵢ U_A for all i, [B, S, K]. */
export function linearProjectInputs(features: tf.Tensor3D, uA: tf.Tensor2D): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, s, k] = features.shape;
    return tf.matMul(features.reshape([b * s, k]), uA).reshape([b, s, k]) as tf.Tensor3D;
  });
}

/** Floats of one [B, K, k·C] block of per-example gradients formed at once (128 MB). */
const PER_EXAMPLE_BLOCK_FLOATS = 2 ** 25;

/**
 * Σ_o Σᵢ (X̃ᵢᵀ G_oi)∘² for k stacked outputs with S > 1 positions, [K, C]: the outputs' gradients
 * are laid side by side, [B, S, k·C], so that one batched product X̃ᵢᵀ[G_1i … G_ki] serves all k
 * (k times wider than one product per output: far better use of the matrix kernel), in groups of
 * outputs that keep the [B, K, k·C] block below PER_EXAMPLE_BLOCK_FLOATS.
 */
export function stackedSquaredProductSum(features: tf.Tensor3D, gradients: tf.Tensor3D, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, s, kk] = features.shape;
    const c = gradients.shape[2];
    const group = Math.max(1, Math.min(k, Math.floor(PER_EXAMPLE_BLOCK_FLOATS / (b * kk * c))));
    const parts: tf.Tensor2D[] = [];
    for (let first = 0; first < k; first += group) {
      const n = Math.min(group, k - first);
      parts.push(
        tf.tidy(() => {
          const g = n === k ? gradients : tf.slice(gradients, [first * b, 0, 0], [n * b, -1, -1]);
          const side = tf.transpose(g.reshape([n, b, s, c]), [1, 2, 0, 3]).reshape([b, s, n * c]);
          const perExample = tf.matMul(features, side, true, false); // [B, K, n·C]
          return tf.sum(tf.sum(tf.square(perExample), 0).reshape([kk, n, c]), 1) as tf.Tensor2D;
        }),
      );
    }
    return parts.length === 1 ? parts[0]! : (tf.addN(parts) as tf.Tensor2D);
  });
}

/**
 * Σ_o Σᵢ ((X̃ᵢU_A)ᵀ(G_oiU_G))∘² over k stacked outputs (gradients [k·B, S, C]), [K, C], from
 * projected inputs: for S = 1, (XU_A)∘²ᵀ Σ_o (G_oU_G)∘², one product for all outputs.
 */
export function linearEigenbasisSquaredSum(xr: tf.Tensor3D, gradients: tf.Tensor3D, uG: tf.Tensor2D, k = 1): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, s, kk] = xr.shape;
    const c = gradients.shape[2];
    if (s === 1) {
      const gr2 = tf.sum(tf.square(tf.matMul(gradients.reshape([k * b, c]), uG)).reshape([k, b, c]), 0);
      return tf.matMul(tf.square(xr.reshape([b, kk])), gr2, true, false);
    }
    const gr = tf.matMul(gradients.reshape([k * b * s, c]), uG).reshape([k * b, s, c]) as tf.Tensor3D;
    return stackedSquaredProductSum(xr, gr, k);
  });
}

/**
 * Σ_o Σᵢ P_oi[k, c]·P_oi[K−1, c] for k < K−1 with P_oi = X̃ᵢᵀG_oi (last feature = the bias's 1),
 * over k stacked outputs (gradients [k·B, S, C]), [K−1, C]: for S = 1, x̃_wᵀ Σ_o g_o∘², one
 * product; otherwise the per-example weight gradients of all outputs from one batched product,
 * times the side-by-side bias gradients.
 */
export function linearWeightBiasCross(lf: LinearFeatures, k = 1): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, s, kk] = lf.features.shape;
    const c = lf.gradients.shape[2];
    const xw = tf.slice(lf.features, [0, 0, 0], [b, s, kk - 1]);
    if (s === 1) {
      const g2 = tf.sum(tf.square(lf.gradients.reshape([k, b, c])), 0);
      return tf.matMul(xw.reshape([b, kk - 1]), g2, true, false);
    }
    const side = tf.transpose(lf.gradients.reshape([k, b, s, c]), [1, 2, 0, 3]).reshape([b, s, k * c]);
    const weightGrad = tf.matMul(xw, side, true, false); // [B, K−1, k·C]
    const biasGrad = tf.sum(side, 1).reshape([b, 1, k * c]);
    return tf.sum(tf.sum(tf.mul(weightGrad, biasGrad), 0).reshape([kk - 1, k, c]), 1) as tf.Tensor2D;
  });
}
