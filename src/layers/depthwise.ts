/**
 * Per-example gradient algebra of a depthwise convolution (shared by DepthwiseConv2D and the
 * depthwise half of SeparableConv2D). With kernel K [kh, kw, ci, dm], output channel c·dm + m
 * sees only input channel c: s_p[c·dm + m] = Σ_{a,b} x[p + (a,b), c] K[a, b, c, m], so per
 * example and per input channel c the gradient is a product over the S output positions
 * (Howard et al. 2017, MobileNets, eq. 3 for the forward map):
 *
 *   ∂f̃/∂K[:, :, c, :] = P_cᵀ G_c,   P_c ∈ R^{S×(kh·kw)} the patches of channel c,
 *                                    G_c ∈ R^{S×dm} the gradients of its dm outputs.
 */
import { tf } from '../tf.js';
import { type ConvGeometry, imagePatches } from './conv-geometry.js';

/**
 * ∂f̃/∂K in K's layout [kh·kw·ci·dm]: per example ([B, numel]) or summed over the batch
 * ([1, numel]), from x [B, H, W, ci] and the gradient g [B, Ho, Wo, ci·dm] at the output.
 */
export function depthwiseKernelGradients(
  x: tf.Tensor4D,
  g: tf.Tensor,
  [kh, kw, ci, dm]: readonly number[],
  geometry: ConvGeometry,
  perExample: boolean,
): tf.Tensor2D {
  return tf.tidy(() => {
    const b = x.shape[0];
    const kk = kh! * kw!;
    const patches = imagePatches(x, [kh!, kw!], geometry); // [B, S, kk·ci] in (a, b, c) order
    const s = patches.shape[1];
    const groups = perExample ? b : 1;
    const rows = perExample ? s : b * s;
    // Batch the products over (example, channel): [groups·ci, kk, rows] @ [groups·ci, rows, dm].
    const p = tf.transpose(patches.reshape([groups, rows, kk, ci!]), [0, 3, 2, 1]).reshape([groups * ci!, kk, rows]);
    const q = tf.transpose(g.reshape([groups, rows, ci!, dm!]), [0, 2, 1, 3]).reshape([groups * ci!, rows, dm!]);
    const prod = tf.matMul(p, q).reshape([groups, ci!, kk, dm!]);
    return tf.transpose(prod, [0, 2, 1, 3]).reshape([groups, kk * ci! * dm!]) as tf.Tensor2D;
  });
}

/**
 * depthwiseConv2d(x, K) as patches ∘ K summed over the taps — the same numbers as tfjs's
 * kernel, but made of ops tfjs can differentiate twice (its DepthwiseConv2dNativeBackprop*
 * kernels have no gradients): used when the weights are given for differentiation (Hessians).
 */
export function depthwiseByPatches(x: tf.Tensor4D, kernel: tf.Tensor4D, geometry: ConvGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, ci, dm] = kernel.shape;
    const patches = imagePatches(x, [kh, kw], geometry, true); // [B, S, kh·kw·ci], differentiated by Hessians
    const [b, s] = patches.shape;
    const taps = tf.mul(patches.reshape([b, s, kh * kw, ci, 1]), kernel.reshape([1, 1, kh * kw, ci, dm]));
    const ho = tf.sum(taps, 2).reshape([b, s, ci * dm]);
    const outSize = (n: number, k: number, stride: number, d: number) =>
      geometry.padding === 'same' ? Math.ceil(n / stride) : Math.floor((n - (k - 1) * d - 1) / stride) + 1;
    const h = outSize(x.shape[1], kh, geometry.strides[0], geometry.dilation[0]);
    const w = outSize(x.shape[2], kw, geometry.strides[1], geometry.dilation[1]);
    return ho.reshape([b, h, w, ci * dm]) as tf.Tensor4D;
  });
}
