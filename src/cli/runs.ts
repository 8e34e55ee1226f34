/**
 * Running representations the way `npm start` and `nngeometry fim` do: on the whole model
 * (time, storage, trace, top eigenvalue, per-layer traces) and on a small sub-network (dense
 * entries for heatmaps and spectra, distance to the dense reference), skipping with a reason
 * what cannot be computed or would not fit. Browser-safe.
 */
import { PMatDense, PMatImplicit, asOperator, estimateTrace, type LayerCollection, type PVector } from '../index.js';
import { tf } from '../tf.js';
import { type FisherRequest, type RepresentationInfo, computeFisher, unsupportedReason } from './representations.js';
import { type Measurement, type MeasureOptions, denseEntries, measure, relativeFrobeniusDistance } from './measure.js';
import { eigenvaluesDescending } from './spectrum.js';
import { humanBytes } from './format.js';

/** Limits above which a representation is skipped rather than computed. */
export interface Budget {
  /** Bytes the matrix may store (default 1 GB). */
  maxBytes: number;
  /** Multiply-adds its accumulation may take (default Infinity). */
  maxFlops: number;
}

export type WholeModelRun = { seconds: number; measurement: Measurement } | { skipped: string };

/** Why `info` is not computed on `lc`, or null when it is. */
export function skipReason(info: RepresentationInfo, lc: LayerCollection, n: number, outputs: number, budget: Budget): string | null {
  const unsupported = unsupportedReason(info, lc);
  if (unsupported) return unsupported;
  const { bytes, flops } = info.cost(lc, n, outputs);
  if (bytes > budget.maxBytes) return `would store ${humanBytes(bytes)} (limit ${humanBytes(budget.maxBytes)})`;
  if (flops > budget.maxFlops) return `accumulating it takes ~${(flops / 1e9).toFixed(0)} G multiply-adds (budget ${(budget.maxFlops / 1e9).toFixed(0)} G)`;
  return null;
}

/** Computes and measures one representation on the request's layer collection. */
export async function runWholeModel(info: RepresentationInfo, request: FisherRequest, options: MeasureOptions = {}): Promise<{ seconds: number; measurement: Measurement }> {
  const t0 = performance.now();
  const M = await computeFisher(info, request);
  try {
    const seconds = (performance.now() - t0) / 1000;
    const measurement = await measure(M, options);
    // A matrix-free matrix costs nothing to build: report the time of one pass (its trace).
    return { seconds: measurement.passSeconds ?? seconds, measurement };
  } finally {
    M.dispose();
  }
}

export interface SubnetworkRun {
  /** Row-major entries (null for a matrix-free matrix, which is not expanded). */
  entries: Float32Array | null;
  /** Eigenvalues, descending (null when entries are). */
  eigenvalues: Float64Array | null;
  /** ‖M − F‖_F / ‖F‖_F against the dense reference F. */
  distance: number | null;
  /** How the distance was obtained, when not exactly. */
  distanceNote?: string;
  seconds: number;
}

/**
 * Computes `info` on a (small) sub-network and compares it with the dense `reference` entries
 * (pass null to compute the reference itself).
 */
export async function runSubnetwork(info: RepresentationInfo, request: FisherRequest, reference: Float32Array | null): Promise<SubnetworkRun> {
  const t0 = performance.now();
  const M = await computeFisher(info, request);
  try {
    const d = M.layerCollection.numel();
    if (M instanceof PMatImplicit) {
      const seconds = (performance.now() - t0) / 1000;
      const distance = reference ? await probedDistance(M, reference, 3) : null;
      return { entries: null, eigenvalues: null, distance, distanceNote: 'Hutchinson estimate, 3 probes', seconds };
    }
    const entries = await denseEntries(M);
    const seconds = (performance.now() - t0) / 1000;
    return {
      entries,
      eigenvalues: eigenvaluesDescending(entries, d),
      distance: reference ? relativeFrobeniusDistance(entries, reference) : 0,
      seconds,
    };
  } finally {
    M.dispose();
  }
}

/**
 * ‖M − F‖_F / ‖F‖_F for a matrix-free M whose entries would take d passes to expand:
 * ‖M − F‖²_F = tr((M − F)²), estimated by Hutchinson with `probes` Rademacher probes
 * (each a product with (M − F)², two passes over the data).
 */
async function probedDistance(M: PMatImplicit, reference: Float32Array, probes: number): Promise<number> {
  const lc = M.layerCollection;
  const F = new PMatDense(lc, Float64Array.from(reference));
  const difference = async (v: PVector): Promise<PVector> => {
    const mv = await M.mv(v);
    const fv = F.mv(v);
    try {
      return mv.sub(fv);
    } finally {
      mv.dispose();
      fv.dispose();
    }
  };
  try {
    const squared = asOperator(async (v) => {
      const dv = await difference(v);
      try {
        return await difference(dv);
      } finally {
        dv.dispose();
      }
    }, lc);
    const { value } = await estimateTrace(squared, { method: 'hutchinson', samples: probes, seed: 17 });
    let ref = 0;
    for (const x of reference) ref += x * x;
    return Math.sqrt(Math.max(value, 0) / ref);
  } finally {
    F.dispose();
  }
}

/** Disposes every batch of an array loader built by the CLI. */
export function disposeLoader(batches: Array<{ xs: tf.Tensor; ys?: tf.Tensor }>): void {
  for (const b of batches) tf.dispose(b.ys ? [b.xs, b.ys] : [b.xs]);
}
