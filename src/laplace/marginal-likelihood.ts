/**
 * The Laplace approximation of the log marginal likelihood (MacKay 1992; Immer et al. 2021,
 * "Scalable marginal likelihood estimation", eq. 4; laplace-torch's `log_marginal_likelihood`),
 * as a closed-form function of the hyperparameters once the spectrum of F is known:
 *   log p(D) ≈ log p(D | θ̂) + log p(θ̂) + (d/2) log 2π − ½ log det Λ
 *            = ℓℓ(σ²) + (d/2) log δ − (δ/2)‖θ̂‖² − ½ Σ_j log(a μ_j + δ),
 * with Λ = a F + δI, a = n/T, μ_j the eigenvalues of F (for regression F ∝ 1/σ²: μ_j = λ_j σ₀²/σ²
 * from the eigenvalues λ_j at the fitted σ₀²), and the tempered data log-likelihood
 *   classification: ℓℓ = −(1/T) Σ_i CE_i,
 *   regression:     ℓℓ = −(1/(2σ²T)) Σ_i ‖f_i − y_i‖² − (n·O/2) log(2πσ²)   (laplace-torch's convention).
 * Its gradient in (log δ, log σ²) is closed-form too, so maximising it costs no pass over the data.
 */

export interface EvidenceTerms {
  /** Eigenvalues of F at the fitted σ₀² (all d but `zeros`). */
  eigenvalues: Float64Array;
  /** Structural zero eigenvalues not listed (low rank). */
  zeros: number;
  /** Number of parameters d. */
  d: number;
  /** Number of training examples n. */
  n: number;
  /** Outputs per example O. */
  outputs: number;
  temperature: number;
  regression: boolean;
  /** Σ CE (classification) or Σ ‖f − y‖² (regression) at θ̂. */
  loss: number;
  /** ‖θ̂‖². */
  normSquared: number;
  /** σ₀², the output variance F was computed with (1 for classification). */
  fitSigma2: number;
}

/** The tempered data log-likelihood log p(D | θ̂) at output variance σ². */
export function dataLogLikelihood(t: EvidenceTerms, sigma2: number): number {
  if (!t.regression) return -t.loss / t.temperature;
  return -t.loss / (2 * sigma2 * t.temperature) - ((t.n * t.outputs) / 2) * Math.log(2 * Math.PI * sigma2);
}

/** log p(D) ≈ ℓℓ + (d/2) log δ − (δ/2)‖θ̂‖² − ½ log det(a F + δI). */
export function logEvidence(t: EvidenceTerms, prior: number, sigma2: number): number {
  const a = t.n / t.temperature;
  const scale = t.regression ? t.fitSigma2 / sigma2 : 1;
  let logdet = t.zeros * Math.log(prior);
  for (const l of t.eigenvalues) logdet += Math.log(a * l * scale + prior);
  return dataLogLikelihood(t, sigma2) + (t.d / 2) * Math.log(prior) - (prior / 2) * t.normSquared - logdet / 2;
}

/** ∂ log p(D) / ∂ log δ and ∂ log p(D) / ∂ log σ² (0 for classification). */
export function logEvidenceGradient(t: EvidenceTerms, prior: number, sigma2: number): [number, number] {
  const a = t.n / t.temperature;
  const scale = t.regression ? t.fitSigma2 / sigma2 : 1;
  let inv = t.zeros / prior;
  let ratio = 0;
  for (const l of t.eigenvalues) {
    const h = a * l * scale;
    inv += 1 / (h + prior);
    ratio += h / (h + prior);
  }
  const dPrior = t.d / 2 - (prior * t.normSquared) / 2 - (prior * inv) / 2;
  const dSigma = t.regression ? t.loss / (2 * sigma2 * t.temperature) - (t.n * t.outputs) / 2 + ratio / 2 : 0;
  return [dPrior, dSigma];
}

/**
 * Maximises `logEvidence` over log δ (and log σ² when `withSigma2`) by gradient ascent with a
 * backtracking (Armijo) step, from the given start; stops when the gradient is below
 * `tolerance` or after `maxSteps`. Returns the maximiser.
 */
export function maximiseEvidence(t: EvidenceTerms, start: { prior: number; sigma2: number }, withSigma2: boolean, maxSteps = 2000, tolerance = 1e-9): { prior: number; sigma2: number; steps: number } {
  let s = Math.log(start.prior);
  let u = Math.log(start.sigma2);
  const value = (ss: number, uu: number) => logEvidence(t, Math.exp(ss), Math.exp(uu));
  let current = value(s, u);
  let eta = 1;
  let step = 0;
  for (; step < maxSteps; step++) {
    const [gs, gu0] = logEvidenceGradient(t, Math.exp(s), Math.exp(u));
    const gu = withSigma2 ? gu0 : 0;
    const g2 = gs * gs + gu * gu;
    if (Math.sqrt(g2) <= tolerance * Math.max(1, Math.abs(current))) break;
    // Step sizes are in log units: bound a single move to e^±5 for robustness far from the optimum.
    eta = Math.min(eta * 2, 5 / Math.sqrt(g2));
    let accepted = false;
    for (let k = 0; k < 60; k++) {
      const next = value(s + eta * gs, u + eta * gu);
      if (Number.isFinite(next) && next >= current + 1e-4 * eta * g2) {
        s += eta * gs;
        u += eta * gu;
        current = next;
        accepted = true;
        break;
      }
      eta /= 2;
    }
    if (!accepted) break;
  }
  return { prior: Math.exp(s), sigma2: Math.exp(u), steps: step };
}
