/**
 * Sampled "square-root outputs" for the Monte-Carlo Fisher. For T trials per example, label
 * y_t ~ p(y | x_i) is drawn and the engine back-propagates f̃_t = T^{-1/2} log p(y_t | x_i); the
 * cotangent of f̃_t with respect to the model output f is T^{-1/2} ∂ log p(y_t | f)/∂f, so that
 *   (1/n) Σ_i Σ_t ∇θ f̃_t ∇θ f̃_tᵀ = (1/n) Σ_i (1/T) Σ_t ∇θ log p(y_t|x_i) ∇θ log p(y_t|x_i)ᵀ,
 * an unbiased estimate of the Fisher E_y[∇ log p ∇ log pᵀ] (CONVENTIONS.md, FIMMonteCarlo).
 *
 * Cotangents per variant (p = softmax(f), σ = sigmoid(f)):
 *   classif_logits       onehot(y) − p                 (y ~ Cat(p))
 *   classif_logsoftmax   onehot(y)                     (f = log p, y ~ Cat(exp f))
 *   classif_probs        onehot(y) / p_y               (f = p, y ~ Cat(f))
 *   classif_binary_logits y − σ                        (y_c ~ Bernoulli(σ_c), independent)
 *   regression           ε / σ²                        (y = f + ε, ε ~ N(0, σ² I)): E = I/σ²
 *   segmentation_logits  onehot(y_s) − p_s per pixel s (outputs [B, ..., K], y_s ~ Cat(p_s)
 *                                                       independent: ∇ of Σ_s log p(y_s))
 * Labels are drawn on the host from a counter-based generator seeded by (seed, batch index), so
 * that a pass is reproducible for a given seed on every backend, and every pass of a
 * PMatImplicit over the same data sees the same labels (it is one fixed matrix).
 */
import { tf } from '../tf.js';
import { InvalidArgumentError } from '../errors.js';
import type { CotangentSource } from '../backend/pass.js';

/** The variants `FIMMonteCarlo` samples labels for. */
export const MONTE_CARLO_VARIANTS = [
  'classif_logits',
  'classif_logsoftmax',
  'classif_probs',
  'classif_binary_logits',
  'regression',
  'segmentation_logits',
] as const;
/** One of `MONTE_CARLO_VARIANTS`. */
export type MonteCarloVariant = (typeof MONTE_CARLO_VARIANTS)[number];

export interface SamplingOptions {
  trials: number;
  seed: number;
  /** Output variance of 'regression'. */
  sigma2: number;
  /** Number of classes K of 'segmentation_logits' (the last axis of the model output). */
  classes: number;
}

/** The murmur3 32-bit finaliser: a bijection of [0, 2³²) with full avalanche. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * Uniform numbers in (0, 1) for one (seed, stream) pair: the finaliser applied to a Weyl
 * sequence started at a hash of both (a counter-based generator: streams are independent).
 */
export function uniformStream(seed: number, stream: number): () => number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let state = mix32(lo ^ mix32(hi + 0x632be5ab) ^ mix32(stream + 0x9e3779b9));
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    return (mix32(state) + 0.5) / 4294967296;
  };
}

/** A standard normal draw (Box–Muller). */
function normal(u: () => number): number {
  return Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** Index drawn from the (unnormalised, non-negative) weights w[0..k). */
function categorical(w: ArrayLike<number>, start: number, k: number, total: number, u: () => number): number {
  let target = u() * total;
  for (let c = 0; c < k - 1; c++) {
    target -= w[start + c]!;
    if (target < 0) return c;
  }
  return k - 1;
}

/** Softmax of each row of k entries, in float64. */
function softmaxRows(f: Float32Array, k: number): Float64Array {
  const p = new Float64Array(f.length);
  for (let r = 0; r < f.length; r += k) {
    let m = -Infinity;
    for (let c = 0; c < k; c++) m = Math.max(m, f[r + c]!);
    let z = 0;
    for (let c = 0; c < k; c++) z += p[r + c] = Math.exp(f[r + c]! - m);
    for (let c = 0; c < k; c++) p[r + c]! /= z;
  }
  return p;
}

function checkDistribution(p: ArrayLike<number>, k: number, what: string): void {
  for (let r = 0; r < p.length; r += k) {
    let s = 0;
    for (let c = 0; c < k; c++) {
      if (!(p[r + c]! >= 0)) throw new InvalidArgumentError(`${what} are not probability distributions (entry ${p[r + c]}); use variant 'classif_logits' for logits`);
      s += p[r + c]!;
    }
    if (Math.abs(s - 1) > 1e-3) throw new InvalidArgumentError(`${what} are not probability distributions (a row sums to ${s}); use variant 'classif_logits' for logits`);
  }
}

/** The cotangent source that samples labels for `variant`: T rows per batch. */
export function monteCarloCotangents(variant: MonteCarloVariant, options: SamplingOptions): CotangentSource {
  return {
    description: `FIMMonteCarlo variant '${variant}'`,
    needsTargets: false,
    definition: { source: 'monte_carlo', variant, trials: options.trials, seed: options.seed, sigma2: options.sigma2, classes: options.classes },
    cotangents: (output, _ys, batchIndex) => {
      const [b, c] = output.shape;
      const f = output.dataSync() as Float32Array;
      const cot = sample(variant, f, b * c, options, uniformStream(options.seed, batchIndex), c);
      return tf.tensor3d(cot, [options.trials, b, c]);
    },
  };
}

/** Cotangents [T, B·C] for the flattened outputs f (B rows of C). */
function sample(variant: MonteCarloVariant, f: Float32Array, size: number, o: SamplingOptions, u: () => number, c: number): Float32Array {
  const T = o.trials;
  const scale = 1 / Math.sqrt(T);
  const out = new Float32Array(T * size);
  // Categorical variants: rows of k entries (a whole example, or one pixel for segmentation).
  const categoricalRows = (p: ArrayLike<number>, k: number, value: (row: number, cls: number, drawn: boolean) => number) => {
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < size; r += k) {
        const y = categorical(p, r, k, 1, u);
        for (let j = 0; j < k; j++) out[t * size + r + j] = scale * value(r, j, j === y);
      }
    }
  };
  switch (variant) {
    case 'classif_logits':
    case 'segmentation_logits': {
      const k = variant === 'classif_logits' ? c : o.classes;
      const p = softmaxRows(f, k);
      categoricalRows(p, k, (r, j, drawn) => (drawn ? 1 : 0) - p[r + j]!);
      break;
    }
    case 'classif_logsoftmax': {
      const p = Float64Array.from(f, Math.exp);
      checkDistribution(p, c, "model outputs exponentiated (FIMMonteCarlo variant 'classif_logsoftmax')");
      categoricalRows(p, c, (_r, _j, drawn) => (drawn ? 1 : 0));
      break;
    }
    case 'classif_probs': {
      checkDistribution(f, c, "model outputs (FIMMonteCarlo variant 'classif_probs')");
      // ∂ log f_y / ∂f = onehot(y) / f_y; a drawn class has f_y > 0 almost surely.
      categoricalRows(f, c, (r, j, drawn) => (drawn ? 1 / Math.max(f[r + j]!, 1e-12) : 0));
      break;
    }
    case 'classif_binary_logits': {
      for (let t = 0; t < T; t++) {
        for (let k = 0; k < size; k++) {
          const s = 1 / (1 + Math.exp(-f[k]!));
          out[t * size + k] = scale * ((u() < s ? 1 : 0) - s);
        }
      }
      break;
    }
    case 'regression': {
      // ε/σ² with ε ~ N(0, σ²): z/σ with z ~ N(0, 1).
      const inv = 1 / Math.sqrt(o.sigma2);
      for (let k = 0; k < T * size; k++) out[k] = scale * inv * normal(u);
      break;
    }
  }
  return out;
}
