/**
 * The leak table: every public operation on every representation, the function-space objects,
 * persistence and model files, on the cpu and the wasm backends. Each row records
 * tf.memory().numTensors and numBytes, runs the operation, disposes what it returned, and
 * asserts both are back where they were. The "midway" rows make the operation throw after it
 * has started (a NaN in the second batch, an AbortSignal fired after the first batch, a
 * conjugate gradient meeting negative curvature, a mixed matrix whose second group cannot be
 * inverted) and assert the same.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/tf.js';
import {
  FIM,
  FIMMonteCarlo,
  FMatDense,
  FVector,
  GramMatrix,
  Hessian,
  Jacobian,
  LayerCollection,
  NNGeometryError,
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
  PMatMixed,
  PMatQuasiDiag,
  PVector,
  conjugateGradient,
  asOperator,
  eigsh,
  estimateDiag,
  estimateTrace,
  spectralDensity,
  deserialize,
  load,
  loadModel,
  mergePartial,
  save,
  saveModel,
  serialize,
  type Loader,
  type Representation,
  Laplace,
  pairwiseInfluence,
  selfInfluence,
  NaturalGradientOptimizer,
  ewcPenalty,
  fisherMerge,
  fit,
  loadOptimizerState,
  serializeOptimizerState,
} from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { craft, headerOf, payloadOf } from '../support/persistence.js';
import { type Fixtures, STORED, type StoredName, disposeResult, makeFixtures } from './fixtures.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;
type Op = [name: string, run: (fx: Fixtures) => unknown];

/** Aborts once the first batch is done: the pass stops at the start of the second. */
function abortAfterFirstBatch(): { signal: AbortSignal; onProgress: () => void } {
  const controller = new AbortController();
  return { signal: controller.signal, onProgress: () => controller.abort('test') };
}

const REPS: Record<string, Representation<Loose>> = {
  PMatDense,
  PMatDiag,
  PMatBlockDiag,
  PMatLowRank,
  PMatKFAC,
  'PMatKFAC (reduce)': PMatKFAC.with({ kfacType: 'reduce' }),
  PMatEKFAC,
  'PMatEKFAC (reduce)': PMatEKFAC.with({ kfacType: 'reduce' }),
  PMatQuasiDiag,
  PMatEKFACBlockDiag,
  'PMatMixed (diag + KFAC)': PMatMixed.fromMapping({ default: PMatDiag, byLayerKind: { dense: PMatKFAC } }),
  PMatImplicit,
};
const MC_REPS = { PMatDense, PMatDiag, PMatLowRank, PMatKFAC, PMatImplicit } as const;
const HESSIAN_REPS = { PMatDense, PMatDiag, PMatBlockDiag, PMatImplicit } as const;

// ---------------------------------------------------------------- operations that succeed
const ops: Op[] = [];
for (const [name, representation] of Object.entries(REPS)) {
  ops.push([`FIM ${name}`, (fx) => FIM({ model: fx.model, loader: fx.batches, representation })]);
}
ops.push(['FIM empirical (cross_entropy)', (fx) => FIM({ model: fx.model, loader: fx.batches, representation: PMatDense, variant: 'empirical', loss: 'cross_entropy' })]);
ops.push(['FIM regression', (fx) => FIM({ model: fx.model, loader: fx.batches, representation: PMatDiag, variant: 'regression', sigma2: 2 })]);
for (const [name, representation] of Object.entries(MC_REPS)) {
  ops.push([`FIMMonteCarlo ${name}`, (fx) => FIMMonteCarlo({ model: fx.model, loader: fx.batches, representation: representation as Loose, trials: 2, seed: 1 })]);
}
ops.push(['Jacobian PFMapDense', (fx) => Jacobian({ model: fx.model, loader: fx.batches })]);
ops.push(['Jacobian PFMapImplicit', (fx) => Jacobian({ model: fx.model, loader: fx.batches, representation: PFMapImplicit })]);
ops.push(['GramMatrix', (fx) => GramMatrix({ model: fx.model, loader: fx.batches })]);
ops.push(['GramMatrix centered', (fx) => GramMatrix({ model: fx.model, loader: fx.batches, centering: true })]);
for (const [name, representation] of Object.entries(HESSIAN_REPS)) {
  ops.push([`Hessian ${name}`, (fx) => Hessian({ model: fx.model, loader: fx.batches, loss: 'cross_entropy', representation: representation as Loose })]);
}

/** Every method of a stored representation, with valid arguments (skipped where the class lacks it). */
const PMAT_METHODS: Array<[string, (m: Loose, fx: Fixtures, rep: StoredName) => unknown]> = [
  ['trace', (m) => m.trace()],
  ['norm fro', (m) => m.norm('fro')],
  ['norm 2', (m) => m.norm(2)],
  ['norm -2', (m) => m.norm(-2)],
  ['mv', (m, fx) => m.mv(fx.v)],
  ['vTMv', (m, fx) => m.vTMv(fx.v)],
  ['getDiag', (m) => m.getDiag()],
  ['toTensor', (m) => m.toTensor()],
  ['solve', (m, fx) => m.solve(fx.v, { regul: 0.1 })],
  ['scale', (m) => m.scale(2)],
  ['inv', (m) => m.inv({ regul: 0.1 })],
  ['pow', (m) => m.pow(-0.5, { regul: 0.1 })],
  ['pinv', (m) => m.pinv()],
  ['logdet', (m) => m.logdet({ regul: 0.1 })],
  ['add', (m, fx, rep) => m.add(fx.mats[rep])],
  ['sub', (m, fx, rep) => m.sub(fx.mats[rep])],
  ['mm', (m, fx, rep) => m.mm(fx.mats[rep])],
  ['mmap', (m, fx) => m.mmap(fx.J)],
  ['mapTMmap', (m, fx) => m.mapTMmap(fx.J)],
  ['mapTMmap diag', (m, fx) => m.mapTMmap(fx.J, { reduction: 'diag' })],
  ['values', (m) => m.values()],
  ['block', (m, fx) => m.block(fx.lc.layers[0]!.id)],
  ['layerFactors', (m, fx) => m.layerFactors(fx.lc.layers[1]!.id)],
  ['eigendecomposition', (m) => m.eigendecomposition()],
  ['eigenBlocks', (m) => m.eigenBlocks()],
  ['layerBlock', (m, fx) => m.layerBlock(fx.lc.layers[0]!.id)],
  ['parts', (m) => m.parts().map((p: { layerIds: string[] }) => p.layerIds)],
];
const hasMethod = (proto: object, name: string) => typeof Object.getOwnPropertyDescriptor(proto, name)?.value === 'function';
const CLASSES: Record<StoredName, { prototype: object }> = { PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatQuasiDiag, PMatEye, PMatEKFACBlockDiag: PMatMixed };
for (const rep of STORED) {
  for (const [method, call] of PMAT_METHODS) {
    if (!hasMethod(CLASSES[rep].prototype, method.split(' ')[0]!)) continue;
    ops.push([`${rep}.${method}`, (fx) => call(fx.mats[rep], fx, rep)]);
  }
  if (rep === 'PMatDense' || rep === 'PMatDiag' || rep === 'PMatBlockDiag' || rep === 'PMatLowRank') {
    ops.push([`${rep}.solve(PFMapDense)`, (fx) => (fx.mats[rep] as Loose).solve(fx.J, { regul: 0.1 })]);
  }
}
ops.push(['PMatKFAC.solve pi', (fx) => fx.mats.PMatKFAC.solve(fx.v, { regul: 0.1, damping: 'pi' })]);
ops.push(['PMatKFAC.inv pi', (fx) => fx.mats.PMatKFAC.inv({ regul: 0.1, damping: 'pi' })]);
ops.push(['PMatLowRank.solve (primal: m > d)', async (fx) => {
  const L = await FIM({ model: fx.model, loader: [...fx.batches, ...fx.batches, ...fx.batches, ...fx.batches], representation: PMatLowRank });
  try {
    return L.solve(fx.v, { regul: 0.1 });
  } finally {
    L.dispose();
  }
}]);
ops.push(['PMatEKFAC.updateDiag', async (fx) => {
  const E = await FIM({ model: fx.model, loader: fx.batches, representation: PMatEKFAC });
  await E.updateDiag(fx.batches);
  return E;
}]);
ops.push(['PMatMixed.updateDiag', async (fx) => {
  const E = await FIM({ model: fx.model, loader: fx.batches, representation: PMatEKFACBlockDiag });
  await E.updateDiag(fx.batches);
  return E;
}]);
for (const [name, get] of [['PMatImplicit', (fx: Fixtures) => fx.implicit], ['PMatHessianImplicit', (fx: Fixtures) => fx.hessian]] as const) {
  ops.push([`${name}.mv`, (fx) => get(fx).mv(fx.v)]);
  ops.push([`${name}.vTMv`, (fx) => get(fx).vTMv(fx.v)]);
  ops.push([`${name}.solve`, (fx) => get(fx).solve(fx.v, { regul: 1, maxIter: 3 })]);
  ops.push([`${name}.solveWithInfo`, (fx) => get(fx).solveWithInfo(fx.v, { regul: 1, maxIter: 3 })]);
}
ops.push(['PMatImplicit.trace', (fx) => fx.implicit.trace()]);
ops.push(['PMatImplicit.mmap', (fx) => fx.implicit.mmap(fx.J)]);
ops.push(['PMatImplicit.mapTMmap', (fx) => fx.implicit.mapTMmap(fx.J, { reduction: 'diag' })]);
ops.push(['PMatHessianImplicit.mmap', async (fx) => {
  const J1 = await Jacobian({ model: fx.model, loader: fx.single });
  try {
    return await fx.hessian.mmap(J1);
  } finally {
    J1.dispose();
  }
}]);
ops.push(['conjugateGradient', (fx) => conjugateGradient(async (v) => v.scale(2), fx.v, { maxIter: 3 })]);
// Spectral tools on a matrix-free, an indefinite and a stored operator, and on FMatDense.
for (const [name, get] of [['PMatImplicit', (fx: Fixtures) => fx.implicit], ['PMatHessianImplicit', (fx: Fixtures) => fx.hessian], ['PMatKFAC', (fx: Fixtures) => fx.mats.PMatKFAC], ['FMatDense', (fx: Fixtures) => fx.K]] as const) {
  ops.push([`eigsh ${name}`, (fx) => eigsh(get(fx) as Loose, { k: 2, maxIterations: 12 })]);
  ops.push([`estimateTrace ${name}`, (fx) => estimateTrace(get(fx) as Loose, { samples: 6 })]);
  ops.push([`estimateDiag ${name}`, (fx) => estimateDiag(get(fx) as Loose, { samples: 6 })]);
  ops.push([`spectralDensity ${name}`, (fx) => spectralDensity(get(fx) as Loose, { probes: 2, steps: 4 })]);
}
// PVector
ops.push(['PVector.fromModel', (fx) => PVector.fromModel(fx.model)]);
ops.push(['PVector.fromFlat', (fx) => PVector.fromFlat(fx.lc, fx.v.data)]);
ops.push(['PVector.random', (fx) => PVector.random(fx.lc, 3)]);
ops.push(['PVector.zeros', (fx) => PVector.zeros(fx.lc)]);
ops.push(['PVector.toFlat', (fx) => fx.v.toFlat()]);
ops.push(['PVector.layer', (fx) => fx.v.layer(fx.lc.layers[0]!.id)]);
ops.push(['PVector.copyToModel', (fx) => {
  const w = PVector.fromModel(fx.model);
  w.copyToModel(fx.model);
  return w;
}]);
ops.push(['PVector.addToModel', (fx) => {
  const z = PVector.zeros(fx.lc);
  z.addToModel(fx.model);
  return z;
}]);
ops.push(['PVector.add', (fx) => fx.v.add(fx.v)]);
ops.push(['PVector.sub', (fx) => fx.v.sub(fx.v)]);
ops.push(['PVector.scale', (fx) => fx.v.scale(3)]);
ops.push(['PVector.dot', (fx) => fx.v.dot(fx.v)]);
for (const p of [1, 2, 3, Infinity]) ops.push([`PVector.norm ${p}`, (fx) => fx.v.norm(p)]);
ops.push(['PVector.clone', (fx) => fx.v.clone()]);
// FVector
ops.push(['FVector.fromTensor', (fx) => FVector.fromTensor(fx.f.data)]);
ops.push(['FVector.random', () => FVector.random(3, 2, 1)]);
ops.push(['FVector.zeros', () => FVector.zeros(3, 2)]);
ops.push(['FVector.toTensor', (fx) => fx.f.toTensor()]);
ops.push(['FVector.add', (fx) => fx.f.add(fx.f)]);
ops.push(['FVector.sub', (fx) => fx.f.sub(fx.f)]);
ops.push(['FVector.scale', (fx) => fx.f.scale(2)]);
ops.push(['FVector.dot', (fx) => fx.f.dot(fx.f)]);
for (const p of [1, 2, 3, Infinity]) ops.push([`FVector.norm ${p}`, (fx) => fx.f.norm(p)]);
ops.push(['FVector.clone', (fx) => fx.f.clone()]);
// PFMapDense / PFMapImplicit
ops.push(['PFMapDense.fromTensor', (fx) => PFMapDense.fromTensor(fx.lc, fx.J.data)]);
ops.push(['PFMapDense.toTensor', (fx) => fx.J.toTensor()]);
ops.push(['PFMapDense.rows', (fx) => fx.J.rows()]);
ops.push(['PFMapDense.layer', (fx) => fx.J.layer(fx.lc.layers[1]!.id)]);
ops.push(['PFMapDense.jvp', (fx) => fx.J.jvp(fx.v)]);
ops.push(['PFMapDense.vjp', (fx) => fx.J.vjp(fx.f)]);
ops.push(['PFMapDense.add', (fx) => fx.J.add(fx.J)]);
ops.push(['PFMapDense.sub', (fx) => fx.J.sub(fx.J)]);
ops.push(['PFMapDense.scale', (fx) => fx.J.scale(2)]);
ops.push(['PFMapImplicit.jvp', (fx) => fx.Ji.jvp(fx.v)]);
ops.push(['PFMapImplicit.vjp', (fx) => fx.Ji.vjp(fx.f)]);
// FMatDense
ops.push(['FMatDense.fromTensor', (fx) => {
  const t = fx.K.toTensor();
  try {
    return FMatDense.fromTensor(fx.lc, t);
  } finally {
    t.dispose();
  }
}]);
ops.push(['FMatDense.toTensor', (fx) => fx.K.toTensor()]);
ops.push(['FMatDense.trace', (fx) => fx.K.trace()]);
ops.push(['FMatDense.norm fro', (fx) => fx.K.norm('fro')]);
ops.push(['FMatDense.norm 2', (fx) => fx.K.norm(2)]);
ops.push(['FMatDense.mv', (fx) => fx.K.mv(fx.f)]);
ops.push(['FMatDense.vTMv', (fx) => fx.K.vTMv(fx.f)]);
ops.push(['FMatDense.eigendecomposition', (fx) => fx.K.eigendecomposition({ k: 3 })]);
ops.push(['FMatDense.solve', (fx) => fx.K.solve(fx.f, { regul: 0.1 })]);
ops.push(['FMatDense.add', (fx) => fx.K.add(fx.K)]);
ops.push(['FMatDense.sub', (fx) => fx.K.sub(fx.K)]);
ops.push(['FMatDense.scale', (fx) => fx.K.scale(2)]);
// persistence and model files
for (const rep of STORED) {
  ops.push([`serialize + deserialize ${rep}`, (fx) => deserialize(serialize(fx.mats[rep] as Loose), fx.model)]);
}
ops.push(['serialize + deserialize PVector', (fx) => deserialize(serialize(fx.v), fx.model)]);
ops.push(['save + load (file)', async (fx) => {
  const dir = await mkdtemp(join(tmpdir(), 'nngeometry-leaks-'));
  try {
    await save(fx.mats.PMatKFAC, join(dir, 'kfac.nng'));
    return await load(join(dir, 'kfac.nng'), fx.model);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}]);
ops.push(['save + load (handler)', async (fx) => {
  let bytes = new Uint8Array(0);
  await save(fx.mats.PMatLowRank, { write: (b) => void (bytes = new Uint8Array(b)) });
  return load({ read: () => bytes }, fx.model);
}]);
for (const rep of ['PMatDense', 'PMatDiag', 'PMatBlockDiag', 'PMatLowRank', 'PMatKFAC', 'PMatQuasiDiag'] as const) {
  ops.push([`mergePartial ${rep}`, (fx) => mergePartial<Loose>([{ matrix: fx.mats[rep], examples: 3 }, { matrix: fx.mats[rep], examples: 5 }])]);
}
ops.push(['saveModel + loadModel', async (fx) => {
  const dir = await mkdtemp(join(tmpdir(), 'nngeometry-leaks-'));
  try {
    await saveModel(fx.model, dir);
    return await loadModel(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}]);
ops.push(['LayerCollection.fromModel / fromLayers / merge / intersect', (fx) => {
  const a = LayerCollection.fromModel(fx.model);
  const b = LayerCollection.fromLayers(fx.model, [fx.lc.layers[0]!.id]);
  return [a.merge(b).numel(), a.intersect(b).numel(), a.equals(b)];
}]);

// ---------------------------------------------------------------- Laplace and influence functions
const INFLUENCE_REPS = { PMatDense, PMatDiag, PMatBlockDiag, PMatLowRank, PMatKFAC, PMatEKFAC, PMatImplicit } as const;
for (const [name, representation] of Object.entries(INFLUENCE_REPS)) {
  ops.push([`pairwiseInfluence ${name}`, (fx) => pairwiseInfluence({ model: fx.model, trainLoader: fx.batches, queryLoader: fx.single, representation: representation as Loose, cg: { maxIter: 5 } })]);
  ops.push([`selfInfluence ${name}`, (fx) => selfInfluence({ model: fx.model, trainLoader: fx.batches, representation: representation as Loose, cg: { maxIter: 5 } })]);
  ops.push([`Laplace ${name}: fit, predictive (probit, bridge, mc), marglik, optimize, sample, posterior matrices`, async (fx) => {
    const la = await Laplace.fit({ model: fx.model, loader: fx.batches, likelihood: 'classification', representation: representation as Loose, cg: { maxIter: 5 } });
    try {
      const out: unknown[] = [await la.predictive(fx.single[0]!.xs), await la.predictive(fx.single[0]!.xs, { linkApprox: 'bridge' })];
      if (name === 'PMatImplicit') return out;
      out.push(await la.predictive(fx.single[0]!.xs, { linkApprox: 'mc', samples: 2, seed: 1 }), la.logMarginalLikelihood(), await la.optimizePriorPrecision(), la.sample(2, { seed: 1 }));
      out.push(await la.optimizePriorPrecision({ method: 'gridsearch', grid: [0.1, 10], valLoader: fx.batches }));
      if (name !== 'PMatLowRank') out.push(la.posteriorPrecision.trace(), la.posteriorCovariance());
      return out;
    } finally {
      la.dispose();
    }
  }]);
}
ops.push(['pairwiseInfluence with queryRank 2', (fx) => pairwiseInfluence({ model: fx.model, trainLoader: fx.batches, queryLoader: fx.batches, queryRank: 2 })]);
ops.push(['Laplace regression: fit, predictive, marglik with σ²', async (fx) => {
  const la = await Laplace.fit({ model: fx.one, loader: [{ xs: fx.batches[0]!.xs, ys: fx.bad.targets31 }], likelihood: 'regression', sigma2: 0.5 });
  try {
    return [await la.predictive(fx.batches[0]!.xs), la.logMarginalLikelihood({ sigma2: 2 }), await la.optimizePriorPrecision()];
  } finally {
    la.dispose();
  }
}]);

// ---------------------------------------------------------------- training with curvature
/** Runs `f` on fx.model and puts its weights back (the optimizer rows train it). */
async function keepingWeights<T>(fx: Fixtures, f: () => Promise<T>): Promise<T> {
  const theta = PVector.fromModel(fx.model, fx.lc);
  try {
    return await f();
  } finally {
    theta.copyToModel(fx.model);
    theta.dispose();
  }
}
for (const rep of STORED) {
  ops.push([`ewcPenalty ${rep} inside tf.variableGrads`, (fx) => {
    const vars = fx.lc.layers.flatMap((e) => e.layer.trainableWeights.map((w) => w.read() as tf.Variable));
    const { value, grads } = tf.variableGrads(() => ewcPenalty(fx.mats[rep] as Loose, fx.v, { model: fx.model, lambda: 2 }), vars);
    return [value, Object.values(grads)];
  }]);
}
for (const rep of ['PMatDiag', 'PMatDense', 'PMatBlockDiag', 'PMatKFAC'] as const) {
  ops.push([`fisherMerge ${rep}`, (fx) => fisherMerge([{ weights: fx.v, fisher: fx.mats[rep] }, { weights: fx.model, fisher: fx.mats[rep] }], { regul: 0.1, maxIter: 5 })]);
}
for (const representation of [PMatKFAC, PMatEKFAC, PMatDiag]) {
  ops.push([`NaturalGradientOptimizer ${representation.representationName}: steps (adaptive damping), state round trip, fit`, (fx) =>
    keepingWeights(fx, async () => {
      const opt = new NaturalGradientOptimizer({ model: fx.model, representation, learningRate: 0.01, curvatureUpdateEvery: 2, inverseUpdateEvery: 3, adaptiveDamping: true, weightDecay: 0.1, seed: 1 });
      try {
        for (let i = 0; i < 4; i++) await opt.step(fx.batches[i % 2]!);
        loadOptimizerState(opt, serializeOptimizerState(opt));
        await fit(fx.model, fx.batches, { optimizer: opt, epochs: 2, verbose: 0 });
        return [opt.averagedCurvature(), opt.preconditionerMatrix(), opt.velocityVector()];
      } finally {
        opt.dispose();
      }
    })]);
}

// ---------------------------------------------------------------- operations that throw midway
const midway: Op[] = [];
for (const [name, representation] of Object.entries(REPS)) {
  if (name === 'PMatImplicit') continue; // stores the definition: its methods throw, below
  midway.push([`FIM ${name}: NaN in the second batch`, (fx) => FIM({ model: fx.model, loader: fx.bad.nanSecond, representation })]);
  midway.push([`FIM ${name}: aborted after the first batch`, (fx) => FIM({ model: fx.model, loader: fx.batches, representation, ...abortAfterFirstBatch() })]);
}
for (const [name, representation] of Object.entries(MC_REPS)) {
  if (name === 'PMatImplicit') continue;
  midway.push([`FIMMonteCarlo ${name}: NaN in the second batch`, (fx) => FIMMonteCarlo({ model: fx.model, loader: fx.bad.nanSecond, representation: representation as Loose, seed: 1 })]);
  midway.push([`FIMMonteCarlo ${name}: aborted after the first batch`, (fx) => FIMMonteCarlo({ model: fx.model, loader: fx.batches, representation: representation as Loose, seed: 1, ...abortAfterFirstBatch() })]);
}
midway.push(['Jacobian: NaN in the second batch', (fx) => Jacobian({ model: fx.model, loader: fx.bad.nanSecond })]);
midway.push(['Jacobian: aborted after the first batch', (fx) => Jacobian({ model: fx.model, loader: fx.batches, ...abortAfterFirstBatch() })]);
midway.push(['GramMatrix: NaN in the second batch', (fx) => GramMatrix({ model: fx.model, loader: fx.bad.nanSecond })]);
midway.push(['GramMatrix: aborted after the first batch', (fx) => GramMatrix({ model: fx.model, loader: fx.batches, ...abortAfterFirstBatch() })]);
for (const [name, representation] of Object.entries(HESSIAN_REPS)) {
  if (name === 'PMatImplicit') continue;
  midway.push([`Hessian ${name}: NaN in the second batch`, (fx) => Hessian({ model: fx.model, loader: fx.bad.nanSecond, loss: 'cross_entropy', representation: representation as Loose })]);
  midway.push([`Hessian ${name}: aborted after the first batch`, (fx) => Hessian({ model: fx.model, loader: fx.batches, loss: 'cross_entropy', representation: representation as Loose, ...abortAfterFirstBatch() })]);
}
for (const [name, representation] of Object.entries(INFLUENCE_REPS)) {
  const rep = representation as Loose;
  midway.push([`pairwiseInfluence ${name}: NaN in the second training batch`, (fx) => pairwiseInfluence({ model: fx.model, trainLoader: fx.bad.nanSecond, queryLoader: fx.single, representation: rep, damping: 0.1, cg: { maxIter: 3 } })]);
  midway.push([`selfInfluence ${name}: aborted after the first batch`, (fx) => selfInfluence({ model: fx.model, trainLoader: fx.batches, representation: rep, damping: 0.1, cg: { maxIter: 3 }, ...abortAfterFirstBatch() })]);
  midway.push([`Laplace.fit ${name}: NaN in the second batch`, (fx) => Laplace.fit({ model: fx.model, loader: fx.bad.nanSecond, likelihood: 'classification', representation: rep })]);
}
midway.push(['selfInfluence with a precomputed curvature: NaN in the second training batch', (fx) => selfInfluence({ model: fx.model, trainLoader: fx.bad.nanSecond, curvature: fx.mats.PMatKFAC })]);
/** Runs `use` on a matrix-free object whose passes fail midway, disposing it afterwards. */
async function onBadImplicit<T extends { dispose(): void }>(make: () => Promise<T>, use: (o: T) => Promise<unknown>): Promise<unknown> {
  const o = await make();
  try {
    return await use(o);
  } finally {
    o.dispose();
  }
}
const IMPLICIT_USES: Array<[string, (m: Loose, fx: Fixtures) => Promise<unknown>]> = [
  ['trace', (m) => m.trace()],
  ['mv', (m, fx) => m.mv(fx.v)],
  ['vTMv', (m, fx) => m.vTMv(fx.v)],
  ['solve', (m, fx) => m.solve(fx.v, { regul: 1, maxIter: 3 })],
  ['mmap', (m, fx) => m.mmap(fx.J)],
  ['mapTMmap', (m, fx) => m.mapTMmap(fx.J)],
];
for (const [method, use] of IMPLICIT_USES) {
  midway.push([`PMatImplicit.${method}: NaN in the second batch`, (fx) => onBadImplicit(() => FIM({ model: fx.model, loader: fx.bad.nanSecond, representation: PMatImplicit }), (m) => use(m, fx))]);
  midway.push([`PMatImplicit.${method}: aborted after the first batch`, (fx) => onBadImplicit(() => FIM({ model: fx.model, loader: fx.batches, representation: PMatImplicit, ...abortAfterFirstBatch() }), (m) => use(m, fx))]);
  if (method !== 'trace' && method !== 'mapTMmap') {
    midway.push([`PMatHessianImplicit.${method}: NaN in the second batch`, (fx) => onBadImplicit(() => Hessian({ model: fx.model, loader: fx.bad.nanSecond, loss: 'cross_entropy', representation: PMatImplicit }), (m) => use(m, fx))]);
  }
}
midway.push(['PMatImplicit.solve: the second product fails', (fx) => {
  // The first product (CG iteration 1) succeeds; the loader then yields a NaN batch.
  let calls = 0;
  const loader = {
    *[Symbol.iterator]() {
      calls++;
      yield fx.batches[0]!;
      if (calls > 1) yield fx.bad.nanSecond[1]!;
    },
  };
  return onBadImplicit(() => FIM({ model: fx.model, loader: loader as Loader, representation: PMatImplicit }), (m) => m.solve(fx.v, { regul: 1, maxIter: 5 }));
}]);
midway.push(['PMatHessianImplicit.solve: negative curvature in CG', async (fx) => {
  const ys = tf.randomNormal([3, 4], 0, 5, 'float32', 4);
  try {
    return await onBadImplicit(() => Hessian({ model: fx.model, loader: [{ xs: fx.batches[0]!.xs, ys }], loss: 'mse', representation: PMatImplicit }), (m) => m.solve(fx.v, { maxIter: 60 }));
  } finally {
    ys.dispose();
  }
}]);
midway.push(['PFMapImplicit.jvp: NaN in the second batch', (fx) => onBadImplicit(() => Jacobian({ model: fx.model, loader: fx.bad.nanSecond, representation: PFMapImplicit }), (J) => J.jvp(fx.v))]);
midway.push(['PFMapImplicit.vjp: NaN in the second batch', (fx) => onBadImplicit(() => Jacobian({ model: fx.model, loader: fx.bad.nanSecond, representation: PFMapImplicit }), async (J) => {
  const f = FVector.zeros(4, 5);
  try {
    return await J.vjp(f);
  } finally {
    f.dispose();
  }
})]);
midway.push(['PFMapImplicit.vjp: an FVector with fewer examples than the loader', (fx) => fx.Ji.vjp(fx.fWrong)]);
midway.push(['PFMapImplicit.jvp: aborted after the first batch', (fx) => onBadImplicit(() => Jacobian({ model: fx.model, loader: fx.batches, representation: PFMapImplicit, ...abortAfterFirstBatch() }), (J) => J.jvp(fx.v))]);
midway.push(['PMatEKFAC.updateDiag: NaN in the second batch', (fx) => onBadImplicit(() => FIM({ model: fx.model, loader: fx.batches, representation: PMatEKFAC }), (E) => E.updateDiag(fx.bad.nanSecond))]);
midway.push(['PMatMixed.updateDiag: NaN in the second batch', (fx) => onBadImplicit(() => FIM({ model: fx.model, loader: fx.batches, representation: PMatEKFACBlockDiag }), (E) => E.updateDiag(fx.bad.nanSecond))]);
midway.push(['PMatMixed.inv: the second group has no inv', (fx) =>
  onBadImplicit(() => FIM({ model: fx.model, loader: fx.batches, representation: PMatMixed.fromMapping({ default: PMatBlockDiag, byLayerId: { [fx.lc.layers[1]!.id]: PMatQuasiDiag } }) }), async (M) => M.inv({ regul: 0.1 })),
]);
midway.push(['PMatMixed.solve: a group is singular', (fx) =>
  onBadImplicit(() => FIM({ model: fx.model, loader: fx.single, representation: PMatMixed.fromMapping({ default: PMatDense }) }), async (M) => M.solve(fx.v)),
]);
midway.push(['PMatDense.solve(PFMapDense): singular', (fx) => fx.mats.PMatDense.solve(fx.J)]);
midway.push(['eigsh: aborted after the second product', (fx) => {
  const controller = new AbortController();
  return eigsh(fx.implicit, { k: 2, signal: controller.signal, onProgress: (p) => p.products === 2 && controller.abort('test') });
}]);
midway.push(['estimateTrace: NaN in the second batch of a product', (fx) =>
  onBadImplicit(() => FIM({ model: fx.model, loader: fx.bad.nanSecond, representation: PMatImplicit }), (M) => estimateTrace(M, { samples: 6 })),
]);
midway.push(['spectralDensity: the operator returns NaN on its third product', (fx) => {
  let calls = 0;
  return spectralDensity(asOperator((v) => (++calls === 3 ? PVector.adopt(fx.lc, tf.fill([fx.lc.numel()], NaN) as tf.Tensor1D) : fx.mats.PMatDense.mv(v)), fx.lc), { probes: 2, steps: 4 });
}]);
midway.push(['PMatQuasiDiag.solve: a singular unit', (fx) => onBadImplicit(async () => fx.mats.PMatQuasiDiag.scale(0), async (Q) => Q.solve(fx.v))]);
midway.push(['deserialize: a PMatMixed whose last part fails after the first ones are built', (fx) => {
  const bytes = serialize(fx.mats.PMatEKFACBlockDiag);
  const header = headerOf(bytes) as { state: { parts: Array<{ kind: string }> } };
  header.state.parts[header.state.parts.length - 1]!.kind = 'PMatUnknown';
  return deserialize(craft(header, payloadOf(bytes)), fx.model);
}]);
midway.push(['deserialize: an EKFAC with a bogus diagonalSource (checksum valid)', (fx) => {
  const bytes = serialize(fx.mats.PMatEKFAC);
  const header = headerOf(bytes) as { state: { meta: Record<string, unknown> } };
  header.state.meta.diagonalSource = 'bogus';
  return deserialize(craft(header, payloadOf(bytes)), fx.model);
}]);
midway.push(['deserialize: a corrupted payload', (fx) => {
  const bytes = serialize(fx.mats.PMatLowRank);
  return deserialize(bytes.slice(0, bytes.length - 8), fx.model);
}]);
// Overflow, labels and timer aborts: every representation throws without leaking (EKFAC leaked its first layers' eigenblocks).
/** A 5 → 7 → 4 MLP whose first layer's weights are 1e20 (layer inputs past 2^64: their squares overflow float32), released after `use`. */
async function withOverflowingModel(use: (m: tf.LayersModel) => Promise<unknown>): Promise<unknown> {
  const m = tf.sequential({ layers: [tf.layers.dense({ units: 7, inputShape: [5] }), tf.layers.dense({ units: 4 })] });
  tf.tidy(() => m.layers[0]!.setWeights([tf.fill([5, 7], 1e20), tf.zeros([7])]));
  try {
    return await use(m);
  } finally {
    m.dispose();
  }
}
for (const [name, representation] of Object.entries(REPS)) {
  midway.push([
    `FIM ${name}: a model whose statistics overflow float32`,
    (fx) => withOverflowingModel((model) => (name === 'PMatImplicit' ? onBadImplicit(() => FIM({ model, loader: fx.batches, representation }), (m: Loose) => m.trace()) : FIM({ model, loader: fx.batches, representation }))),
  ]);
}
for (const [name, representation] of Object.entries({ PMatDiag, PMatKFAC, PMatEKFAC }) as Array<[string, Representation<Loose>]>) {
  midway.push([`FIM ${name} (empirical): a label out of range in the second batch`, async (fx) => {
    const ys = tf.tensor1d([0, 7, 1]);
    try {
      return await FIM({ model: fx.model, loader: [fx.batches[0]!, { xs: fx.batches[1]!.xs, ys }], representation, variant: 'empirical', loss: 'cross_entropy', workers: 1 });
    } finally {
      ys.dispose();
    }
  }]);
  midway.push([`FIM ${name}: aborted by AbortSignal.timeout during the pass`, (fx) =>
    FIM({ model: fx.model, loader: Array.from({ length: 400 }, () => fx.batches[0]!), representation, workers: 1, signal: AbortSignal.timeout(2) }),
  ]);
}
midway.push(['Hessian PMatDiag: aborted by AbortSignal.timeout during the pass', (fx) =>
  Hessian({ model: fx.model, loader: Array.from({ length: 100 }, () => fx.batches[0]!), loss: 'cross_entropy', representation: PMatDiag, signal: AbortSignal.timeout(2) }),
]);

async function unchanged(what: string, run: () => unknown, throws: boolean): Promise<void> {
  const { numTensors, numBytes } = tf.memory();
  if (throws) {
    await assert.rejects(async () => run(), (e: Error) => {
      assert.ok(e instanceof NNGeometryError, `${what}: expected an NNGeometryError, got ${e.constructor.name}: ${e.message}`);
      return true;
    });
  } else {
    disposeResult(await run());
  }
  assert.equal(tf.memory().numTensors, numTensors, `${what}: numTensors`);
  assert.equal(tf.memory().numBytes, numBytes, `${what}: numBytes`);
}

for (const backend of ['cpu', 'wasm']) {
  describe(`leaks on ${backend}`, () => {
    let fx: Fixtures;
    before(async () => {
      await useTestBackend(backend);
      fx = await makeFixtures();
    });
    after(() => fx.dispose());
    for (const [name, run] of ops) test(name, () => unchanged(name, () => run(fx), false));
    for (const [name, run] of midway) test(`throws midway: ${name}`, () => unchanged(name, () => run(fx), true));
    test('the fixtures were built on this backend', () => assert.equal(tf.getBackend(), backend));
  });
}

