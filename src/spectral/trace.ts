/**
 * estimateTrace: tr(M) of an operator known through products, by Hutch++ (default), XTrace or
 * Hutchinson (see hutchpp.ts, xtrace.ts, hutchinson.ts for the formulas).
 */
import { operatorSize, hostOperator, type LinearOperator } from './operator.js';
import { InvalidArgumentError } from '../errors.js';
import { type SpectralCommonOptions, checkChoice, checkInteger, checkSpectralOptions } from './options.js';
import type { ProbeDistribution } from './random.js';
import { hutchinsonTrace } from './hutchinson.js';
import { hutchppTrace } from './hutchpp.js';
import { xtraceTrace } from './xtrace.js';

/** The trace estimator: Hutch++, Hutchinson or XTrace. */
export type TraceMethod = 'hutch++' | 'hutchinson' | 'xtrace';

export interface EstimateTraceOptions extends SpectralCommonOptions {
  /** 'hutch++' (default), 'hutchinson' or 'xtrace'. */
  method?: TraceMethod;
  /**
   * Products M v the estimate may take (default 30): Hutchinson uses that many probes;
   * Hutch++ ⌊m/3⌋ for the sketch, as many for its basis and the rest for the deflated
   * Hutchinson part (m ≥ 3); XTrace ⌊m/2⌋ probes, two products each (m ≥ 2).
   */
  samples?: number;
  /** Probe entries: 'rademacher' (±1, default) or 'normal'. */
  distribution?: ProbeDistribution;
}

/** A stochastic trace estimate with its standard error. */
export interface TraceEstimate {
  /** The estimate of tr(M). */
  value: number;
  /** Its standard error (NaN where one sample gives no spread). */
  standardError: number;
  /** Products taken. */
  samples: number;
}

const MIN_SAMPLES: Record<TraceMethod, number> = { hutchinson: 1, 'hutch++': 3, xtrace: 2 };

/**
 * tr(M) ≈ an unbiased randomized estimate from `samples` products with M.
 *
 * @example
 * const F = await FIM({ model, loader, representation: PMatImplicit });
 * const { value, standardError } = await estimateTrace(F, { samples: 30, seed: 1 });
 * console.log(`tr F = ${value} ± ${2 * standardError}`);
 */
export async function estimateTrace(op: LinearOperator, options: EstimateTraceOptions = {}): Promise<TraceEstimate> {
  const where = 'estimateTrace';
  const d = operatorSize(op, where);
  const o = checkSpectralOptions(options, ['method', 'samples', 'distribution'], where);
  const method = checkChoice<TraceMethod>(o.method ?? 'hutch++', ['hutch++', 'hutchinson', 'xtrace'], 'method', where);
  const samples = checkInteger(o.samples ?? 30, 'samples', where, MIN_SAMPLES[method], Infinity, method === 'hutchinson' ? '' : ` (${method} needs at least ${MIN_SAMPLES[method]} products)`);
  const distribution = checkChoice<ProbeDistribution>(o.distribution ?? 'rademacher', ['rademacher', 'normal'], 'distribution', where);
  const perColumn = method === 'xtrace' ? 2 : 3;
  if (method !== 'hutchinson' && Math.floor(samples / perColumn) > d) {
    throw new InvalidArgumentError(`${where}: 'samples' must be at most ${perColumn}·d = ${perColumn * d} for ${method} (its sketch has ⌊samples/${perColumn}⌋ columns, at most d = ${d}), received ${samples}`);
  }
  const host = hostOperator(op, where, { signal: o.signal, onProgress: o.onProgress, maxProducts: samples });
  if (method === 'hutchinson') return hutchinsonTrace(host, samples, distribution, o.seed);
  if (method === 'hutch++') return hutchppTrace(host, samples, distribution, o.seed);
  return xtraceTrace(host, samples, distribution, o.seed);
}
