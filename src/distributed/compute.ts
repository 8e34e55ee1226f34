/**
 * The tfjs work of a worker, run in a compute thread (compute-thread.ts) so that the worker's
 * event loop stays free to renew its job locks: one shard's partial matrix, and the merge of a
 * pass's partials in shard order. Both take and return persistence bytes.
 */
import { tf } from '../tf.js';
import { DistributedError } from '../errors.js';
import { FIM } from '../metrics/fim.js';
import { FIMMonteCarlo } from '../metrics/fim-monte-carlo.js';
import type { MonteCarloVariant } from '../metrics/monte-carlo-samples.js';
import type { Variant } from '../metrics/variants.js';
import { LayerCollection } from '../layers/layer-collection.js';
import { loadModel } from '../io/load-model.js';
import { serialize, deserialize, type Saveable } from '../persistence/index.js';
import { mergePartial, type Mergeable } from '../persistence/merge.js';
import { PMatDense } from '../object/pspace/dense.js';
import { PMatDiag } from '../object/pspace/diag.js';
import { PMatBlockDiag } from '../object/pspace/block-diag.js';
import { PMatLowRank } from '../object/pspace/low-rank.js';
import { PMatKFAC } from '../object/pspace/kfac.js';
import { PMatEKFAC } from '../object/pspace/ekfac.js';
import { PMatQuasiDiag } from '../object/pspace/quasi-diag.js';
import { PMatImplicit } from '../object/pspace/implicit.js';
import { PVector } from '../object/pvector.js';
import { EigenBlock } from '../object/pspace/kronecker/eigen-block.js';
import type { PMatBase, Representation } from '../object/pspace/pmat.js';
import type { Progress } from '../backend/pass.js';
import { GramMatrix } from '../metrics/gram.js';
import { shardSeed } from './hash.js';
import { shardBatches } from './shard-data.js';
import { mixedShardRepresentation } from './mixed-plan.js';
import { assembleKernel, tileFromUnion } from './ntk-tiles.js';
import type { MergePart, ShardSpan } from './compute-pool.js';
import type { DistributedRepresentation, PassDefinition } from './protocol.js';

const REPRESENTATIONS: Record<Exclude<DistributedRepresentation, 'PMatEKFAC'>, Representation<PMatBase>> = {
  PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatQuasiDiag,
};

let backend: string | null = null;
let held: { hash: string; model: tf.LayersModel } | null = null;

async function useBackend(name: string): Promise<void> {
  if (backend === name) return;
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(name))) throw new DistributedError(`worker: the tfjs backend '${name}' could not be set`);
  await tf.ready();
  backend = name;
}

/** The pass's model, loaded once per content hash. */
async function modelOf(pass: PassDefinition): Promise<tf.LayersModel> {
  await useBackend(pass.backend);
  if (held?.hash === pass.modelHash) return held.model;
  held?.model.dispose();
  held = null;
  const model = await loadModel(pass.model);
  held = { hash: pass.modelHash, model };
  return model;
}

/** EKFAC's eigenbasis from `basis` bytes, recomputed on `spec` so that updateDiag can run on it. */
function eigenbasisRepresentation(basis: PMatEKFAC): Representation<PMatEKFAC> {
  return {
    representationName: 'PMatEKFAC',
    compute: async (spec) => new PMatEKFAC(spec.layerCollection, basis.eigenBlocks().map((b) => new EigenBlock(b.k, b.c, b.uA.slice(), b.uG.slice(), b.diagonal.slice())), 'kfac', spec),
  };
}

/**
 * The partial matrix of examples [start, end) as persistence bytes. Monte-Carlo labels are
 * sampled with shardSeed(seed, index); the 'ekfac-diagonal' pass projects the shard's
 * per-example gradients on the eigenbasis in `basisBytes`.
 */
export async function computeShard(
  pass: PassDefinition,
  shard: ShardSpan,
  basisBytes: Uint8Array | null,
  onProgress: (p: Progress) => void,
): Promise<{ bytes: Uint8Array; examples: number }> {
  const model = await modelOf(pass);
  const layerCollection = LayerCollection.fromLayers(model, pass.layerIds);
  if (pass.compute === 'ntk-tile') return computeTile(pass, model, layerCollection, shard, onProgress);
  if (pass.compute === 'implicit-mv') return computeProduct(pass, model, layerCollection, shard, basisBytes, onProgress);
  const batches = await shardBatches(pass, model, shard.start, shard.end);
  let basis: PMatEKFAC | null = null;
  let M: PMatBase | null = null;
  try {
    let representation: Representation<PMatBase>;
    if (pass.compute === 'ekfac-diagonal') {
      if (!basisBytes) throw new DistributedError(`worker: the EKFAC diagonal pass of shard ${shard.index} has no eigenbasis`);
      basis = deserialize(basisBytes, model) as PMatEKFAC;
      representation = eigenbasisRepresentation(basis);
    } else if (pass.compute === 'PMatMixed') {
      if (!pass.mixed?.length) throw new DistributedError(`worker: the mixed pass of shard ${shard.index} has no groups`);
      representation = mixedShardRepresentation(pass.mixed);
    } else if (pass.compute === 'PMatEKFAC') {
      throw new DistributedError('worker: EKFAC runs as a KFAC pass then an eigenbasis-diagonal pass');
    } else {
      representation = REPRESENTATIONS[pass.compute as Exclude<DistributedRepresentation, 'PMatEKFAC'>];
      if (!representation) throw new DistributedError(`worker: unknown computation '${pass.compute}'`);
    }
    const common = { model, loader: batches, layerCollection, representation, onProgress, ...(pass.sigma2 !== undefined ? { sigma2: pass.sigma2 } : {}) };
    M = pass.trials
      ? await FIMMonteCarlo({ ...common, variant: pass.variant as MonteCarloVariant, trials: pass.trials, seed: shardSeed(pass.seed, shard.index) })
      : await FIM({ ...common, variant: pass.variant as Variant, workers: 1, ...(pass.variant === 'empirical' ? { loss: pass.loss ?? 'cross_entropy' } : {}) });
    if (pass.compute === 'ekfac-diagonal') await (M as PMatEKFAC).updateDiag(batches);
    return { bytes: serialize(M as Saveable), examples: shard.end - shard.start };
  } finally {
    M?.dispose();
    basis?.dispose();
    for (const b of batches) tf.dispose(b.ys ? [b.xs, b.ys] : [b.xs]);
  }
}

/**
 * NTK tile rows × columns: the kernel of the rows' batches followed by the columns' batches
 * (ntk-tiles.ts), of which the tile is the off-diagonal block (all of it when rows = columns).
 */
async function computeTile(pass: PassDefinition, model: tf.LayersModel, layerCollection: LayerCollection, shard: ShardSpan, onProgress: (p: Progress) => void): Promise<{ bytes: Uint8Array; examples: number }> {
  const columns = shard.columns;
  if (!columns || !pass.kernel) throw new DistributedError(`worker: NTK tile ${shard.index} has no columns or kernel definition`);
  const same = columns.start === shard.start && columns.end === shard.end;
  const batches = await shardBatches(pass, model, shard.start, shard.end);
  try {
    if (!same) batches.push(...(await shardBatches(pass, model, columns.start, columns.end)));
    const K = await GramMatrix({ model, loader: batches.map((b) => ({ xs: b.xs })), layerCollection, onProgress });
    try {
      if (K.numOutputs !== pass.kernel.outputs) throw new DistributedError(`worker: the model has ${K.numOutputs} outputs, the run expects ${pass.kernel.outputs}`);
      const tile = tileFromUnion(K.values(), K.numOutputs, shard.end - shard.start, columns.end - columns.start, same);
      return { bytes: new Uint8Array(tile.buffer), examples: shard.end - shard.start };
    } finally {
      K.dispose();
    }
  } finally {
    for (const b of batches) tf.dispose(b.ys ? [b.xs, b.ys] : [b.xs]);
  }
}

/** F_s v over the shard's examples (PMatImplicit: one pass, no matrix stored), as a serialized PVector. */
async function computeProduct(pass: PassDefinition, model: tf.LayersModel, layerCollection: LayerCollection, shard: ShardSpan, vectorBytes: Uint8Array | null, onProgress: (p: Progress) => void): Promise<{ bytes: Uint8Array; examples: number }> {
  if (!vectorBytes) throw new DistributedError(`worker: the product of shard ${shard.index} has no vector`);
  const v = deserialize(vectorBytes, model);
  const batches = await shardBatches(pass, model, shard.start, shard.end);
  let M: PMatImplicit | null = null;
  let out: PVector | null = null;
  try {
    if (!(v instanceof PVector)) throw new DistributedError(`worker: the vector of a product is a ${v.constructor.name}, not a PVector`);
    M = await FIM({ model, loader: batches, layerCollection, representation: PMatImplicit, variant: pass.variant as Variant, workers: 1, onProgress, ...(pass.sigma2 !== undefined ? { sigma2: pass.sigma2 } : {}) });
    out = await M.mv(v);
    return { bytes: serialize(out), examples: shard.end - shard.start };
  } finally {
    out?.dispose();
    M?.dispose();
    v.dispose();
    for (const b of batches) tf.dispose(b.ys ? [b.xs, b.ys] : [b.xs]);
  }
}

/** Σ_s w_s (F_s v) with w_s = n_s / n, accumulated in float64: the product F v of the whole data. */
function mergeProducts(parts: ReadonlyArray<{ matrix: PVector; examples: number }>): PVector {
  const total = parts.reduce((a, p) => a + p.examples, 0);
  const first = parts[0]!.matrix;
  const sum = new Float64Array(first.layerCollection.numel());
  for (const p of parts) {
    const x = p.matrix.data.dataSync();
    if (x.length !== sum.length) throw new DistributedError('merge: the partial products have different sizes');
    const w = p.examples / total;
    for (let k = 0; k < sum.length; k++) sum[k]! += w * x[k]!;
  }
  return PVector.adopt(first.layerCollection, tf.tensor1d(new Float32Array(sum)));
}

/**
 * The example-weighted mean of EKFAC partials that share one eigenbasis: the diagonal
 * (1/n) Σᵢ (U_Aᵀ ⊗ U_Gᵀ gᵢ)∘² is a mean over examples like every other statistic
 * (George et al. 2018, eq. 7), so its merge is the weighted mean of the parts' diagonals.
 */
export function mergeEkfacDiagonals(parts: ReadonlyArray<{ matrix: PMatEKFAC; examples: number }>): PMatEKFAC {
  const total = parts.reduce((a, p) => a + p.examples, 0);
  const first = parts[0]!.matrix;
  const blocks = first.eigenBlocks().map((b, j) => {
    const d = new Float64Array(b.diagonal.length);
    for (const p of parts) {
      const pb = p.matrix.eigenBlocks()[j];
      if (!pb || pb.diagonal.length !== d.length) throw new DistributedError('merge: the EKFAC partials have different blocks');
      const w = p.examples / total;
      for (let k = 0; k < d.length; k++) d[k]! += w * pb.diagonal[k]!;
    }
    return new EigenBlock(b.k, b.c, b.uA.slice(), b.uG.slice(), d);
  });
  return new PMatEKFAC(first.layerCollection, blocks, 'updated', null);
}

/** Merges partials given in shard order into the persistence bytes of the pass's matrix. */
export async function mergeShards(pass: PassDefinition, parts: ReadonlyArray<MergePart>): Promise<Uint8Array> {
  if (pass.compute === 'ntk-tile') {
    if (!pass.kernel) throw new DistributedError('merge: the NTK pass has no kernel definition');
    return new Uint8Array(assembleKernel(pass.kernel, parts).buffer);
  }
  const model = await modelOf(pass);
  const matrices: Array<{ matrix: Saveable; examples: number }> = [];
  try {
    for (const p of parts) matrices.push({ matrix: deserialize(p.bytes, model), examples: p.examples });
    const merged =
      pass.compute === 'ekfac-diagonal'
        ? mergeEkfacDiagonals(matrices as Array<{ matrix: PMatEKFAC; examples: number }>)
        : pass.compute === 'implicit-mv'
          ? matrices.length === 1 ? null : mergeProducts(matrices as Array<{ matrix: PVector; examples: number }>)
          : matrices.length === 1
          ? null
          : mergePartial(matrices as Array<{ matrix: Mergeable; examples: number }>);
    if (merged === null) return parts[0]!.bytes;
    try {
      return serialize(merged);
    } finally {
      merged.dispose();
    }
  } finally {
    matrices.forEach((m) => m.matrix.dispose());
  }
}
