/**
 * NaturalGradientOptimizer: K-FAC (Martens & Grosse 2015), EKFAC (George et al. 2018) or
 * diagonal-Fisher preconditioning of the loss gradient, as a training-loop step:
 *   g   = ∇L(θ) + w·θ                              (w: weight decay, L2 in the gradient)
 *   Δ   = (F̄ + λI)⁻¹ g                             (F̄: moving average of the Fisher, exact damping)
 *   ν   = min(1, √(κ / (η²·Δᵀg)))                 (KL clipping, Ba, Grosse & Martens 2017)
 *   v   ← μ·v + ν·Δ,   θ ← θ − η·v                  (momentum μ, learning rate η)
 * The curvature statistics are taken from the step's own batch every `curvatureUpdateEvery`
 * steps and averaged (decay ε); the preconditioner is rebuilt from the average every
 * `inverseUpdateEvery` steps (its eigendecompositions are the expensive part). With
 * `adaptiveDamping`, λ follows the Levenberg–Marquardt rule of Martens & Grosse 2015 §6.5 on the
 * reduction ratio ρ = (L(θ + δ) − L(θ)) / (gᵀδ + ½δᵀ(F̄ + λI)δ), checked on the curvature steps.
 *
 * Why not a tf.Optimizer for model.fit: tfjs-layers' training step calls
 * `optimizer.minimize(lossClosure)` synchronously with a closure over the batch; the optimizer
 * never sees the inputs (and callbacks receive only the batch index and size), while the
 * curvature needs a pass over the batch's inputs and asynchronous float64 eigendecompositions.
 * `fit(model, dataset, { optimizer, epochs, callbacks })` runs the same loop as
 * `model.fitDataset` around `step` instead.
 */
import { tf } from '../tf.js';
import { InvalidArgumentError, UnsupportedLayerError } from '../errors.js';
import { checkAlive } from '../object/disposal.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { CotangentSource, PassSpec } from '../backend/pass.js';
import { type Batch, type BatchLike, checkBatchInputs, iterateBatches, releaseBatch } from '../data/loader.js';
import { initLinalg } from '../linalg/index.js';
import { variantCotangents } from '../metrics/variants.js';
import { monteCarloCotangents } from '../metrics/monte-carlo-samples.js';
import { PVector } from '../object/pvector.js';
import { checkOptions, describe } from '../object/arguments.js';
import type { PMatDiag } from '../object/pspace/diag.js';
import type { PMatEKFAC } from '../object/pspace/ekfac.js';
import type { PMatKFAC } from '../object/pspace/kfac.js';
import type { Representation, PMatBase } from '../object/pspace/pmat.js';
import { checkKroneckerLayers } from '../statistics/kronecker-factors.js';
import { type TrainingVariant, batchLoss, checkTargets, checkTrainingVariant } from './batch-loss.js';
import { CurvatureAverage, type CurvatureKind } from './curvature-average.js';
import { klClipCoefficient } from './kl-clip.js';
import { collectionVariables, modelAndCollection } from './model-weights.js';

/** A number as itself, anything else described (for error messages). */
const shown = (x: unknown): string => (typeof x === 'number' ? String(x) : describe(x));

/** Options of the natural-gradient optimizer. */
/** Options of `new NaturalGradientOptimizer` (defaults as tensorflow/kfac's, where it has one). */
export interface NaturalGradientOptimizerOptions {
  /** The model to train (its weights are updated in place). */
  model: tf.LayersModel;
  /** Which parameters are trained; default LayerCollection.fromModel(model). */
  layerCollection?: LayerCollection;
  /** PMatKFAC (default), PMatEKFAC or PMatDiag. */
  representation?: Representation<PMatBase>;
  /** Learning rate η > 0. */
  learningRate: number;
  /** Damping λ > 0 of (F̄ + λI). Default 1e-3. */
  damping?: number;
  /** Steps between curvature statistics (integer ≥ 1). Default 10. */
  curvatureUpdateEvery?: number;
  /** Steps between preconditioner rebuilds (integer ≥ 1). Default 100. */
  inverseUpdateEvery?: number;
  /** Decay ε ∈ [0, 1) of the moving average. Default 0.95. */
  decay?: number;
  /** 'monte-carlo' (default: one sampled label per example) or 'exact' (closed-form expectation over the labels). */
  fisher?: 'monte-carlo' | 'exact';
  /** Momentum μ ∈ [0, 1). Default 0.9. */
  momentum?: number;
  /** L2 weight decay w ≥ 0 added to the gradient. Default 0. */
  weightDecay?: number;
  /** KL bound κ > 0, or 0 / null to disable clipping. Default 1e-3. */
  klClip?: number | null;
  /** Levenberg–Marquardt adaptation of λ (one extra forward pass per curvature step). Default false. */
  adaptiveDamping?: boolean;
  /** Seed of the Monte-Carlo labels (integer). Default: drawn once. */
  seed?: number;
  /** The model's output distribution and loss: 'classif_logits' (default) or 'regression'. */
  variant?: TrainingVariant;
}

/** What one step did (for logging and tests). */
export interface StepInfo {
  /** The batch loss before the update (without weight decay). */
  loss: number;
  /** The KL-clipping coefficient ν applied (1: not clipped). */
  clip: number;
  /** Whether the curvature statistics were taken at this step. */
  curvatureUpdated: boolean;
  /** Whether the preconditioner was rebuilt at this step. */
  inverseUpdated: boolean;
  /** The damping used. */
  damping: number;
}

const OPTIONS = [
  'model', 'layerCollection', 'representation', 'learningRate', 'damping', 'curvatureUpdateEvery', 'inverseUpdateEvery', 'decay', 'fisher', 'momentum',
  'weightDecay', 'klClip', 'adaptiveDamping', 'seed', 'variant',
] as const;

const KINDS: Record<string, CurvatureKind> = { PMatKFAC: 'kfac', PMatEKFAC: 'ekfac', PMatDiag: 'diag' };

/**
 * Natural-gradient training step with Kronecker-factored (or diagonal) Fisher preconditioning.
 *
 * @example
 * const opt = new NaturalGradientOptimizer({ model, learningRate: 0.05, damping: 1e-2 });
 * for (const { xs, ys } of batches) await opt.step({ xs, ys }); // returns the batch loss
 * opt.dispose();
 */
export class NaturalGradientOptimizer {
  /** The model trained in place. */
  readonly model: tf.LayersModel;
  /** The trained parameters. */
  readonly layerCollection: LayerCollection;
  /** 'PMatKFAC', 'PMatEKFAC' or 'PMatDiag'. */
  readonly representationName: string;
  /** The options as resolved (see NaturalGradientOptimizerOptions for each). */
  readonly learningRate: number;
  /** See NaturalGradientOptimizerOptions. */
  readonly curvatureUpdateEvery: number;
  /** See NaturalGradientOptimizerOptions. */
  readonly inverseUpdateEvery: number;
  /** See NaturalGradientOptimizerOptions. */
  readonly decay: number;
  /** See NaturalGradientOptimizerOptions. */
  readonly fisher: 'monte-carlo' | 'exact';
  /** See NaturalGradientOptimizerOptions. */
  readonly momentum: number;
  /** See NaturalGradientOptimizerOptions. */
  readonly weightDecay: number;
  /** The KL bound κ, null when clipping is off. */
  readonly klClip: number | null;
  /** See NaturalGradientOptimizerOptions. */
  readonly adaptiveDamping: boolean;
  /** The seed of the Monte-Carlo labels (drawn when not given). */
  readonly seed: number;
  /** See NaturalGradientOptimizerOptions. */
  readonly variant: TrainingVariant;
  /** Steps taken. */
  iterations = 0;
  /** Curvature statistics taken and preconditioner rebuilds done (counters for the schedule). */
  curvatureUpdates = 0;
  /** Preconditioner rebuilds done. */
  inverseUpdates = 0;
  /** The last step's details. */
  lastStep: StepInfo | null = null;
  private currentDamping: number;
  private readonly curvature: CurvatureAverage;
  private velocity: tf.Tensor1D | null = null;
  private readonly variables: tf.Variable[];
  /** The cotangent source of the current step (Monte-Carlo labels are drawn per curvature step). */
  private source: CotangentSource;
  private readonly outputs: CotangentSource;
  private disposed = false;

  /** An optimizer of `options.model`'s weights (NaturalGradientOptimizerOptions gives each option and its default). */
  constructor(options: NaturalGradientOptimizerOptions) {
    const o = checkOptions(options, OPTIONS, 'NaturalGradientOptimizer') as unknown as NaturalGradientOptimizerOptions;
    const { model, lc } = modelAndCollection(o, 'NaturalGradientOptimizer');
    const positive = (name: string, v: unknown, dflt?: number): number => {
      const x = v ?? dflt;
      if (!(typeof x === 'number' && Number.isFinite(x) && x > 0)) throw new InvalidArgumentError(`NaturalGradientOptimizer: '${name}' must be a finite number > 0, received ${shown(x)}`);
      return x;
    };
    const inRange = (name: string, v: unknown, dflt: number, hi: number): number => {
      const x = v ?? dflt;
      if (!(typeof x === 'number' && x >= 0 && x < hi)) throw new InvalidArgumentError(`NaturalGradientOptimizer: '${name}' must be a number in [0, ${hi}), received ${shown(x)}`);
      return x;
    };
    const every = (name: string, v: unknown, dflt: number): number => {
      const x = v ?? dflt;
      if (!(Number.isInteger(x) && (x as number) >= 1)) throw new InvalidArgumentError(`NaturalGradientOptimizer: '${name}' must be an integer ≥ 1, received ${shown(x)}`);
      return x as number;
    };
    this.learningRate = positive('learningRate', o.learningRate);
    this.currentDamping = positive('damping', o.damping, 1e-3);
    this.curvatureUpdateEvery = every('curvatureUpdateEvery', o.curvatureUpdateEvery, 10);
    this.inverseUpdateEvery = every('inverseUpdateEvery', o.inverseUpdateEvery, 100);
    this.decay = inRange('decay', o.decay, 0.95, 1);
    this.momentum = inRange('momentum', o.momentum, 0.9, 1);
    this.weightDecay = inRange('weightDecay', o.weightDecay, 0, Infinity);
    this.klClip = o.klClip === null || o.klClip === 0 ? null : positive('klClip', o.klClip, 1e-3);
    if (o.adaptiveDamping !== undefined && typeof o.adaptiveDamping !== 'boolean') throw new InvalidArgumentError(`NaturalGradientOptimizer: 'adaptiveDamping' must be a boolean, received ${describe(o.adaptiveDamping)}`);
    this.adaptiveDamping = o.adaptiveDamping ?? false;
    if (o.fisher !== undefined && o.fisher !== 'monte-carlo' && o.fisher !== 'exact') throw new InvalidArgumentError(`NaturalGradientOptimizer: 'fisher' must be 'monte-carlo' or 'exact', received ${describe(o.fisher)}`);
    this.fisher = o.fisher ?? 'monte-carlo';
    if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw new InvalidArgumentError(`NaturalGradientOptimizer: 'seed' must be an integer, received ${describe(o.seed)}`);
    this.seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
    this.variant = checkTrainingVariant(o.variant, 'NaturalGradientOptimizer');
    const name = o.representation?.representationName ?? 'PMatKFAC';
    const kind = KINDS[name];
    if (!kind || (o.representation !== undefined && typeof o.representation.compute !== 'function')) {
      throw new InvalidArgumentError(`NaturalGradientOptimizer: 'representation' must be PMatKFAC, PMatEKFAC or PMatDiag, received ${describe(o.representation)}`);
    }
    if (lc.layers.length === 0) throw new InvalidArgumentError(`NaturalGradientOptimizer: the layer collection of model '${model.name}' has no parameters to train`);
    if (kind !== 'diag') {
      try {
        checkKroneckerLayers(lc, name);
      } catch (e) {
        if (!(e instanceof UnsupportedLayerError)) throw e;
        throw new UnsupportedLayerError(`NaturalGradientOptimizer: ${e.message.replace(/; use .*$/, '')}; use representation PMatDiag, or a layerCollection without that layer`);
      }
    }
    // Every trainable weight outside the collection would silently stay frozen: refuse instead.
    const covered = new Set(lc.layers.flatMap((e) => e.layer.trainableWeights.map((w) => w.originalName)));
    const left = model.trainableWeights.filter((w) => !covered.has(w.originalName));
    if (o.layerCollection === undefined && left.length > 0) {
      throw new UnsupportedLayerError(`NaturalGradientOptimizer: the weights ${left.map((w) => `'${w.originalName}'`).join(', ')} of model '${model.name}' are not covered by the layer collection; pass a layerCollection to train only part of the model`);
    }
    this.model = model;
    this.layerCollection = lc;
    this.representationName = name;
    this.variables = collectionVariables(model, lc);
    this.curvature = new CurvatureAverage(kind, lc, this.decay);
    const classes = model.outputs[0]?.shape[model.outputs[0].shape.length - 1] ?? 1;
    const mc = (stream: number) => monteCarloCotangents(this.variant, { trials: 1, seed: this.seed + stream, sigma2: 1, classes: classes ?? 1 });
    const exact = variantCotangents(this.variant, {});
    this.source = this.fisher === 'exact' ? exact : mc(0);
    this.nextSource = this.fisher === 'exact' ? () => exact : (update) => mc(update);
    this.outputs = {
      description: this.fisher === 'exact' ? `variant '${this.variant}'` : `Monte-Carlo variant '${this.variant}'`,
      needsTargets: false,
      cotangents: (...args: Parameters<CotangentSource['cotangents']>) => this.source.cotangents(...args),
    };
  }

  private readonly nextSource: (update: number) => CotangentSource;

  /** The current damping λ (changes with adaptiveDamping). */
  get damping(): number {
    this.checkAlive();
    return this.currentDamping;
  }

  /**
   * One training step on a batch with targets: returns the batch loss before the update.
   * Refreshes the curvature and the preconditioner on their schedules (see the class).
   */
  async step(batch: BatchLike): Promise<number> {
    this.checkAlive();
    await initLinalg();
    let b: Batch | undefined;
    for await (const x of iterateBatches(batch as BatchLike)) {
      if (b) throw new InvalidArgumentError(`NaturalGradientOptimizer.step: 'batch' must be one batch {xs, ys}, not several`);
      b = x;
    }
    const one = b!;
    try {
      if (!one.ys) throw new InvalidArgumentError(`NaturalGradientOptimizer.step: the batch has no targets 'ys'; the loss gradient needs labels ({ xs, ys })`);
      checkBatchInputs(this.model, one, 'NaturalGradientOptimizer.step');
      const targets = checkTargets(this.variant, one.ys, this.model.outputs[0]!.shape, 'NaturalGradientOptimizer.step');
      try {
        return await this.stepOn(one, targets);
      } finally {
        targets.dispose();
      }
    } finally {
      releaseBatch(one);
    }
  }

  private async stepOn(batch: Batch, targets: tf.Tensor): Promise<number> {
    const t = this.iterations;
    const xs = batch.xs.length === 1 ? batch.xs[0]! : batch.xs;
    const lossOf = () => batchLoss(this.variant, this.model.apply(xs, { training: true }) as tf.Tensor, targets);
    // 1. The loss gradient plus weight decay, flat [d] on the device.
    const { loss, grad } = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(lossOf, this.variables);
      let flat = tf.concat(this.variables.map((v) => tf.reshape(grads[v.name]!, [-1]))) as tf.Tensor1D;
      if (this.weightDecay > 0) flat = tf.add(flat, tf.mul(this.flatWeights(), this.weightDecay));
      return { loss: value, grad: flat };
    });
    try {
      const lossValue = loss.dataSync()[0]!;
      // 2. Curvature statistics and preconditioner on their schedules.
      const curvatureStep = t % this.curvatureUpdateEvery === 0;
      const inverseStep = t % this.inverseUpdateEvery === 0 || !this.curvature.hasPreconditioner;
      const spec: PassSpec = { model: this.model, layerCollection: this.layerCollection, loader: [{ xs: batch.xs, ys: batch.ys }], outputs: this.outputs };
      if (curvatureStep || !this.curvature.hasPreconditioner) {
        this.source = this.nextSource(2 * this.curvatureUpdates);
        await this.curvature.update(spec, inverseStep);
        this.curvatureUpdates++;
      }
      if (inverseStep) {
        this.source = this.nextSource(2 * this.curvatureUpdates + 1);
        await this.curvature.refresh(spec);
        this.inverseUpdates++;
      }
      // 3. Δ = (F̄ + λI)⁻¹g, KL clipping, momentum, θ ← θ − η·v.
      const damping = this.currentDamping;
      const delta = this.curvature.solve(grad, damping);
      const dgT = tf.tidy(() => tf.sum(tf.mul(delta, grad)));
      const dg = dgT.dataSync()[0]!;
      dgT.dispose();
      const clip = this.klClip === null ? 1 : klClipCoefficient({ learningRate: this.learningRate, klClip: this.klClip, directionDotGradient: dg });
      const previous = this.velocity;
      this.velocity = tf.tidy(() => (previous ? tf.add(tf.mul(previous, this.momentum), tf.mul(delta, clip)) : tf.mul(delta, clip))) as tf.Tensor1D;
      previous?.dispose();
      delta.dispose();
      const update = tf.mul(this.velocity, -this.learningRate) as tf.Tensor1D;
      try {
        const step = PVector.adopt(this.layerCollection, update.clone() as tf.Tensor1D);
        step.addToModel(this.model);
        step.dispose();
        // 4. Levenberg–Marquardt damping on the curvature steps (Martens & Grosse 2015, §6.5).
        if (this.adaptiveDamping && curvatureStep) this.adaptDamping(update, grad, lossValue, lossOf);
      } finally {
        update.dispose();
      }
      this.iterations++;
      this.lastStep = { loss: lossValue, clip, curvatureUpdated: curvatureStep, inverseUpdated: inverseStep, damping };
      return lossValue;
    } finally {
      tf.dispose([loss, grad]);
    }
  }

  /** The current weights of the collection, flat [d]. */
  private flatWeights(): tf.Tensor1D {
    return tf.tidy(() => tf.concat(this.variables.map((v) => tf.reshape(v, [-1])))) as tf.Tensor1D;
  }

  private adaptDamping(update: tf.Tensor1D, g: tf.Tensor1D, before: number, lossOf: () => tf.Scalar): void {
    const terms = tf.tidy(() => {
      const after = lossOf();
      // The weight-decay term is part of the objective whose gradient g is: ½w(‖θ + δ‖² − ‖θ‖²) with θ + δ the current weights.
      const theta = this.flatWeights();
      const decay = tf.mul(0.5 * this.weightDecay, tf.sub(tf.sum(tf.square(theta)), tf.sum(tf.square(tf.sub(theta, update)))));
      return tf.stack([tf.add(after, decay), tf.sum(tf.mul(g, update)), tf.sum(tf.square(update))]);
    });
    const [after, dot, sq] = terms.dataSync();
    terms.dispose();
    const reduction = after! - before;
    const predicted = dot! + 0.5 * (this.curvature.quadratic(update) + this.currentDamping * sq!);
    const rho = predicted < 0 ? reduction / predicted : -Infinity;
    const omega = (19 / 20) ** this.curvatureUpdateEvery;
    if (rho > 0.75) this.currentDamping = Math.max(this.currentDamping * omega, 1e-8);
    else if (rho < 0.25) this.currentDamping = Math.min(this.currentDamping / omega, 1e8);
  }

  /** The moving average F̄ of the curvature as a new matrix (PMatKFAC for KFAC/EKFAC factors, PMatDiag); null before the first step. */
  averagedCurvature(): PMatKFAC | PMatDiag | null {
    this.checkAlive();
    return this.curvature.factors || this.curvature.diagonal ? this.curvature.average() : null;
  }

  /** The matrix the current preconditioner inverts (without damping): a PMatEKFAC (KFAC, EKFAC) or PMatDiag; null before the first step. */
  preconditionerMatrix(): PMatEKFAC | PMatDiag | null {
    this.checkAlive();
    return this.curvature.hasPreconditioner ? this.curvature.preconditioner() : null;
  }

  /** The momentum buffer v as a PVector (the caller owns it); zeros before the first step. */
  velocityVector(): PVector {
    this.checkAlive();
    return this.velocity ? PVector.adopt(this.layerCollection, this.velocity.clone() as tf.Tensor1D) : PVector.zeros(this.layerCollection);
  }

  /** @internal State access for optimizer-state.ts. */
  get internals() {
    return {
      curvature: this.curvature,
      setVelocity: (v: tf.Tensor1D | null) => {
        this.velocity?.dispose();
        this.velocity = v;
      },
      setDamping: (d: number) => (this.currentDamping = d),
      spec: (): PassSpec => ({ model: this.model, layerCollection: this.layerCollection, loader: [], outputs: this.outputs }),
    };
  }

  /** Releases the tensors the optimizer holds (momentum, device copies of the preconditioner); the model is untouched. */
  dispose(): void {
    this.curvature.dispose();
    this.velocity?.dispose();
    this.velocity = null;
    this.disposed = true;
  }

  private checkAlive(): void {
    checkAlive(!this.disposed, 'NaturalGradientOptimizer');
  }
}
