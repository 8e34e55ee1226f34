/**
 * Shared checks of the layer tests: the brute-force Fisher of a model (through a differentiable
 * twin where tfjs cannot differentiate a layer), and the agreement of PMatDiag, PMatBlockDiag,
 * PMatLowRank and PMatImplicit with a PMatDense of the same data (rel. 1e-4).
 */
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatBlockDiag, PMatDiag, PMatImplicit, PMatLowRank, PVector, type PMatDense, type Variant } from '../../src/index.js';
import type { Loader } from '../../src/data/loader.js';
import { type RefVariant, bruteForceFisher, selectSubmatrix, relativeError } from '../support/reference.js';
import { differentiableTwin, needsTwin } from './twins.js';

export const TOL = 1e-4;

export const host = (t: tf.Tensor): Float64Array => {
  const a = Float64Array.from(t.dataSync());
  t.dispose();
  return a;
};

/** The brute-force Fisher, through the differentiable twin when the model needs one. */
export function reference(model: tf.LayersModel, lc: LayerCollection, xs: Array<tf.Tensor | tf.Tensor[]>, variant: RefVariant): Float64Array {
  if (!needsTwin(model)) return bruteForceFisher(model, lc, xs, variant);
  const { twin, map } = differentiableTwin(model as tf.Sequential);
  const twinLc = LayerCollection.fromModel(twin);
  const full = bruteForceFisher(twin, twinLc, xs, variant);
  twin.dispose();
  return selectSubmatrix(full, twinLc.numel(), map);
}

/** Diag, BlockDiag, LowRank and Implicit against `dense` (same model, data, variant, collection). */
export async function assertRepresentationsAgree(name: string, model: tf.LayersModel, loader: Loader, dense: PMatDense, variant: Variant = 'classif_logits'): Promise<void> {
  const lc = dense.layerCollection;
  const spec = { model, loader, variant, layerCollection: lc };
  const d = lc.numel();
  const full = dense.values();
  const diag = await FIM({ ...spec, representation: PMatDiag });
  assert.ok(relativeError(diag.values(), Float64Array.from({ length: d }, (_, i) => full[i * d + i]!)) < TOL, `${name}: PMatDiag`);
  const bd = await FIM({ ...spec, representation: PMatBlockDiag });
  const blocks = new Float64Array(d * d);
  for (const e of lc.layers) {
    for (let r = e.offset; r < e.offset + e.numel; r++) for (let c = e.offset; c < e.offset + e.numel; c++) blocks[r * d + c] = full[r * d + c]!;
  }
  assert.ok(relativeError(host(bd.toTensor()), blocks) < TOL, `${name}: PMatBlockDiag`);
  const lr = await FIM({ ...spec, representation: PMatLowRank });
  assert.ok(relativeError(host(lr.toTensor()), full) < TOL, `${name}: PMatLowRank`);
  const im = await FIM({ ...spec, representation: PMatImplicit });
  const v = PVector.random(lc, 5);
  const mvRef = dense.mv(v);
  const mv = await im.mv(v);
  assert.ok(relativeError(host(mv.toFlat()), host(mvRef.toFlat())) < TOL, `${name}: PMatImplicit mv`);
  assert.ok(Math.abs((await im.vTMv(v)) - dense.vTMv(v)) <= TOL * Math.abs(dense.vTMv(v)), `${name}: PMatImplicit vTMv`);
  assert.ok(Math.abs((await im.trace()) - dense.trace()) <= TOL * dense.trace(), `${name}: PMatImplicit trace`);
  [diag, bd, lr, v, mvRef, mv].forEach((o) => o.dispose());
}
