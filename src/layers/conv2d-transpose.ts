/**
 * tf.layers.conv2dTranspose (channelsLast, any stride, 'same'/'valid'): kernel K [kh, kw, co, ci]
 * — output channels before input channels — then bias [co].
 *
 * The transposed convolution is the adjoint of the convolution z = conv2d(y; K) (kernel read as
 * [kh, kw, in = co, out = ci]) from the output space to the input space: s = conv2d(·; K)ᵀ x
 * (Dumoulin & Visin 2016, "A guide to convolution arithmetic", §4). Hence
 * ⟨g, s⟩ = ⟨conv2d(g; K), x⟩, and per example
 *
 *   ∂f̃/∂K = Σ_p P(g)_pᵀ x_p ∈ R^{(kh·kw·co)×ci},   ∂f̃/∂b = Σ_q g_q,
 *
 * with P(g)_p the patch of g (the gradient at s) that the convolution maps to input position p,
 * flattened in (a, b, o) order — exactly K's row-major layout. The kernel gradient is the
 * linear-layer product X̃ᵀG of linear-features.ts with the roles swapped (X̃ = P(g),
 * "G" = x), so every contraction is one of those; the bias adds a rank-one term.
 *
 * Kronecker factors (KFAC, EKFAC; `rowFactor: 'gradients'`): the kernel gradient Σ_p P(g)_pᵀ x_p
 * is the Conv2D product with the roles swapped, so in K's [kh·kw·co, ci] layout the ROW factor
 * comes from the gradient patches and the COLUMN factor from the inputs, over the S = H_in·W_in
 * input positions (Grosse & Martens 2016, eq. 4, applied to the adjoint convolution). With the
 * data roles of Conv2D kept (inputs are summed, gradients averaged in 'expand'):
 *
 *   'expand': R = (1/n) Σᵢ Σ_o (1/S) Σ_p P_iop P_iopᵀ,   C = (1/n) Σᵢ Σ_p x_ip x_ipᵀ,
 *   'reduce': R = (1/n) Σᵢ Σ_o P̄_io P̄_ioᵀ, P̄ = Σ_p P_p,   C = (1/n) Σᵢ x̄_i x̄_iᵀ, x̄ = (1/S) Σ_p x_p,
 *
 * kernel block ≈ R ⊗ C; with x and the patches P(g) constant over the input positions the exact
 * kernel block is S·(R ⊗ C) ('expand') and R ⊗ C ('reduce'). The bias gradient Σ_q g_q sums over
 * the OUTPUT positions q, so it is not an appended ones-column of this product: the bias is its
 * own exact block B = (1/n) Σᵢ Σ_o b_io b_ioᵀ (`separateBias`), with no kernel–bias cross term.
 * QuasiDiag, whose cross terms need the bias as the last row of [K, C], refuses the layer.
 */
import { tf } from '../tf.js';
import type { LayerKind } from './layer-kind.js';
import { tiledContractions, tiledKroneckerContractions } from './stacked-fallback.js';
import {
  type LinearFeatures,
  linearEigenbasisSquaredSum,
  linearGradientDot,
  linearGradientGram,
  linearInputFactor,
  linearOutputFactor,
  linearPerExampleGradients,
  linearProjectInputs,
  linearSquaredGradientSum,
  linearWeightedGradientSum,
} from './linear-features.js';
import { UnsupportedLayerError } from '../errors.js';
import { parameterSpecs } from './linear-kind.js';
import { type ConvGeometry, checkWeightCount, convGeometry, imagePatches } from './conv-geometry.js';
import { concatRows, splitParameters } from './per-example-kind.js';
import { layerActivation } from './tfjs-internals.js';

function geometry(layer: tf.layers.Layer): ConvGeometry {
  // tfjs-layers' Conv2DTranspose has no dilation.
  return { ...convGeometry(layer, 'Conv2DTranspose'), dilation: [1, 1] };
}

/** tfjs-layers' deconvLength: the output size of a transposed convolution. */
function outputLength(size: number, stride: number, kernel: number, padding: 'same' | 'valid'): number {
  return padding === 'valid' ? size * stride + Math.max(kernel - stride, 0) : size * stride;
}

function transposedConv(layer: tf.layers.Layer, x: tf.Tensor, kernel: tf.Tensor4D, bias: tf.Tensor | undefined): tf.Tensor {
  const g = geometry(layer);
  return tf.tidy(() => {
    const [b, h, w] = x.shape as number[];
    const [kh, kw, co] = kernel.shape;
    const out: [number, number, number, number] = [b!, outputLength(h!, g.strides[0], kh, g.padding), outputLength(w!, g.strides[1], kw, g.padding), co];
    const s = tf.conv2dTranspose(x as tf.Tensor4D, kernel, out, g.strides, g.padding);
    return bias ? tf.add(s, bias) : s;
  });
}

/** Kernel-gradient factors: X̃ = P(g) [B, S, kh·kw·co], "G" = x [B, S, ci], S = H_in·W_in. */
function kernelFactors(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor): LinearFeatures {
  const [kh, kw] = layer.trainableWeights[0]!.shape as number[];
  const features = imagePatches(g as tf.Tensor4D, [kh!, kw!], geometry(layer));
  const gradients = x.reshape([x.shape[0]!, -1, x.shape[3]!]) as tf.Tensor3D;
  // The convolution of the output space lands on the input grid (tfjs's deconvLength).
  if (features.shape[1] !== gradients.shape[1]) {
    throw new Error(`internal: layer '${layer.name}' (Conv2DTranspose): ${features.shape[1]} patches for ${gradients.shape[1]} input positions`);
  }
  return { features, gradients };
}

const hasBias = (layer: tf.layers.Layer) => layer.trainableWeights.length === 2;
/** ∂f̃/∂b per example, [B, co]. */
const biasRows = (g: tf.Tensor) => tf.sum(g, [1, 2]) as tf.Tensor2D;

export const conv2dTransposeKind: LayerKind = {
  name: 'conv2d_transpose',
  classNames: ['Conv2DTranspose'],
  parameters(layer) {
    geometry(layer);
    checkWeightCount(layer, 'Conv2DTranspose', 1, 2, 'kernel and optional bias');
    return parameterSpecs(layer, ['kernel', 'bias']);
  },
  preactivation(layer, x, given) {
    const [kernel, bias] = given ?? layer.trainableWeights.map((w) => w.read());
    return transposedConv(layer, x, kernel as tf.Tensor4D, bias);
  },
  activate(layer, s) {
    const act = layerActivation(layer);
    return act ? act.apply(s) : s;
  },
  perExampleGradients(layer, x, g) {
    return tf.tidy(() => {
      const kernel = linearPerExampleGradients(kernelFactors(layer, x, g));
      return hasBias(layer) ? concatRows([kernel, biasRows(g)]) : kernel;
    });
  },
  // The gradient patches come from g and the features from x: the stacked rules repeat x.
  ...tiledContractions({
    squaredGradientSum(layer, x, g) {
      return tf.tidy(() => {
        const kernel = linearSquaredGradientSum(kernelFactors(layer, x, g));
        return (hasBias(layer) ? tf.concat([kernel, tf.sum(tf.square(biasRows(g)), 0)]) : kernel) as tf.Tensor1D;
      });
    },
    gradientDot(layer, x, g, v) {
      return tf.tidy(() => {
        const [vk, vb] = splitParameters(v, parameterSpecs(layer, ['kernel', 'bias']));
        const kernel = linearGradientDot(kernelFactors(layer, x, g), vk!.reshape([-1]) as tf.Tensor1D);
        return (vb ? tf.add(kernel, tf.matMul(biasRows(g), vb.reshape([-1, 1])).reshape([-1])) : kernel) as tf.Tensor1D;
      });
    },
    weightedGradientSum(layer, x, g, u) {
      return tf.tidy(() => {
        const kernel = linearWeightedGradientSum(kernelFactors(layer, x, g), u);
        return (hasBias(layer) ? tf.concat([kernel, tf.matMul(u.reshape([1, -1]), biasRows(g)).reshape([-1])]) : kernel) as tf.Tensor1D;
      });
    },
  }),
  gradientGram(layer, xa, ga, xb, gb) {
    return tf.tidy(() => {
      const kernel = linearGradientGram(kernelFactors(layer, xa, ga), kernelFactors(layer, xb, gb));
      return (hasBias(layer) ? tf.add(kernel, tf.matMul(biasRows(ga), biasRows(gb), false, true)) : kernel) as tf.Tensor2D;
    });
  },
  kronecker: {
    rowFactor: 'gradients',
    factorSizes(layer) {
      const [kh, kw, co, ci] = layer.trainableWeights[0]!.shape as number[];
      return [kh! * kw! * co!, ci!];
    },
    // C over the input channels: the Conv2D input factor of the inputs [B, S, ci].
    inputFactor: (_layer, x, type) => tf.tidy(() => linearInputFactor(inputRows(x), type)),
    // R over the kernel rows (kh, kw, co): the Conv2D output factor of the gradient patches.
    outputFactor: (layer, g, type) => tf.tidy(() => linearOutputFactor(gradientPatches(layer, g), type)),
    projectInputs: (_layer, x, uInput) => tf.tidy(() => linearProjectInputs(inputRows(x), uInput)),
    // Σᵢ ((XᵢU_C)ᵀ(PᵢU_R))∘² is [ci, K']: transposed into K's [K', ci] layout.
    ...tiledKroneckerContractions({
      eigenbasisSquaredSum: (layer, xr, g, uOutput) =>
        tf.tidy(() => tf.transpose(linearEigenbasisSquaredSum(xr, gradientPatches(layer, g), uOutput))),
      weightBiasCross(layer) {
        throw new UnsupportedLayerError(
          `layer '${layer.name}' (Conv2DTranspose) has no weight–bias cross terms: its bias is its own block, not a row of the kernel layout; use PMatEKFACBlockDiag, PMatKFAC or PMatDiag`,
        );
      },
    }),
    hasBias: () => false,
    separateBias: {
      size: (layer) => (hasBias(layer) ? (layer.trainableWeights[1]!.shape[0] as number) : 0),
      gradients: (_layer, g) => biasRows(g),
    },
  },
};

/** The inputs as [B, S = H_in·W_in, ci]. */
const inputRows = (x: tf.Tensor) => x.reshape([x.shape[0]!, -1, x.shape[3]!]) as tf.Tensor3D;

/** Patches P(g) of the output gradient, [B, S = H_in·W_in, kh·kw·co] in K's row order. */
function gradientPatches(layer: tf.layers.Layer, g: tf.Tensor): tf.Tensor3D {
  const [kh, kw] = layer.trainableWeights[0]!.shape as number[];
  return imagePatches(g as tf.Tensor4D, [kh!, kw!], geometry(layer));
}
