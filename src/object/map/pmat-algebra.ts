/**
 * Shared pieces of the parameter-space ⇄ function-space algebra that every representation M
 * offers on a Jacobian J (a PFMapDense with rows J_r = ∇θ f_o(x_i), r = o·n + i):
 *   M.mmap(J)      rows (M J_rᵀ)ᵀ = J_r Mᵀ, a PFMapDense [O, n, d];
 *   M.mapTMmap(J)  J_r M J_rᵀ for every row: reduction 'diag' → [O, n], 'sum' → [n] (summed
 *                  over the outputs o, as in NNGeometry);
 *   M.solve(J)     rows ((M + λI)⁻¹ J_rᵀ)ᵀ, a PFMapDense.
 * The representations implement the product with M in their own storage; this file validates
 * arguments and turns row products into results.
 */
import { tf } from '../../tf.js';
import { InvalidArgumentError } from '../../errors.js';
import type { LayerCollection } from '../../layers/layer-collection.js';
import { PFMapDense } from './dense.js';
import { checkOptions, describe } from '../arguments.js';

/** How `mapTMmap` reduces over examples: 'sum' (the full matrix) or 'diag' (per-example diagonal). */
export type MapReduction = 'sum' | 'diag';

/** Options of `mapTMmap`. */
export interface MapTMmapOptions<R extends MapReduction = MapReduction> {
  /** 'sum' (default): Σ_o J_{oi} M J_{oi}ᵀ, shape [n]; 'diag': every J_{oi} M J_{oi}ᵀ, shape [O, n]. */
  reduction?: R;
}

/** Throws unless `pfmap` is a PFMapDense on `lc`; returns it. */
export function checkPFMap(pfmap: unknown, lc: LayerCollection, where: string): PFMapDense {
  if (!(pfmap instanceof PFMapDense)) {
    throw new InvalidArgumentError(`${where}: 'pfmap' must be a PFMapDense (compute the Jacobian with representation PFMapDense), received ${describe(pfmap)}`);
  }
  lc.assertSame(pfmap.layerCollection, `the PFMap given to ${where}`);
  return pfmap;
}

/** Validates the reduction of mapTMmap. */
export function checkReduction(options: MapTMmapOptions | undefined, where: string): MapReduction {
  const r = checkOptions(options, ['reduction'], where).reduction ?? 'sum';
  if (r !== 'sum' && r !== 'diag') throw new InvalidArgumentError(`${where}: 'reduction' must be 'sum' or 'diag', received ${JSON.stringify(r)}`);
  return r;
}

/** A PFMapDense whose rows are `product(J rows [R, d])` (a [R, d] tensor). */
export function mapRows(pfmap: PFMapDense, product: (rows: tf.Tensor2D) => tf.Tensor2D): PFMapDense {
  const [o, n, d] = pfmap.data.shape;
  return new PFMapDense(pfmap.layerCollection, tf.tidy(() => product(pfmap.data.reshape([o * n, d])).reshape([o, n, d]) as tf.Tensor3D));
}

/** J_r M J_rᵀ per row from `product` (J rows ↦ rows of J Mᵀ), reduced as asked. */
export function quadraticRows(pfmap: PFMapDense, product: (rows: tf.Tensor2D) => tf.Tensor2D, reduction: MapReduction): tf.Tensor {
  const [o, n, d] = pfmap.data.shape;
  return tf.tidy(() => {
    const rows = pfmap.data.reshape([o * n, d]) as tf.Tensor2D;
    return reduce(tf.sum(tf.mul(product(rows), rows), 1), o, n, reduction);
  });
}

/** Per-row values [O·n] as [O, n] ('diag') or summed over o, [n] ('sum'). */
export function reduce(values: tf.Tensor, outputs: number, examples: number, reduction: MapReduction): tf.Tensor {
  return tf.tidy(() => {
    const on = values.reshape([outputs, examples]);
    return reduction === 'diag' ? on : tf.sum(on, 0);
  });
}

/** Jᵀ as a row-major float64 [d, R] matrix (right-hand sides of a host solve). */
export function rowsTransposedToHost(pfmap: PFMapDense): { rhs: Float64Array; count: number } {
  const [o, n, d] = pfmap.data.shape;
  const count = o * n;
  const j = pfmap.data.dataSync();
  const rhs = new Float64Array(d * count);
  for (let r = 0; r < count; r++) for (let k = 0; k < d; k++) rhs[k * count + r] = j[r * d + k]!;
  return { rhs, count };
}

/** The PFMapDense whose row r is column r of the row-major float64 [d, R] matrix `x`. */
export function pfmapFromColumns(like: PFMapDense, x: Float64Array): PFMapDense {
  const [o, n, d] = like.data.shape;
  const count = o * n;
  const out = new Float32Array(count * d);
  for (let k = 0; k < d; k++) for (let r = 0; r < count; r++) out[r * d + k] = x[k * count + r]!;
  return new PFMapDense(like.layerCollection, tf.tensor3d(out, [o, n, d]));
}
