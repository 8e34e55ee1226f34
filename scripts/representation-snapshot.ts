/**
 * Computes every representation (Diag, Dense, BlockDiag, KFAC, EKFAC and its updated diagonal,
 * QuasiDiag, LowRank, the implicit operations, Mixed) on small seeded fixtures and writes their
 * float arrays to a JSON file; `--compare A.json B.json` prints the largest relative difference
 * between two snapshots, per entry and overall. Used to show that a refactoring changes no number
 * beyond float32 round-off: snapshot the tree before, snapshot it after, compare.
 *
 *   node --import tsx scripts/representation-snapshot.ts out/before.json
 *   node --import tsx scripts/representation-snapshot.ts --compare out/before.json out/after.json
 *
 * Fixtures: the tests' MLP over 20 batches of 3 (past HostSum's 16-batch transfer), the CNN over
 * 4 batches, the Conv2DTranspose model (separate bias blocks) over 3 batches, a Monte-Carlo KFAC
 * and EKFAC of the MLP, and EKFAC 'reduce' on the CNN. On each model also the per-example maps
 * and kernels: the Jacobian (PFMapDense) and PFMapImplicit's J v and Jᵀ f, the NTK (GramMatrix,
 * plain and centered), the per-example loss gradients and the self-influence through them
 * (diagonal and EKFAC curvature), and on the MLP PMatHessianImplicit's H v, vᵀHv and H Rᵀ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tf } from '../src/tf.js';
import {
  FIM,
  FIMMonteCarlo,
  FVector,
  GramMatrix,
  Hessian,
  Jacobian,
  LayerCollection,
  PFMapDense,
  PFMapImplicit,
  PMatHessianImplicit,
  PMatBlockDiag,
  PMatDense,
  PMatDiag,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatImplicit,
  PMatKFAC,
  PMatLowRank,
  PMatMixed,
  PMatQuasiDiag,
  PVector,
  selfInfluence,
  type PMat,
  type Representation,
} from '../src/index.js';
import { forEachLossGradientBatch } from '../src/influence/loss-gradients.js';
import { useTestBackend } from '../test/support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches } from '../test/support/models.js';
import { conv2dTransposeModel, disposeLayerBatches, layerBatches } from '../test/support/layer-models.js';

type Snapshot = Record<string, number[]>;

function arr(t: tf.Tensor): number[] {
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
}

/** The stored matrix's dense form, diagonal, trace, norms, and a solve of a fixed vector. */
function stored(out: Snapshot, name: string, m: PMat, v: PVector): void {
  out[`${name}.toTensor`] = arr(m.toTensor());
  out[`${name}.getDiag`] = arr(m.getDiag());
  out[`${name}.trace`] = [m.trace()];
  out[`${name}.norm`] = [m.norm('fro')];
  const mv = m.mv(v);
  out[`${name}.mv`] = arr(mv.data.clone());
  mv.dispose();
  out[`${name}.vTMv`] = [m.vTMv(v)];
  try {
    const s = m.solve(v, { regul: 1e-2 }) as PVector;
    out[`${name}.solve`] = arr(s.data.clone());
    s.dispose();
  } catch {
    // Representations without a solve are snapshotted without one.
  }
}

function fixedVector(lc: LayerCollection): PVector {
  const d = lc.numel();
  return PVector.adopt(lc, tf.tensor1d(Float32Array.from({ length: d }, (_, k) => Math.sin(1.3 * k + 0.7))));
}

async function snapshotModel(out: Snapshot, prefix: string, model: tf.LayersModel, loader: Array<{ xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor }>, quasiDiag: boolean): Promise<void> {
  const lc = LayerCollection.fromModel(model);
  const v = fixedVector(lc);
  const reps: Array<[string, Parameters<typeof FIM>[0]['representation']]> = [
    ['Diag', PMatDiag],
    ['Dense', PMatDense],
    ['BlockDiag', PMatBlockDiag],
    ['KFAC', PMatKFAC],
    ['KFACreduce', PMatKFAC.with({ kfacType: 'reduce' })],
    ['LowRank', PMatLowRank],
    ['EKFACBlockDiag', PMatEKFACBlockDiag],
    ['Mixed', PMatMixed.fromMapping({ default: PMatDiag, byLayerId: { [lc.layers[0]!.id]: PMatEKFAC }, byLayerKind: { dense: PMatBlockDiag } })],
    ...(quasiDiag ? ([['QuasiDiag', PMatQuasiDiag]] as Array<[string, Parameters<typeof FIM>[0]['representation']]>) : []),
  ];
  for (const [name, representation] of reps) {
    const m = (await FIM({ model, loader, representation })) as PMat;
    stored(out, `${prefix}.${name}`, m, v);
    m.dispose();
  }
  for (const [name, rep] of [['EKFAC', PMatEKFAC], ['EKFACreduce', PMatEKFAC.with({ kfacType: 'reduce' })]] as const) {
    const e = (await FIM({ model, loader, representation: rep })) as PMatEKFAC;
    stored(out, `${prefix}.${name}`, e, v);
    await e.updateDiag(loader);
    stored(out, `${prefix}.${name}.updated`, e, v);
    e.eigenBlocks().forEach((b, i) => (out[`${prefix}.${name}.updated.d${i}`] = Array.from(b.diagonal)));
    e.dispose();
  }
  // The implicit operations, and a PFMapDense's products through the implicit and dense forms.
  const implicit = await FIM({ model, loader, representation: PMatImplicit });
  out[`${prefix}.Implicit.trace`] = [await implicit.trace()];
  const mv = await implicit.mv(v);
  out[`${prefix}.Implicit.mv`] = arr(mv.data.clone());
  mv.dispose();
  out[`${prefix}.Implicit.vTMv`] = [await implicit.vTMv(v)];
  const d = lc.numel();
  const map = new PFMapDense(lc, tf.tensor3d(Float32Array.from({ length: 2 * 3 * d }, (_, k) => Math.cos(0.37 * k)), [2, 3, d]));
  const mm = await implicit.mmap(map);
  out[`${prefix}.Implicit.mmap`] = arr(mm.data.clone());
  mm.dispose();
  out[`${prefix}.Implicit.mapTMmap.diag`] = arr(await implicit.mapTMmap(map, { reduction: 'diag' }));
  out[`${prefix}.Implicit.mapTMmap.sum`] = arr(await implicit.mapTMmap(map));
  const solved = await implicit.solve(v, { regul: 1e-1, maxIter: 5 });
  out[`${prefix}.Implicit.solve`] = arr(solved.data.clone());
  solved.dispose();
  map.dispose();
  implicit.dispose();
  v.dispose();
  await snapshotMaps(out, prefix, model, loader);
}

/** The per-example maps and kernels, the loss gradients and the influence through them. */
async function snapshotMaps(out: Snapshot, prefix: string, model: tf.LayersModel, loader: Array<{ xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor }>): Promise<void> {
  const lc = LayerCollection.fromModel(model);
  const v = fixedVector(lc);
  const J = await Jacobian({ model, loader });
  out[`${prefix}.Jacobian`] = arr(J.data.clone());
  const [o, n] = J.data.shape;
  J.dispose();
  const Ji = await Jacobian({ model, loader, representation: PFMapImplicit });
  const jv = await Ji.jvp(v);
  out[`${prefix}.PFMapImplicit.jvp`] = arr(jv.data.clone());
  jv.dispose();
  const f = FVector.adopt(tf.tensor2d(Float32Array.from({ length: o * n }, (_, k) => Math.sin(0.53 * k + 0.2)), [o, n]));
  const jtf = await Ji.vjp(f);
  out[`${prefix}.PFMapImplicit.vjp`] = arr(jtf.data.clone());
  jtf.dispose();
  f.dispose();
  Ji.dispose();
  for (const centering of [false, true]) {
    const K = await GramMatrix({ model, loader, centering });
    out[`${prefix}.GramMatrix${centering ? '.centered' : ''}`] = Array.from(K.values());
    K.dispose();
  }
  const grads: number[] = [];
  const spec = { model, layerCollection: lc, variant: 'classif_logits' as const, sigma2: 1, loaderName: 'loader', where: 'snapshot' };
  await forEachLossGradientBatch(spec, loader, (g) => void grads.push(...g.dataSync()));
  out[`${prefix}.lossGradients`] = grads;
  for (const [name, representation] of [['Diag', PMatDiag], ['EKFAC', PMatEKFAC]] as const) {
    out[`${prefix}.selfInfluence.${name}`] = arr(await selfInfluence({ model, trainLoader: loader, representation, damping: 1e-2 }));
  }
  v.dispose();
}

/** PMatHessianImplicit's products (H v, vᵀHv, H Rᵀ for two rows R). */
async function snapshotHessian(out: Snapshot, prefix: string, model: tf.LayersModel, loader: Array<{ xs: tf.Tensor | tf.Tensor[]; ys: tf.Tensor }>): Promise<void> {
  const lc = LayerCollection.fromModel(model);
  const v = fixedVector(lc);
  const H = await Hessian({ model, loader, loss: 'cross_entropy', representation: PMatHessianImplicit });
  const hv = await H.mv(v);
  out[`${prefix}.HessianImplicit.mv`] = arr(hv.data.clone());
  hv.dispose();
  out[`${prefix}.HessianImplicit.vTMv`] = [await H.vTMv(v)];
  const d = lc.numel();
  const map = new PFMapDense(lc, tf.tensor3d(Float32Array.from({ length: 2 * d }, (_, k) => Math.cos(0.37 * k)), [1, 2, d]));
  const hm = await H.mmap(map);
  out[`${prefix}.HessianImplicit.mmap`] = arr(hm.data.clone());
  hm.dispose();
  map.dispose();
  H.dispose();
  v.dispose();
}

async function snapshot(file: string): Promise<void> {
  await useTestBackend();
  const out: Snapshot = {};
  const before = tf.memory().numTensors;

  const m1 = mlp();
  const b1 = randomBatches(m1, 60, 3, 11);
  await snapshotModel(out, 'mlp20', m1, b1, true);
  await snapshotHessian(out, 'mlp20', m1, b1);
  const monteCarlo: Array<[string, Representation<PMat>]> = [['KFAC', PMatKFAC], ['Diag', PMatDiag], ['QuasiDiag', PMatQuasiDiag], ['Dense', PMatDense]];
  for (const [name, representation] of monteCarlo) {
    const m = await FIMMonteCarlo({ model: m1, loader: b1, representation, trials: 2, seed: 5 });
    out[`mlp20.MC.${name}.toTensor`] = arr(m.toTensor());
    m.dispose();
  }
  disposeBatches(b1);
  m1.dispose();

  const m2 = cnn();
  const b2 = randomBatches(m2, 8, 2, 13);
  await snapshotModel(out, 'cnn4', m2, b2, true);
  disposeBatches(b2);
  m2.dispose();

  const m3 = conv2dTransposeModel();
  const b3 = layerBatches(m3, 6, 2, 17);
  await snapshotModel(out, 'convT3', m3, b3, false);
  disposeLayerBatches(b3);
  m3.dispose();

  const leaked = tf.memory().numTensors - before;
  writeFileSync(file, JSON.stringify(out));
  console.log(`${Object.keys(out).length} entries written to ${file}; tensors left: ${leaked}`);
}

/** Largest |a − b| / max(|b|_∞ of the entry, tiny) per entry. */
function compare(a: string, b: string): void {
  const x = JSON.parse(readFileSync(a, 'utf8')) as Snapshot;
  const y = JSON.parse(readFileSync(b, 'utf8')) as Snapshot;
  let worst = 0;
  let worstName = '';
  const missing = [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => !(k in x) || !(k in y));
  let identical = 0;
  for (const k of Object.keys(x)) {
    if (!(k in y)) continue;
    const u = x[k]!;
    const w = y[k]!;
    if (u.length !== w.length) throw new Error(`${k}: ${u.length} vs ${w.length} values`);
    const scale = Math.max(1e-30, ...w.map(Math.abs));
    let diff = 0;
    for (let i = 0; i < u.length; i++) diff = Math.max(diff, Math.abs(u[i]! - w[i]!));
    const rel = diff / scale;
    if (rel === 0) identical++;
    if (rel > worst) {
      worst = rel;
      worstName = k;
    }
  }
  console.log(`${Object.keys(x).length} entries, ${identical} bit-identical; missing in one: ${missing.length ? missing.join(', ') : 'none'}`);
  console.log(`largest relative difference (max |a−b| / max |b| per entry): ${worst}${worstName ? ` (${worstName})` : ''}`);
}

const args = process.argv.slice(2);
if (args[0] === '--compare') compare(args[1]!, args[2]!);
else await snapshot(args[0] ?? 'representation-snapshot.json');
