/**
 * The contract every supported layer kind fulfils. A kind knows its parameter layout, how to
 * recompute the layer's pre-activation (so that the engine can add a probe there), and how to
 * turn a batch of layer inputs x and pre-activation gradients g into the per-example quantities
 * the representations need, without materialising what they do not need.
 *
 * Notation (per example i, one output o of the variant): ∇θ_l f̃_o(x_i) is the gradient of the
 * o-th square-root output with respect to the layer's parameters, flattened in the layout of
 * CONVENTIONS.md (row-major tfjs shapes, kernel then bias).
 *
 * Every contraction takes k outputs stacked output-major (backend/stacking.ts): x [B, ...] the
 * layer inputs, g [k·B, ...] the pre-activation gradients, row o·B + i being output o, example
 * i; k = 1 is the plain case. Kinds without a native stacked rule get one from their builder
 * (`tiledContractions`, stacked-fallback.ts), which repeats x k times.
 */
import type { tf } from '../tf.js';

/** Shape and tfjs weight of one parameter tensor of a layer. */
export interface ParameterSpec {
  /** Short role name: 'kernel', 'bias', ... */
  readonly role: string;
  /** Its tfjs shape (flattened row-major into the parameter vector). */
  readonly shape: readonly number[];
  /** Its number of scalars, the product of `shape`. */
  readonly size: number;
}

/** How shared positions enter the Kronecker factors (CONVENTIONS.md; Eschenhagen et al. 2023). */
export type KfacType = 'expand' | 'reduce';

/**
 * Which factor indexes the rows of a layer's `[K, C]` parameter matrix. 'inputs' (Dense, the
 * convolutions, Embedding): the rows are the (augmented) inputs or their patches, so the row
 * factor is the input factor A and the column factor the output factor G. 'gradients'
 * (Conv2DTranspose): the kernel [kh, kw, cout, cin] has rows (kh, kw, cout) that come from
 * patches of the output gradient and columns cin from the inputs, so the row factor is the output
 * factor and the column factor the input factor.
 */
export type KroneckerRows = 'inputs' | 'gradients';

/**
 * A bias that is not a row of the `[K, C]` Kronecker-factored matrix (Conv2DTranspose: the bias
 * sums the gradient over the output positions, the kernel over the input positions). It is its
 * own diagonal block, stored exactly: B = (1/n) Σᵢ Σ_o bᵢₒbᵢₒᵀ, after the K·C kernel parameters
 * and with no kernel–bias cross term.
 */
export interface SeparateBiasSupport {
  /** The bias size C_b (0 when the layer has no bias). */
  size(layer: tf.layers.Layer): number;
  /** Per-example bias gradients bᵢ = ∂f̃_o(xᵢ)/∂b of one square-root output, [B, C_b]. */
  gradients(layer: tf.layers.Layer, g: tf.Tensor): tf.Tensor2D;
}

/**
 * Kronecker-factored curvature for layers whose per-example gradient is X̃ᵢᵀGᵢ (features
 * X̃ᵢ ∈ R^{S×K}, pre-activation gradients Gᵢ ∈ R^{S×C}); the layer block is ≈ A ⊗ G in the
 * parameter layout of CONVENTIONS.md. Sums are over the examples of one batch; the caller
 * divides by n.
 *
 * With `rowFactor: 'gradients'` the roles in the layout are swapped (the gradient is Pᵢᵀ Xᵢ with
 * Pᵢ patches of the output gradient, Xᵢ the inputs): the input factor (from x) is the column
 * factor and the output factor (from g) the row factor; the methods below still take x for the
 * input factor and g for the output factor.
 */
export interface KroneckerSupport {
  /** The sizes [K, C] of the Kronecker-factored parameter matrix: its rows and columns (the row and column factor sizes). */
  factorSizes(layer: tf.layers.Layer): [number, number];
  /** Which factor indexes the rows of [K, C]; 'inputs' when absent. */
  readonly rowFactor?: KroneckerRows;
  /**
   * Σᵢ of the input factor term (K×K, or C×C for `rowFactor: 'gradients'`): 'expand'
   * Σ_s x̃_s x̃_sᵀ (summed over positions), 'reduce' x̄ x̄ᵀ with x̄ = (1/S) Σ_s x̃_s.
   */
  inputFactor(layer: tf.layers.Layer, x: tf.Tensor, type: KfacType): tf.Tensor2D;
  /**
   * The rows R whose Gram matrix RᵀR is `inputFactor` (the [N, K] input terms: N = B·S for
   * 'expand', B for 'reduce'), for layers whose input factor can be wider than its rows; a
   * wide factor is then eigendecomposed through the N×N Gram matrix RRᵀ (linalg/gram-eigen).
   */
  inputRows?(layer: tf.layers.Layer, x: tf.Tensor, type: KfacType): tf.Tensor2D;
  /**
   * Σᵢ of the output factor term for one square-root output (C×C, or K×K for
   * `rowFactor: 'gradients'`): 'expand' (1/S) Σ_s g_s g_sᵀ (averaged over positions), 'reduce'
   * ḡ ḡᵀ with ḡ = Σ_s g_s.
   */
  outputFactor(layer: tf.layers.Layer, g: tf.Tensor, type: KfacType): tf.Tensor2D;
  /**
   * The rows R whose Gram matrix RᵀR is `outputFactor` (the [N, C] output terms: N = B·S rows
   * g_s/√S for 'expand', B rows Σ_s g_s for 'reduce'), for layers whose output factor can be
   * wider than its rows (a wide layer with few stacked outputs); G is then held as its rows.
   */
  outputRows?(layer: tf.layers.Layer, g: tf.Tensor, type: KfacType): tf.Tensor2D;
  /** The inputs in the input factor's eigenbasis U for every example, [B, S, size of the input factor]. */
  projectInputs(layer: tf.layers.Layer, x: tf.Tensor, uInput: tf.Tensor2D): tf.Tensor3D;
  /**
   * Σ_o Σᵢ (U_Aᵀ ∇W_oᵢ U_G)∘², [K, C] in the layout, with U_A, U_G the eigenbases of the row and column
   * factors and ∇Wᵢ the [K, C] per-example gradient: second moments of the gradients in a
   * Kronecker eigenbasis, from `projectInputs` (computed once per batch, shared by the outputs)
   * and `uOutput`, the output factor's eigenbasis; g [k·B, ...] holds k stacked outputs.
   */
  eigenbasisSquaredSum(layer: tf.layers.Layer, projectedInputs: tf.Tensor3D, g: tf.Tensor, uOutput: tf.Tensor2D, k: number): tf.Tensor2D;
  /**
   * With a bias (last row of X̃ᵢᵀGᵢ): Σ_o Σᵢ (X̃ᵢᵀG_oᵢ)[k, c]·(X̃ᵢᵀG_oᵢ)[K−1, c] for the weight rows
   * k < K−1, shape [K−1, C] — the weight–bias cross terms of each output unit (Ollivier 2015).
   */
  weightBiasCross(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor, k: number): tf.Tensor2D;
  /** Whether the layer has a bias as the last row of the [K, C] parameter matrix. */
  hasBias(layer: tf.layers.Layer): boolean;
  /** Present for kinds whose bias is its own exact block rather than a row of [K, C]. */
  readonly separateBias?: SeparateBiasSupport;
}

/** How the library differentiates one kind of layer: its parameter layout, per-example gradients, and (when it has them) Kronecker factors. */
export interface LayerKind {
  /** Identifier used in errors and in `PMatMixed` mappings, e.g. 'dense'. */
  readonly name: string;
  /** tfjs-layers class names this kind handles, e.g. ['Dense']. */
  readonly classNames: readonly string[];

  /**
   * The layer's trainable parameters in tfjs order. Throws UnsupportedLayerError with the reason
   * when a configuration of the class is not supported (e.g. channelsFirst).
   */
  parameters(layer: tf.layers.Layer): ParameterSpec[];

  /**
   * The pre-activation s (linear part) for input x, from the layer's current weights or, when
   * given, from `weights` (tensors in the layer's parameter order and shapes), so that s can be
   * differentiated with respect to the parameters (Hessians, Jacobian-vector products).
   */
  preactivation(layer: tf.layers.Layer, x: tf.Tensor, weights?: readonly tf.Tensor[]): tf.Tensor;

  /** The layer output given its pre-activation: act(s). */
  activate(layer: tf.layers.Layer, s: tf.Tensor): tf.Tensor;

  /** Per-example gradients [B, numel]: row i is ∇θ_l f̃(x_i). */
  perExampleGradients(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor): tf.Tensor2D;

  /** Σ_o Σ_i (∇θ_l f̃_o(x_i))² elementwise over k stacked outputs (g [k·B, ...]), shape [numel]. */
  squaredGradientSum(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor, k: number): tf.Tensor1D;

  /**
   * Per-example directional derivatives ⟨∇θ_l f̃_o(x_i), v⟩ for k stacked outputs, shape [k·B]
   * (output-major), for v of shape [numel].
   */
  gradientDot(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor, v: tf.Tensor1D, k: number): tf.Tensor1D;

  /** Σ_o Σ_i u_oi ∇θ_l f̃_o(x_i), shape [numel], for k stacked outputs and weights u of shape [k·B]. */
  weightedGradientSum(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor, u: tf.Tensor1D, k: number): tf.Tensor1D;

  /**
   * Inner products of per-example gradients of two batches (a, b), shape [B_a, B_b]:
   * K[i, j] = ⟨∇θ_l f̃(x_a,i), ∇θ_l f̃'(x_b,j)⟩ — a layer's contribution to the tangent kernel,
   * without forming per-example gradients where an identity exists.
   */
  gradientGram(layer: tf.layers.Layer, xa: tf.Tensor, ga: tf.Tensor, xb: tf.Tensor, gb: tf.Tensor): tf.Tensor2D;

  /** Present for the kinds that have Kronecker factors (KFAC, EKFAC, QuasiDiag). */
  readonly kronecker?: KroneckerSupport;

  /**
   * Optional hand-written rule of the batched backward pass: ∂⟨g, s(x)⟩/∂x, the cotangent of
   * the input for cotangents g of the pre-activation given for k stacked copies of the batch
   * (g [k·B, ...s.shape[1:]] → [k·B, ...x.shape[1:]]). Kinds without one are differentiated by
   * tfjs on the batch tiled k times (engine, batched-backward.ts).
   */
  inputCotangent?(layer: tf.layers.Layer, x: tf.Tensor, g: tf.Tensor): tf.Tensor;
}
