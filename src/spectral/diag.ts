/**
 * estimateDiag: diag(M) of an operator known through products, by XDiag (default) or
 * Hutchinson (see xdiag.ts and hutchinson-diag.ts).
 */
import { operatorSize, hostOperator, type LinearOperator, type VectorOf } from './operator.js';
import { InvalidArgumentError } from '../errors.js';
import { type SpectralCommonOptions, checkChoice, checkInteger, checkSpectralOptions } from './options.js';
import type { ProbeDistribution } from './random.js';
import { hutchinsonDiag } from './hutchinson-diag.js';
import { xdiagDiag } from './xdiag.js';

/** The diagonal estimator: XDiag or Hutchinson. */
export type DiagMethod = 'xdiag' | 'hutchinson';

export interface EstimateDiagOptions extends SpectralCommonOptions {
  /** 'xdiag' (default) or 'hutchinson'. */
  method?: DiagMethod;
  /** Products M v (default 30); XDiag uses ⌊m/2⌋ probes, two products each (m ≥ 2). */
  samples?: number;
  /** Probe entries: 'rademacher' (default) or 'normal'. */
  distribution?: ProbeDistribution;
}

/**
 * diag(M) ≈ an unbiased randomized estimate from `samples` products, as a vector of the
 * operator's space (PVector, or FVector for a function-space operator; the caller disposes it).
 *
 * @example
 * const H = await Hessian({ model, loader, loss: 'cross_entropy', representation: PMatImplicit });
 * const diag = await estimateDiag(H, { samples: 60 });
 */
export async function estimateDiag<Op extends LinearOperator>(op: Op, options: EstimateDiagOptions = {}): Promise<VectorOf<Op>> {
  const where = 'estimateDiag';
  const d = operatorSize(op, where);
  const o = checkSpectralOptions(options, ['method', 'samples', 'distribution'], where);
  const method = checkChoice<DiagMethod>(o.method ?? 'xdiag', ['xdiag', 'hutchinson'], 'method', where);
  const min = method === 'xdiag' ? 2 : 1;
  const samples = checkInteger(o.samples ?? 30, 'samples', where, min, Infinity, method === 'xdiag' ? ' (xdiag needs at least 2 products)' : '');
  const distribution = checkChoice<ProbeDistribution>(o.distribution ?? 'rademacher', ['rademacher', 'normal'], 'distribution', where);
  if (method === 'xdiag' && Math.floor(samples / 2) > d) {
    throw new InvalidArgumentError(`${where}: 'samples' must be at most 2·d = ${2 * d} for xdiag (its sketch has ⌊samples/2⌋ columns, at most d = ${d}), received ${samples}`);
  }
  const host = hostOperator(op, where, { signal: o.signal, onProgress: o.onProgress, maxProducts: samples });
  const values = method === 'xdiag' ? await xdiagDiag(host, samples, distribution, o.seed) : await hutchinsonDiag(host, samples, distribution, o.seed);
  return host.toVector(values);
}
