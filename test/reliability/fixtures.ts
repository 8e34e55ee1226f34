/**
 * Shared fixtures of the reliability suites: tiny seeded models (one of them poisoned with a NaN
 * weight, one with a single output, one without trainable weights), well-formed and malformed
 * batches, and one live and one disposed instance of every public object type. Everything is
 * created once per backend, before any row runs, so that a row's tensor count only sees what the
 * operation under test creates.
 */
import { tf } from '../../src/tf.js';
import {
  FIM,
  FMatDense,
  FVector,
  GramMatrix,
  Hessian,
  Jacobian,
  LayerCollection,
  PFMapDense,
  PFMapImplicit,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatEye,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PMatQuasiDiag,
  PVector,
  type PMat,
  type PMatHessianImplicit,
  type PMatMixed,
} from '../../src/index.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';

export type Batch = { xs: tf.Tensor; ys: tf.Tensor };

/** The stored representations, by class name. */
export interface StoredMatrices {
  PMatDense: PMatDense;
  PMatDiag: PMatDiag;
  PMatBlockDiag: PMatBlockDiag;
  PMatLowRank: PMatLowRank;
  PMatKFAC: PMatKFAC;
  PMatEKFAC: PMatEKFAC;
  PMatQuasiDiag: PMatQuasiDiag;
  PMatEye: PMatEye;
  PMatEKFACBlockDiag: PMatMixed;
}
export type StoredName = keyof StoredMatrices;
export const STORED: readonly StoredName[] = ['PMatDense', 'PMatDiag', 'PMatBlockDiag', 'PMatLowRank', 'PMatKFAC', 'PMatEKFAC', 'PMatQuasiDiag', 'PMatEye', 'PMatEKFACBlockDiag'];

export interface Fixtures {
  /** MLP 5 → 7 (tanh) → 4. */
  model: tf.Sequential;
  /** Another MLP of the same shapes (other layer names: another layer collection). */
  other: tf.Sequential;
  /** 5 → 1: a single-class classifier / one regression output. */
  one: tf.Sequential;
  /** A dense layer with trainable: false. */
  frozen: tf.Sequential;
  /** The MLP's shapes with a NaN in the last bias. */
  poisoned: tf.Sequential;
  lc: LayerCollection;
  lcOther: LayerCollection;
  /** Two batches of three examples with integer labels. */
  batches: Batch[];
  /** One batch of one example. */
  single: Batch[];
  /** Malformed data, created up front. */
  bad: {
    wrongWidth: tf.Tensor;
    wrongRank: tf.Tensor;
    int: tf.Tensor;
    nan: tf.Tensor;
    inf: tf.Tensor;
    ysShort: tf.Tensor;
    empty: tf.Tensor;
    disposedInput: tf.Tensor;
    /** A good first batch, then one with a NaN. */
    nanSecond: Batch[];
    /** One integer label. */
    ys1: tf.Tensor;
    /** Zeros [3, 1]: regression targets of the single-output model. */
    targets31: tf.Tensor;
    /** Flat vectors: 73 entries, int32, NaN. */
    flat73: tf.Tensor;
    flatInt: tf.Tensor;
    flatNaN: tf.Tensor;
    /** [4, 6, d] tensors: int32, NaN. */
    jInt: tf.Tensor;
    jNaN: tf.Tensor;
  };
  v: PVector;
  /** A vector on the other model's collection. */
  w: PVector;
  /** Shape [4, 6]: the model's outputs on the six examples. */
  f: FVector;
  /** Shape [4, 5]. */
  fWrong: FVector;
  J: PFMapDense;
  /** The other model's Jacobian. */
  JOther: PFMapDense;
  Ji: PFMapImplicit;
  K: FMatDense;
  /** [4, 5] examples: another shape. */
  KOther: FMatDense;
  mats: StoredMatrices;
  /** The same representations on the other model. */
  matsOther: StoredMatrices;
  implicit: PMatImplicit;
  hessian: PMatHessianImplicit;
  /** One disposed instance of every class. */
  disposed: {
    v: PVector;
    f: FVector;
    J: PFMapDense;
    Ji: PFMapImplicit;
    K: FMatDense;
    mats: StoredMatrices;
    implicit: PMatImplicit;
    hessian: PMatHessianImplicit;
  };
  /** Every model, for the weights-unchanged check. */
  models: tf.LayersModel[];
  dispose(): void;
}

async function storedMatrices(model: tf.LayersModel, loader: Batch[]): Promise<StoredMatrices> {
  const lc = LayerCollection.fromModel(model);
  return {
    PMatDense: await FIM({ model, loader, representation: PMatDense }),
    PMatDiag: await FIM({ model, loader, representation: PMatDiag }),
    PMatBlockDiag: await FIM({ model, loader, representation: PMatBlockDiag }),
    PMatLowRank: await FIM({ model, loader, representation: PMatLowRank }),
    PMatKFAC: await FIM({ model, loader, representation: PMatKFAC }),
    PMatEKFAC: await FIM({ model, loader, representation: PMatEKFAC }),
    PMatQuasiDiag: await FIM({ model, loader, representation: PMatQuasiDiag }),
    PMatEye: new PMatEye(lc, 2),
    PMatEKFACBlockDiag: await FIM({ model, loader, representation: PMatEKFACBlockDiag }),
  };
}

function disposeAll(m: StoredMatrices): void {
  for (const k of STORED) m[k].dispose();
}

export async function makeFixtures(): Promise<Fixtures> {
  const model = mlp();
  const other = mlp();
  const one = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [5], kernelInitializer: tf.initializers.randomNormal({ seed: 3 }) })] });
  const frozen = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [5], trainable: false })] });
  const poisoned = mlp();
  const [k, b] = poisoned.layers[1]!.getWeights();
  const nanBias = tf.fill(b!.shape, NaN);
  poisoned.layers[1]!.setWeights([k!, nanBias]);
  nanBias.dispose();
  const lc = LayerCollection.fromModel(model);
  const lcOther = LayerCollection.fromModel(other);
  const batches = randomBatches(model, 6, 3);
  const single = randomBatches(model, 1, 1, 99);
  const disposedInput = tf.ones([2, 5]);
  disposedInput.dispose();
  const nanX = tf.tensor2d([[1, 2, 3, 4, NaN], [0, 0, 0, 0, 0]]);
  const bad = {
    wrongWidth: tf.ones([3, 6]),
    wrongRank: tf.ones([3, 5, 1]),
    int: tf.ones([3, 5], 'int32'),
    nan: tf.tensor2d([[1, 2, 3, 4, NaN]]),
    inf: tf.tensor2d([[1, 2, 3, 4, Infinity]]),
    ysShort: tf.zeros([2], 'int32'),
    empty: tf.zeros([0, 5]),
    disposedInput,
    nanSecond: [batches[0]!, { xs: nanX, ys: tf.zeros([2], 'int32') }],
    ys1: tf.zeros([1], 'int32'),
    targets31: tf.zeros([3, 1]),
    flat73: tf.zeros([lc.numel() - 1]),
    flatInt: tf.zeros([lc.numel()], 'int32'),
    flatNaN: tf.fill([lc.numel()], NaN),
    jInt: tf.zeros([4, 6, lc.numel()], 'int32'),
    jNaN: tf.fill([4, 6, lc.numel()], NaN),
  };
  const v = PVector.random(lc, 1);
  const w = PVector.random(lcOther, 1);
  const f = FVector.random(4, 6, 2);
  const fWrong = FVector.random(4, 5, 3);
  const J = await Jacobian({ model, loader: batches });
  const JOther = await Jacobian({ model: other, loader: batches });
  const Ji = await Jacobian({ model, loader: batches, representation: PFMapImplicit });
  const K = await GramMatrix({ model, loader: batches });
  const KOther = await GramMatrix({ model, loader: [{ xs: batches[0]!.xs }, { xs: tf.slice(batches[1]!.xs, [0], [2]) }] });
  const mats = await storedMatrices(model, batches);
  const matsOther = await storedMatrices(other, batches);
  const implicit = await FIM({ model, loader: batches, representation: PMatImplicit });
  const hessian = await Hessian({ model, loader: batches, loss: 'cross_entropy', representation: PMatImplicit });
  const disposed = {
    v: v.clone(),
    f: f.clone(),
    J: await Jacobian({ model, loader: batches }),
    Ji: await Jacobian({ model, loader: batches, representation: PFMapImplicit }),
    K: await GramMatrix({ model, loader: batches }),
    mats: await storedMatrices(model, batches),
    implicit: await FIM({ model, loader: batches, representation: PMatImplicit }),
    hessian: await Hessian({ model, loader: batches, loss: 'cross_entropy', representation: PMatImplicit }),
  };
  [disposed.v, disposed.f, disposed.J, disposed.Ji, disposed.K, disposed.implicit, disposed.hessian].forEach((o) => o.dispose());
  disposeAll(disposed.mats);
  const models = [model, other, one, frozen, poisoned];
  return {
    model,
    other,
    one,
    frozen,
    poisoned,
    lc,
    lcOther,
    batches,
    single,
    bad,
    v,
    w,
    f,
    fWrong,
    J,
    JOther,
    Ji,
    K,
    KOther,
    mats,
    matsOther,
    implicit,
    hessian,
    disposed,
    models,
    dispose() {
      disposeAll(mats);
      disposeAll(matsOther);
      [v, w, f, fWrong, J, JOther, Ji, K, KOther, implicit, hessian].forEach((o) => o.dispose());
      disposeBatches(batches);
      disposeBatches(single);
      const { nanSecond, ...tensors } = bad;
      tf.dispose(Object.values(tensors).filter((t) => !t.isDisposed));
      tf.dispose([nanSecond[1]!.xs, nanSecond[1]!.ys]);
      models.forEach((m) => m.dispose());
    },
  };
}

/** The model's trainable weight values, flattened. */
export function weightsOf(models: readonly tf.LayersModel[]): number[][] {
  return models.map((m) => m.weights.flatMap((w) => Array.from(w.read().dataSync())));
}

/** Whether a result is made of finite numbers (awaiting a matrix-free trace). */
export async function isFiniteResult(r: unknown): Promise<boolean> {
  if (typeof r === 'number') return Number.isFinite(r);
  if (r instanceof tf.Tensor) return Array.from(r.dataSync()).every(Number.isFinite);
  if (r instanceof PVector || r instanceof FVector || r instanceof PFMapDense) return Array.from(r.data.dataSync()).every(Number.isFinite);
  if (r instanceof FMatDense) return Number.isFinite(r.trace());
  const m = r as Partial<PMat> & { mv?: (v: PVector) => unknown };
  if (m && typeof m.trace === 'function') return Number.isFinite(await m.trace());
  if (m && typeof m.mv === 'function' && m.layerCollection) {
    const v = PVector.random(m.layerCollection, 5);
    try {
      const y = (await m.mv(v)) as PVector;
      const ok = Array.from(y.data.dataSync()).every(Number.isFinite);
      y.dispose();
      return ok;
    } finally {
      v.dispose();
    }
  }
  if (r instanceof PFMapImplicit) return true;
  throw new Error(`isFiniteResult: cannot inspect ${String(r)}`);
}

/** Disposes whatever an operation returned (objects with dispose, tensors, arrays of them). */
export function disposeResult(r: unknown): void {
  if (r === null || r === undefined || typeof r !== 'object') return;
  if (Array.isArray(r)) return r.forEach(disposeResult);
  if (r instanceof tf.Tensor) return r.dispose();
  if (typeof (r as { dispose?: unknown }).dispose === 'function') return (r as { dispose(): void }).dispose();
  // plain records: { x: PVector, ... } (solveWithInfo), { values, vectors } (eigendecomposition)
  Object.values(r).forEach(disposeResult);
}
