/**
 * The elastic weight consolidation penalty (Kirkpatrick et al. 2017, eq. 3):
 *   Ω(θ) = (λ/2)·(θ − θ*)ᵀ F (θ − θ*),   ∇Ω = λ·F(θ − θ*),
 * of the model's *current* weights θ, as a tf.Scalar that `tf.variableGrads` and
 * `optimizer.minimize` differentiate. F is used only through its product F v, so every stored
 * representation costs what its `mv` costs — elementwise for PMatDiag, per layer A·ΔW·G through
 * the factors for PMatKFAC (never d×d), in the Kronecker eigenbasis for PMatEKFAC, one product
 * for PMatDense / PMatBlockDiag — and the gradient is that same product (F is symmetric).
 */
import { tf } from '../tf.js';
import { DisposedError, InvalidArgumentError } from '../errors.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { PVector } from '../object/pvector.js';
import { checkOptions, describe } from '../object/arguments.js';
import type { CurvatureOperator } from './fisher-sum.js';
import { collectionVariables, flatWeights } from './model-weights.js';

/** A number as itself, anything else described (for error messages). */
const shown = (x: unknown): string => (typeof x === 'number' ? String(x) : describe(x));

/** Options of the EWC penalty. */
/** Options of `ewcPenalty`. */
export interface EwcPenaltyOptions {
  /** The model whose current weights θ are penalised. Default: the layers of F's collection. */
  model?: tf.LayersModel;
  /** Which parameters (must equal F's collection). Default F.layerCollection. */
  layerCollection?: LayerCollection;
  /** Strength λ ≥ 0. Default 1. */
  lambda?: number;
}

/**
 * (λ/2)(θ − θ*)ᵀF(θ − θ*) for the model's current weights θ, differentiable with respect to
 * them (gradient λ·F(θ − θ*)). The value is accumulated in float64 on the host. Call it inside
 * the loss closure at every step: it reads the weights when called.
 *
 * @throws LayerCollectionMismatchError when the anchor, F or the model do not share the
 * collection; InvalidArgumentError for a negative λ or a matrix-free F.
 * @example
 * const F = await FIM({ model, loader: taskA, representation: PMatKFAC });
 * const anchor = PVector.fromModel(model);
 * optimizer.minimize(() => tf.add(loss(model, xs, ys), ewcPenalty(F, anchor, { model, lambda: 100 })));
 */
export function ewcPenalty(F: CurvatureOperator, anchor: PVector, options: EwcPenaltyOptions = {}): tf.Scalar {
  const o = checkOptions(options, ['model', 'layerCollection', 'lambda'], 'ewcPenalty') as EwcPenaltyOptions;
  const lambda = o.lambda ?? 1;
  if (!(typeof lambda === 'number' && Number.isFinite(lambda) && lambda >= 0)) {
    throw new InvalidArgumentError(`ewcPenalty: 'lambda' must be a finite number ≥ 0, received ${shown(lambda)}`);
  }
  const mv = (F as Partial<CurvatureOperator> | undefined)?.mv;
  if (typeof mv !== 'function' || mv.constructor.name === 'AsyncFunction') {
    throw new InvalidArgumentError(`ewcPenalty: 'F' must be a stored matrix (PMatDiag, PMatKFAC, PMatEKFAC, PMatDense, ...) or a FisherSum, received ${describe(F)}`);
  }
  if (!(anchor instanceof PVector)) throw new InvalidArgumentError(`ewcPenalty: 'anchor' must be a PVector (PVector.fromModel(model) after the old task), received ${describe(anchor)}`);
  if (anchor.isDisposed) throw new DisposedError(`ewcPenalty: the PVector 'anchor' has been disposed`);
  const lc = F.layerCollection;
  lc.assertSame(anchor.layerCollection, "ewcPenalty's 'anchor'");
  if (o.layerCollection !== undefined) lc.assertSame(o.layerCollection, "ewcPenalty's 'layerCollection'");
  const variables = o.model !== undefined ? collectionVariables(o.model, lc) : lc.layers.flatMap((e) => e.layer.trainableWeights.map((w) => w.read() as tf.Variable));
  const theta = anchor.data;
  // The gradient is supplied by hand: λ·F Δ is the product the forward pass already formed, so
  // one mv serves both, for every representation (autodiff through a host solve is impossible).
  const penalty = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [w, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const delta = tf.sub(w, theta) as tf.Tensor1D;
    const product = F.mv(PVector.adopt(lc, delta));
    if (!(product instanceof PVector)) throw new InvalidArgumentError(`ewcPenalty: 'F.mv' must return a PVector synchronously (a stored matrix); received ${describe(product)}`);
    const fDelta = tf.mul(product.data, lambda);
    product.dispose();
    const d = delta.dataSync();
    const m = fDelta.dataSync();
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i]! * m[i]!;
    save([fDelta]);
    return { value: tf.scalar(s / 2), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]!) };
  });
  return tf.tidy(() => penalty(flatWeights(variables)) as tf.Scalar);
}
