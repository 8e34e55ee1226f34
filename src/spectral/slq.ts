/**
 * spectralDensity: stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017, SIAM J. Matrix Anal.
 * Appl. 38(4); Ghorbani, Krishnan & Xiao 2019 for network Hessians). For each of `probes` unit
 * Rademacher vectors v (entries ±1/√d, so E[v vᵀ] = I/d), `steps` Lanczos steps with full
 * reorthogonalisation give the tridiagonal T = Y diag(θ) Yᵀ, and the Gauss quadrature
 *   vᵀ f(M) v ≈ Σⱼ Y[0, j]² f(θⱼ)   (exact for polynomials f of degree < 2·steps).
 * Averaging over probes: tr f(M) / d ≈ Σ weights·f(nodes), with weights Y[0, j]²/probes, so the
 * weights of each probe sum to 1/probes and Σ weights = 1. The density is these point masses
 * smoothed by a Gaussian of width σ.
 */
import { eighSym } from '../linalg/index.js';
import { InvalidArgumentError } from '../errors.js';
import { describe } from '../object/arguments.js';
import { axpy, dot, meanAndStandardError, orthogonalize, scale } from './host-vectors.js';
import { operatorSize, hostOperator, type LinearOperator } from './operator.js';
import { type SpectralCommonOptions, checkInteger, checkSpectralOptions } from './options.js';
import { ProbeStream } from './random.js';

export interface SpectralDensityOptions extends SpectralCommonOptions {
  /** Random start vectors (default 10). */
  probes?: number;
  /** Lanczos steps per probe (default 80, at most d; a probe whose Krylov space closes earlier stops there). */
  steps?: number;
}

/** An estimated spectral density by stochastic Lanczos quadrature: nodes and weights. */
export interface SpectralDensity {
  /** Quadrature nodes (Ritz values), probe after probe. */
  nodes: Float64Array;
  /** Their weights: each probe's sum to 1/probes, all sum to 1. */
  weights: Float64Array;
  /**
   * The smoothed density φ(x) = Σⱼ weightⱼ · N(x; nodeⱼ, σ²) at each grid point (it integrates to
   * 1). σ defaults to 1% of the node range.
   */
  density(grid: ArrayLike<number>, options?: { sigma?: number }): Float64Array;
  /**
   * The SLQ estimate of the spectral moment tr(Mʲ)/d = Σ weights·nodesʲ, with its standard
   * error over probes (NaN for one probe); exact per probe for j < 2·steps.
   */
  moment(j: number): {
    /** The estimate of tr(Mʲ)/d. */
    value: number;
    /** Its standard error over the probe vectors. */
    standardError: number;
  };
  /** Products taken (Σ over probes of the steps run). */
  products: number;
}

/**
 * The spectral density of a symmetric operator by stochastic Lanczos quadrature.
 *
 * @example
 * const F = await FIM({ model, loader, representation: PMatImplicit });
 * const slq = await spectralDensity(F, { probes: 10, steps: 80 });
 * const grid = Array.from({ length: 200 }, (_, i) => 1e-6 * 10 ** (i / 25));
 * const phi = slq.density(grid);
 */
export async function spectralDensity(op: LinearOperator, options: SpectralDensityOptions = {}): Promise<SpectralDensity> {
  const where = 'spectralDensity';
  const d = operatorSize(op, where);
  const o = checkSpectralOptions(options, ['probes', 'steps'], where);
  const probes = checkInteger(o.probes ?? 10, 'probes', where, 1);
  const steps = Math.min(d, checkInteger(o.steps ?? 80, 'steps', where, 1));
  const host = hostOperator(op, where, { signal: o.signal, onProgress: o.onProgress, maxProducts: probes * steps });
  const random = new ProbeStream(o.seed);
  const perProbe: Array<{ nodes: Float64Array; weights: Float64Array }> = [];
  for (let p = 0; p < probes; p++) {
    const v = random.probe(d, 'rademacher');
    scale(v, 1 / Math.sqrt(d));
    const { alpha, beta } = await lanczosTridiagonal(host, v, steps);
    perProbe.push(gaussQuadrature(alpha, beta, probes));
  }
  const nodes = Float64Array.from(perProbe.flatMap((q) => Array.from(q.nodes)));
  const weights = Float64Array.from(perProbe.flatMap((q) => Array.from(q.weights)));
  const lo = Math.min(...nodes);
  const hi = Math.max(...nodes);
  return {
    nodes,
    weights,
    products: host.products,
    density(grid, densityOptions = {}) {
      const sigma = densityOptions.sigma ?? (hi > lo ? 0.01 * (hi - lo) : Math.max(Math.abs(hi), 1) * 0.01);
      if (!(typeof sigma === 'number' && Number.isFinite(sigma) && sigma > 0)) throw new InvalidArgumentError(`spectralDensity: 'sigma' must be a finite number > 0, received ${describe(sigma)}`);
      const c = 1 / (sigma * Math.sqrt(2 * Math.PI));
      return Float64Array.from(grid, (x) => {
        let s = 0;
        for (let j = 0; j < nodes.length; j++) s += weights[j]! * Math.exp(-0.5 * ((x - nodes[j]!) / sigma) ** 2);
        return c * s;
      });
    },
    moment(j) {
      checkInteger(j, 'j', 'spectralDensity.moment', 0);
      const each = perProbe.map((q) => q.nodes.reduce((s, x, t) => s + q.weights[t]! * x ** j, 0) * probes);
      const { mean, standardError } = meanAndStandardError(each);
      return { value: mean, standardError };
    },
  };
}

/** `steps` Lanczos steps from the unit vector v (full reorthogonalisation): T's diagonal and off-diagonal. */
async function lanczosTridiagonal(host: ReturnType<typeof hostOperator>, v: Float64Array, steps: number): Promise<{ alpha: number[]; beta: number[] }> {
  const basis: Float64Array[] = [v];
  const alpha: number[] = [];
  const beta: number[] = [];
  let scaleEstimate = 0;
  for (let j = 0; j < steps; j++) {
    const w = await host.apply(basis[j]!);
    const a = dot(w, basis[j]!);
    alpha.push(a);
    scaleEstimate = Math.max(scaleEstimate, Math.abs(a));
    if (j > 0) axpy(w, -beta[j - 1]!, basis[j - 1]!);
    axpy(w, -a, basis[j]!);
    const b = orthogonalize(w, basis);
    if (j === steps - 1 || b <= 1e-10 * Math.max(scaleEstimate, 1e-300)) break; // the Krylov space closed
    beta.push(b);
    scale(w, 1 / b);
    basis.push(w);
  }
  return { alpha, beta };
}

/** Nodes θⱼ and weights Y[0, j]²/probes of the tridiagonal matrix (alpha, beta). */
function gaussQuadrature(alpha: number[], beta: number[], probes: number): { nodes: Float64Array; weights: Float64Array } {
  const k = alpha.length;
  const t = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    t[i * k + i] = alpha[i]!;
    if (i + 1 < k) t[i * k + i + 1] = t[(i + 1) * k + i] = beta[i]!;
  }
  const { values, vectors } = eighSym(t, k);
  return { nodes: values, weights: Float64Array.from({ length: k }, (_, j) => vectors[j]! ** 2 / probes) };
}
