/**
 * The Laplace approximation of a trained network's posterior (MacKay 1992; Daxberger et al.
 * 2021, "Laplace Redux"; API after laplace-torch): with n training examples, F the Fisher that
 * `FIM` returns (a mean over examples; variant 'classif_logits', or 'regression' with σ²), the
 * temperature T and the isotropic prior N(0, δ⁻¹I),
 *   posterior ≈ N(θ̂, Λ⁻¹),   Λ = n·F/T + δ·I,
 * θ̂ the current weights (the MAP). Everything after `fit` — the marginal likelihood for new
 * hyperparameters, their optimisation, the predictive, samples — reuses F and its cached
 * spectrum: no new pass over the training data (except PMatImplicit, which recomputes).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import { checkAlive } from '../object/disposal.js';
import { LayerCollection } from '../layers/layer-collection.js';
import type { Loader } from '../data/loader.js';
import { iterateBatches, releaseBatch } from '../data/loader.js';
import type { Progress } from '../backend/pass.js';
import { FIM } from '../metrics/fim.js';
import { PVector } from '../object/pvector.js';
import type { PMat, PMatBase, Representation } from '../object/pspace/pmat.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { checkModel, checkOptions, describe } from '../object/arguments.js';
import { DampedInverse, INVERTIBLE_REPRESENTATIONS, type ImplicitSolveOptions, checkNonNegative } from '../influence/damped-inverse.js';
import { SPECTRAL_REPRESENTATIONS } from '../influence/curvature-spectrum.js';
import { checkLogitsModel } from '../influence/loss-gradients.js';
import { type DataFit, type LaplaceLikelihood, dataFit } from './data-fit.js';
import { type EvidenceTerms, logEvidence, maximiseEvidence } from './marginal-likelihood.js';
import { covarianceMatrix, precisionMatrix } from './posterior-matrices.js';
import { linearisedOutputs } from './glm-predictive.js';
import { bridgeProbabilities, probitProbabilities } from './link-approximations.js';

/** Options of `Laplace.fit` (laplace-torch's `Laplace(...)` and `.fit` in one call). */
export interface LaplaceFitOptions {
  /** The trained model; its current weights are the MAP θ̂ (never modified by fit). */
  model: tf.LayersModel;
  /** The training data with labels ({xs, ys} batches); n is its number of examples. */
  loader: Loader;
  /** 'classification' (logits, categorical likelihood) or 'regression' (Gaussian, variance sigma2). */
  likelihood: LaplaceLikelihood;
  /** 'all' (default), 'last_layer' (the last layer with weights), or a LayerCollection. */
  subsetOfWeights?: 'all' | 'last_layer' | LayerCollection;
  /** The representation of F: PMatKFAC (default), PMatEKFAC, PMatDiag, PMatDense, PMatBlockDiag, PMatLowRank, PMatImplicit. */
  representation?: Representation<PMatBase>;
  /** δ > 0 of the prior N(0, δ⁻¹I). Default 1. */
  priorPrecision?: number;
  /** Output variance σ² > 0 of 'regression'. Default 1. */
  sigma2?: number;
  /** T > 0: Λ = n·F/T + δI and the log-likelihood divided by T. Default 1. */
  temperature?: number;
  /** Conjugate-gradient settings for PMatImplicit. */
  cg?: ImplicitSolveOptions;
  /** Called after each batch of the FIM pass. */
  onProgress?: (p: Progress) => void;
  /** Aborts (AbortedError) at the next batch; every tensor is released. */
  signal?: AbortSignal;
}

/** Hyperparameters at which `logMarginalLikelihood` is evaluated. */
export interface MarginalLikelihoodOptions {
  /** δ to evaluate at (default the current priorPrecision). */
  priorPrecision?: number;
  /** σ² to evaluate at (regression; default the current sigma2). */
  sigma2?: number;
}

/** How `optimizePriorPrecision` chooses δ. */
export interface OptimizePriorOptions {
  /** 'marglik' (default): maximise the marginal likelihood; 'gridsearch': minimise the validation NLL. */
  method?: 'marglik' | 'gridsearch';
  /** Candidate δ for 'gridsearch'. Default 21 values 10^-4 … 10^4. */
  grid?: readonly number[];
  /** Validation data with labels, for 'gridsearch'. */
  valLoader?: Loader;
  /** Link approximation of the validation predictive (classification). Default 'probit'. */
  linkApprox?: 'probit' | 'bridge';
}

/** The regression predictive: Gaussian outputs per example and output. */
export interface RegressionPredictive {
  /** f(x, θ̂), [batch, outputs]. */
  mean: tf.Tensor2D;
  /** diag(Jₓ Λ⁻¹ Jₓᵀ) + σ², [batch, outputs]. */
  variance: tf.Tensor2D;
}

/** The link approximation of `predictive` (classification). */
export interface PredictiveOptions {
  /** Classification link: 'probit' (default), 'bridge', or 'mc' (sampled weights). */
  linkApprox?: 'probit' | 'mc' | 'bridge';
  /** Weight samples of 'mc'. Default 100. */
  samples?: number;
  /** Seed of 'mc'. */
  seed?: number;
}

const FIT_OPTIONS = ['model', 'loader', 'likelihood', 'subsetOfWeights', 'representation', 'priorPrecision', 'sigma2', 'temperature', 'cg', 'onProgress', 'signal'] as const;

/**
 * A fitted Laplace approximation N(θ̂, Λ⁻¹), Λ = n·F/T + δI (see the module documentation and
 * docs/laplace-influence.md). Create it with `Laplace.fit`; release it with `dispose`.
 *
 * @example
 * const la = await Laplace.fit({ model, loader, likelihood: 'regression', sigma2: 0.1 });
 * const { mean, variance } = (await la.predictive(xs)) as { mean: tf.Tensor2D; variance: tf.Tensor2D };
 */
export class Laplace {
  /** The model whose weights are the posterior mean. */
  readonly model: tf.LayersModel;
  /** The parameters the posterior is over (`subsetOfWeights`). */
  readonly layerCollection: LayerCollection;
  /** 'classification' or 'regression'. */
  readonly likelihood: LaplaceLikelihood;
  /** F (mean over the training examples), as computed at fit. */
  readonly curvature: PMatBase;
  /** Number of training examples n. */
  readonly examples: number;
  /** T in Λ = n·F/T + δI. */
  readonly temperature: number;
  private prior: number;
  private noise: number;
  private readonly fitSigma2: number;
  private readonly fit: DataFit;
  private readonly inverse: DampedInverse;
  private readonly mapWeights: PVector;
  private precisionCache: PMat | null = null;
  private disposed = false;

  private constructor(args: { model: tf.LayersModel; lc: LayerCollection; likelihood: LaplaceLikelihood; curvature: PMatBase; inverse: DampedInverse; fit: DataFit; prior: number; sigma2: number; temperature: number }) {
    this.model = args.model;
    this.layerCollection = args.lc;
    this.likelihood = args.likelihood;
    this.curvature = args.curvature;
    this.inverse = args.inverse;
    this.fit = args.fit;
    this.examples = args.fit.examples;
    this.prior = args.prior;
    this.noise = args.sigma2;
    this.fitSigma2 = args.sigma2;
    this.temperature = args.temperature;
    this.mapWeights = PVector.fromModel(args.model, args.lc);
  }

  /**
   * Fits the Laplace approximation at the model's current weights: one forward pass for the
   * data log-likelihood, then `FIM` over `loader` (PMatEKFAC: and `updateDiag`).
   *
   * @example
   * const la = await Laplace.fit({ model, loader: trainBatches, likelihood: 'classification', subsetOfWeights: 'last_layer' });
   * la.optimizePriorPrecision();                 // maximise the marginal likelihood
   * const probs = await la.predictive(xsTest);   // [batch, classes], probit link
   * la.dispose();
   */
  static async fit(options: LaplaceFitOptions): Promise<Laplace> {
    const where = 'Laplace.fit';
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`${where}: expected an options object { model, loader, likelihood, ... }, received ${describe(options)}`);
    checkOptions(options, FIT_OPTIONS, where);
    checkModel(options.model, where);
    const { model, loader } = options;
    if (loader === undefined || loader === null) throw new InvalidArgumentError(`${where}: 'loader' is required (batches {xs, ys} of the training data)`);
    const likelihood = options.likelihood;
    if (likelihood !== 'classification' && likelihood !== 'regression') {
      throw new InvalidArgumentError(`${where}: 'likelihood' must be 'classification' or 'regression', received ${JSON.stringify(likelihood)}`);
    }
    const variant = likelihood === 'classification' ? 'classif_logits' : 'regression';
    checkLogitsModel(model, variant, where);
    if (options.sigma2 !== undefined && likelihood !== 'regression') throw new InvalidArgumentError(`${where}: 'sigma2' only applies to likelihood 'regression', not 'classification'`);
    const prior = checkNonNegative(options.priorPrecision ?? 1, 'priorPrecision', where, true);
    const sigma2 = checkNonNegative(options.sigma2 ?? 1, 'sigma2', where, true);
    const temperature = checkNonNegative(options.temperature ?? 1, 'temperature', where, true);
    const lc = subsetOf(model, options.subsetOfWeights ?? 'all', where);
    const representation = options.representation ?? PMatKFAC;
    if (!representation || typeof (representation as Partial<Representation<PMatBase>>).compute !== 'function') {
      throw new InvalidArgumentError(`${where}: 'representation' must be a representation class (${INVERTIBLE_REPRESENTATIONS}), received ${describe(representation)}`);
    }
    const fit = await dataFit(model, loader, likelihood, where, undefined, options.signal);
    const curvature = await FIM({ model, loader, representation, variant, ...(likelihood === 'regression' ? { sigma2 } : {}), layerCollection: lc, onProgress: options.onProgress, signal: options.signal, workers: 1 });
    try {
      if (curvature instanceof PMatEKFAC && curvature.diagonalSource === 'kfac') await curvature.updateDiag(loader);
      const inverse = DampedInverse.of(curvature, where, options.cg);
      return new Laplace({ model, lc, likelihood, curvature, inverse, fit, prior, sigma2, temperature });
    } catch (e) {
      curvature.dispose();
      throw e;
    }
  }

  private check(): void {
    checkAlive(!this.disposed, 'Laplace');
  }

  /** The prior precision δ. */
  get priorPrecision(): number {
    this.check();
    return this.prior;
  }

  /** Sets δ (> 0); Λ and everything derived from it follow. */
  set priorPrecision(value: number) {
    this.check();
    this.prior = checkNonNegative(value, 'priorPrecision', 'Laplace.priorPrecision', true);
    this.invalidate();
  }

  /** The output variance σ² (regression; 1 for classification). */
  get sigma2(): number {
    this.check();
    return this.noise;
  }

  /** The posterior mean θ̂ (the weights at fit), not copied. */
  get mean(): PVector {
    this.check();
    return this.mapWeights;
  }

  /** a in Λ = a·F₀ + δI, F₀ the Fisher at fit: n/T, times σ₀²/σ² for regression. */
  private get curvatureScale(): number {
    return (this.examples / this.temperature) * (this.likelihood === 'regression' ? this.fitSigma2 / this.noise : 1);
  }

  /** Λ = n·F/T + δI as a matrix (kept; released by `dispose`): PMatEKFAC for PMatKFAC. */
  get posteriorPrecision(): PMat {
    this.check();
    this.precisionCache ??= precisionMatrix(this.curvature, this.curvatureScale, this.prior, 'Laplace.posteriorPrecision');
    return this.precisionCache;
  }

  /** Λ⁻¹ as a new matrix (the caller disposes it): PMatEKFAC for PMatKFAC. */
  posteriorCovariance(): PMat {
    this.check();
    return covarianceMatrix(this.curvature, this.curvatureScale, this.prior, 'Laplace.posteriorCovariance');
  }

  private evidenceTerms(where: string): EvidenceTerms {
    this.check();
    const spectrum = this.inverse.eigen;
    if (!spectrum) {
      throw new InvalidArgumentError(`${where} needs log det Λ, which ${describe(this.curvature)} cannot give; fit with ${SPECTRAL_REPRESENTATIONS} (all have exact log-determinants)`);
    }
    const norm = this.mapWeights.norm();
    return {
      eigenvalues: spectrum.eigenvalues(),
      zeros: spectrum.implicitZeros,
      d: this.layerCollection.numel(),
      n: this.examples,
      outputs: this.fit.outputs,
      temperature: this.temperature,
      regression: this.likelihood === 'regression',
      loss: this.fit.loss,
      normSquared: norm * norm,
      fitSigma2: this.fitSigma2,
    };
  }

  /**
   * log p(D | θ̂) + log p(θ̂) + (d/2) log 2π − ½ log det Λ at the given (or current) δ and σ²,
   * from the cached spectrum (no pass over the data).
   */
  logMarginalLikelihood(options: MarginalLikelihoodOptions = {}): number {
    const where = 'Laplace.logMarginalLikelihood';
    checkOptions(options, ['priorPrecision', 'sigma2'], where);
    const prior = checkNonNegative(options.priorPrecision ?? this.prior, 'priorPrecision', where, true);
    if (options.sigma2 !== undefined && this.likelihood !== 'regression') throw new InvalidArgumentError(`${where}: 'sigma2' only applies to likelihood 'regression'`);
    const sigma2 = checkNonNegative(options.sigma2 ?? this.noise, 'sigma2', where, true);
    return logEvidence(this.evidenceTerms(where), prior, sigma2);
  }

  /**
   * Chooses δ and stores it (and, for regression with 'marglik', σ²); returns δ. 'marglik':
   * gradient ascent on log δ (and log σ²) of the closed-form marginal likelihood, to its
   * maximiser (laplace-torch takes 100 Adam steps); 'gridsearch': the grid value with the
   * lowest predictive negative log-likelihood on `valLoader`.
   */
  async optimizePriorPrecision(options: OptimizePriorOptions = {}): Promise<number> {
    const where = 'Laplace.optimizePriorPrecision';
    this.check();
    checkOptions(options, ['method', 'grid', 'valLoader', 'linkApprox'], where);
    const method = options.method ?? 'marglik';
    if (method === 'marglik') {
      const best = maximiseEvidence(this.evidenceTerms(where), { prior: this.prior, sigma2: this.noise }, this.likelihood === 'regression');
      this.prior = best.prior;
      this.noise = best.sigma2;
      this.invalidate();
      return this.prior;
    }
    if (method !== 'gridsearch') throw new InvalidArgumentError(`${where}: 'method' must be 'marglik' or 'gridsearch', received ${JSON.stringify(method)}`);
    if (options.valLoader === undefined || options.valLoader === null) throw new InvalidArgumentError(`${where}: method 'gridsearch' needs 'valLoader' (validation batches {xs, ys})`);
    const grid = options.grid ?? Array.from({ length: 21 }, (_, i) => 10 ** (-4 + (8 * i) / 20));
    if (!Array.isArray(grid) || grid.length === 0) throw new InvalidArgumentError(`${where}: 'grid' must be a non-empty array of numbers > 0, received ${describe(grid)}`);
    grid.forEach((g) => checkNonNegative(g, 'grid', where, true));
    const link = options.linkApprox ?? 'probit';
    if (link !== 'probit' && link !== 'bridge') throw new InvalidArgumentError(`${where}: 'linkApprox' must be 'probit' or 'bridge', received ${JSON.stringify(link)}`);
    const start = this.prior;
    let best = { prior: start, nll: Infinity };
    try {
      for (const prior of grid) {
        this.prior = prior;
        const nll = await this.validationNLL(options.valLoader, link, where);
        if (nll < best.nll) best = { prior, nll };
      }
    } finally {
      this.prior = best.nll < Infinity ? best.prior : start;
      this.invalidate();
    }
    return this.prior;
  }

  /** Mean predictive negative log-likelihood over labelled batches. */
  private async validationNLL(loader: Loader, link: 'probit' | 'bridge', where: string): Promise<number> {
    let sum = 0;
    let count = 0;
    for await (const batch of iterateBatches(loader)) {
      try {
        if (!batch.ys) throw new InvalidArgumentError(`${where}: the batches of 'valLoader' need labels ys`);
        const ys = batch.ys;
        const xs = batch.xs[0]!;
        if (this.likelihood === 'classification') {
          const p = (await this.predictive(xs, { linkApprox: link })) as tf.Tensor2D;
          sum += tf.tidy(() => tf.neg(tf.sum(tf.log(tf.maximum(tf.sum(tf.mul(p, tf.oneHot(tf.cast(ys.reshape([-1]), 'int32'), p.shape[1])), 1), 1e-12)))).dataSync()[0]!);
          p.dispose();
        } else {
          const { mean, variance } = (await this.predictive(xs)) as { mean: tf.Tensor2D; variance: tf.Tensor2D };
          sum += tf.tidy(() => tf.sum(tf.add(tf.mul(0.5, tf.log(tf.mul(2 * Math.PI, variance))), tf.div(tf.square(tf.sub(ys.reshape(mean.shape), mean)), tf.mul(2, variance)))).dataSync()[0]!);
          tf.dispose([mean, variance]);
        }
        count += batch.size;
      } finally {
        releaseBatch(batch);
      }
    }
    return sum / count;
  }

  /**
   * The predictive at inputs xs. Classification: probabilities [batch, classes] — 'probit' and
   * 'bridge' from the GLM predictive N(f(x, θ̂), diag(Jₓ Λ⁻¹ Jₓᵀ)), 'mc' the mean softmax over
   * `samples` weights drawn from N(θ̂, Λ⁻¹) (the model's weights are restored). Regression:
   * { mean: f(x, θ̂), variance: diag(Jₓ Λ⁻¹ Jₓᵀ) + σ² }, both [batch, outputs].
   */
  async predictive(xs: tf.Tensor, options: PredictiveOptions = {}): Promise<tf.Tensor2D | RegressionPredictive> {
    const where = 'Laplace.predictive';
    this.check();
    checkOptions(options, ['linkApprox', 'samples', 'seed'], where);
    if (!(xs instanceof tf.Tensor) || xs.isDisposed) throw new InvalidArgumentError(`${where}: 'xs' must be a live tf.Tensor of inputs, received ${describe(xs)}`);
    const link = options.linkApprox ?? 'probit';
    if (link !== 'probit' && link !== 'mc' && link !== 'bridge') throw new InvalidArgumentError(`${where}: 'linkApprox' must be 'probit', 'mc' or 'bridge', received ${JSON.stringify(link)}`);
    if (this.likelihood === 'classification' && link === 'mc') return this.monteCarloPredictive(xs, options.samples ?? 100, options.seed);
    const { mean, variance } = await linearisedOutputs(this.model, this.layerCollection, xs, this.inverse, this.curvatureScale, this.prior);
    try {
      if (this.likelihood === 'regression') return { mean: mean.clone(), variance: tf.tidy(() => tf.add(variance, this.noise) as tf.Tensor2D) };
      return link === 'probit' ? probitProbabilities(mean, variance) : bridgeProbabilities(mean, variance);
    } finally {
      tf.dispose([mean, variance]);
    }
  }

  private async monteCarloPredictive(xs: tf.Tensor, samples: number, seed: number | undefined): Promise<tf.Tensor2D> {
    if (!(Number.isInteger(samples) && samples >= 1)) throw new InvalidArgumentError(`Laplace.predictive: 'samples' must be an integer ≥ 1, received ${typeof samples === 'number' ? samples : describe(samples)}`);
    const draws = this.sample(samples, { seed });
    const current = PVector.fromModel(this.model, this.layerCollection);
    let sum: tf.Tensor2D | null = null;
    try {
      for (const w of draws) {
        w.copyToModel(this.model);
        const p = tf.tidy(() => tf.softmax((this.model.predict(xs) as tf.Tensor).reshape([xs.shape[0]!, -1])) as tf.Tensor2D);
        const next = (sum ? tf.add(sum, p) : p.clone()) as tf.Tensor2D;
        tf.dispose([sum, p].filter((t): t is tf.Tensor2D => t !== null));
        sum = next;
      }
      return tf.div(sum!, samples) as tf.Tensor2D;
    } finally {
      current.copyToModel(this.model);
      current.dispose();
      draws.forEach((w) => w.dispose());
      sum?.dispose();
    }
  }

  /** `count` draws θ̂ + Λ^{-1/2} z, z ~ N(0, I) (reproducible with `seed`). */
  sample(count: number, options: { seed?: number } = {}): PVector[] {
    const where = 'Laplace.sample';
    this.check();
    checkOptions(options, ['seed'], where);
    if (!(Number.isInteger(count) && count >= 1)) throw new InvalidArgumentError(`${where}: 'count' must be an integer ≥ 1, received ${typeof count === 'number' ? count : describe(count)}`);
    if (options.seed !== undefined && !Number.isSafeInteger(options.seed)) throw new InvalidArgumentError(`${where}: 'seed' must be an integer, received ${describe(options.seed)}`);
    const spectrum = this.inverse.eigen;
    if (!spectrum) throw new InvalidArgumentError(`${where} needs Λ^{-1/2}, which ${describe(this.curvature)} cannot give; fit with ${SPECTRAL_REPRESENTATIONS}`);
    const d = this.layerCollection.numel();
    const a = this.curvatureScale;
    const prior = this.prior;
    // tfjs treats seed 0 as "unseeded".
    const seed = options.seed === undefined ? undefined : options.seed === 0 ? 0x5eed : options.seed;
    const z = tf.randomNormal([count, d], 0, 1, 'float32', seed) as tf.Tensor2D;
    const draws = (() => {
      try {
        return spectrum.apply(z, (x) => 1 / Math.sqrt(a * x + prior));
      } finally {
        z.dispose();
      }
    })();
    try {
      return tf.unstack(draws).map((row) => {
        const theta = tf.add(row, this.mapWeights.data) as tf.Tensor1D;
        row.dispose();
        return PVector.adopt(this.layerCollection, theta);
      });
    } finally {
      draws.dispose();
    }
  }

  private invalidate(): void {
    this.precisionCache?.dispose();
    this.precisionCache = null;
  }

  /** Releases F, its spectrum, θ̂ and Λ; afterwards every method throws DisposedError. */
  dispose(): void {
    if (this.disposed) return;
    this.invalidate();
    this.inverse.dispose();
    this.curvature.dispose();
    this.mapWeights.dispose();
    this.disposed = true;
  }
}

/** The layer collection of `subsetOfWeights`. */
function subsetOf(model: tf.LayersModel, subset: unknown, where: string): LayerCollection {
  if (subset instanceof LayerCollection) {
    subset.layersOf(model);
    return subset;
  }
  const all = LayerCollection.fromModel(model);
  if (subset === 'all') return all;
  if (subset === 'last_layer') {
    const last = all.layers[all.layers.length - 1];
    if (!last) throw new InvalidArgumentError(`${where}: the model has no layer with trainable weights`);
    return LayerCollection.fromLayers(model, [last.id]);
  }
  throw new InvalidArgumentError(`${where}: 'subsetOfWeights' must be 'all', 'last_layer' or a LayerCollection, received ${describe(subset)}`);
}
