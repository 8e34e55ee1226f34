/**
 * What the tables and reports show about one computed matrix: storage, trace, Frobenius norm,
 * top eigenvalue, per-layer traces; and, on a sub-network small enough to store densely, its
 * entries (for heatmaps, spectra and distances to the dense reference). Browser-safe.
 */
import { LayerCollection, PMatLowRank, PMatImplicit, PVector, type PMat, type PMatBase } from '../index.js';
import { tf } from '../tf.js';
import { storageBytes } from './storage.js';
import { topEigenvalue, type TopEigenvalueOptions } from './spectrum.js';

export interface Measurement {
  /** Bytes stored (null when unknown). */
  bytes: number | null;
  trace: number;
  /** ‖M‖_F, or null for a matrix-free representation. */
  frobenius: number | null;
  /** λ_max (exact, or a converged Lanczos estimate). */
  topEigenvalue: number | null;
  /** How λ_max was obtained: 'exact' (norm(2)) or 'lanczos (k products)'. */
  topEigenvalueMethod: string;
  /** tr of each layer's diagonal block, in collection order (null for matrix-free ones). */
  layerTraces: Array<{ id: string; trace: number }> | null;
  /** Matrix-free matrices: seconds of one pass over the data (the trace). */
  passSeconds?: number;
}

export interface MeasureOptions {
  /** Skip λ_max for matrix-free matrices (each Lanczos step is a pass over the data). */
  topEigenvalueOfImplicit?: boolean;
  lanczos?: TopEigenvalueOptions;
}

/** Measures `M` (every tensor it creates is released). */
export async function measure(M: PMatBase, options: MeasureOptions = {}): Promise<Measurement> {
  if (M instanceof PMatImplicit) {
    const t0 = performance.now();
    const trace = await M.trace();
    const passSeconds = (performance.now() - t0) / 1000;
    let top: number | null = null;
    let method = 'skipped';
    if (options.topEigenvalueOfImplicit ?? true) {
      const r = await topEigenvalue(M, { maxIterations: 12, ...options.lanczos });
      top = r.value;
      method = `lanczos (${r.iterations} passes)`;
    }
    return { bytes: 0, trace, frobenius: null, topEigenvalue: top, topEigenvalueMethod: method, layerTraces: null, passSeconds };
  }
  const P = M as PMat;
  let top: number;
  let method = 'exact';
  // PMatLowRank.norm(2) forms the d×d (or m×m) Gram: O(m·d²). Lanczos needs a few products J v.
  if (P instanceof PMatLowRank && Math.min(P.rows, P.layerCollection.numel()) > 1024) {
    const r = await topEigenvalue(P, options.lanczos);
    top = r.value;
    method = `lanczos (${r.iterations} products)`;
  } else {
    top = P.norm(2);
  }
  return {
    bytes: storageBytes(P),
    trace: P.trace(),
    frobenius: P instanceof PMatLowRank && P.rows > 4096 ? null : P.norm('fro'),
    topEigenvalue: top,
    topEigenvalueMethod: method,
    layerTraces: layerTraces(P),
  };
}

function layerTraces(M: PMat): Array<{ id: string; trace: number }> {
  const diag = M.getDiag();
  const values = diag.dataSync();
  diag.dispose();
  return M.layerCollection.layers.map((e) => {
    let s = 0;
    for (let i = e.offset; i < e.offset + e.numel; i++) s += values[i]!;
    return { id: e.id, trace: s };
  });
}

/**
 * The dense entries of `M` (row-major d×d). Matrix-free matrices are expanded column by column
 * (d passes over the data), so call this only on a small sub-network.
 */
export async function denseEntries(M: PMatBase): Promise<Float32Array> {
  const d = M.layerCollection.numel();
  if (!(M instanceof PMatImplicit)) {
    const t = (M as PMat).toTensor();
    try {
      return t.dataSync() as Float32Array;
    } finally {
      t.dispose();
    }
  }
  const out = new Float32Array(d * d);
  for (let j = 0; j < d; j++) {
    const e = tf.oneHot(tf.tensor1d([j], 'int32'), d).reshape([d]).cast('float32');
    const v = PVector.fromFlat(M.layerCollection, e);
    e.dispose();
    const col = await M.mv(v);
    out.set(col.data.dataSync(), j * d); // symmetric: column j is row j
    v.dispose();
    col.dispose();
  }
  return out;
}

/** ‖A − B‖_F / ‖B‖_F of two row-major matrices of the same size. */
export function relativeFrobeniusDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const diff = a[i]! - b[i]!;
    num += diff * diff;
    den += b[i]! * b[i]!;
  }
  return Math.sqrt(num / den);
}

/**
 * A sub-network small enough to draw entry by entry: the largest set of layers, smallest first,
 * whose parameters add up to at most `maxParameters` (at least the smallest layer). Returns
 * the collection in model order.
 */
export function pickSubnetwork(model: tf.LayersModel, lc: LayerCollection, maxParameters = 400): LayerCollection {
  const bySize = [...lc.layers].sort((x, y) => x.numel - y.numel);
  const chosen: string[] = [];
  let total = 0;
  for (const e of bySize) {
    if (chosen.length > 0 && total + e.numel > maxParameters) break;
    chosen.push(e.id);
    total += e.numel;
  }
  return LayerCollection.fromLayers(model, chosen);
}
