/**
 * Kronecker factors of Conv2DTranspose (kernel [kh, kw, cout, cin]: rows from the output-gradient
 * patches, columns from the inputs; the bias its own exact block), against brute force:
 * - the reference: output gradients at the pre-activation by tf.grad through tfjs-layers' own
 *   tail, patches by JS loops with tfjs's transpose geometry (checked against autodiff kernel
 *   gradients first), factors R (patches) and C (inputs); KFAC's kernel block = R ⊗ C for
 *   'expand' and 'reduce', its bias block = the exact bias block of the brute-force dense FIM,
 *   strides 1 and 2, 'same' and 'valid', with and without bias (rel. 1e-4);
 * - inputs and gradient patches constant over the S input positions: exact kernel block =
 *   S·(R ⊗ C) ('expand') = R ⊗ C ('reduce') (rel. 1e-4);
 * - every KFAC method against its own toTensor() (rel. 1e-4);
 * - EKFAC: equal to KFAC before updateDiag, the exact projection after it (rel. 1e-4);
 * - save/load round trips exactly, mergePartial of two halves = one pass, 2 worker threads = 1
 *   (rel. 1e-4);
 * - no tensor leaks; QuasiDiag refuses the layer with the way out.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  FIM,
  LayerCollection,
  PMatBlockDiag,
  PMatDense,
  PMatEKFAC,
  PMatEKFACBlockDiag,
  PMatKFAC,
  PMatQuasiDiag,
  PVector,
  UnsupportedLayerError,
  deserialize,
  mergePartial,
  serialize,
  terminateWorkers,
} from '../../src/index.js';
import { cholesky, choleskySolve } from '../../src/linalg/index.js';
import { useTestBackend } from '../support/backend.js';
import { bruteForceFisher, flatGradient, host, relativeError } from '../support/reference.js';

const TOL = 1e-4;

before(async () => {
  await useTestBackend();
});

const init = (seed: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed });

interface Geometry {
  strides: number;
  padding: 'same' | 'valid';
  kernel: number;
  bias: boolean;
  /** Input height = width. */
  size: number;
}

const name = (g: Geometry) => `stride ${g.strides}, '${g.padding}', kernel ${g.kernel}, ${g.bias ? 'bias' : 'no bias'}, input ${g.size}×${g.size}`;

/**
 * Conv2DTranspose (linear: its output is the pre-activation) → tanh → Conv2D → flatten → dense(2):
 * the layer under test is followed by other layers, and the reference can split the model there.
 */
function transposeModel(g: Geometry, seed: number): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.conv2dTranspose({ inputShape: [g.size, g.size, 2], filters: 2, kernelSize: g.kernel, strides: g.strides, padding: g.padding, useBias: g.bias, kernelInitializer: init(seed), biasInitializer: init(seed + 1) }));
  m.add(tf.layers.activation({ activation: 'tanh' }));
  m.add(tf.layers.conv2d({ filters: 2, kernelSize: 2, strides: 2, kernelInitializer: init(seed + 2), biasInitializer: init(seed + 3) }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 2, kernelInitializer: init(seed + 4), biasInitializer: init(seed + 5) }));
  return m;
}

/** The transpose layer alone. */
const firstLayer = (model: tf.LayersModel) => LayerCollection.fromLayers(model, [LayerCollection.fromModel(model).ids()[0]!]);

/**
 * Patches of the output gradient g [Hout, Wout, co] for each input position p = (i, j):
 * P_p[a, b, o] = g[i·s + a − top, j·s + b − left, o] (0 outside), the conv2d that maps the output
 * space onto the input grid; 'same' pads max(k − s, 0) in all, floor of half on top/left (tfjs).
 */
function referencePatches(g: Float64Array, hOut: number, wOut: number, co: number, geo: Geometry): Float64Array[] {
  const pad = geo.padding === 'same' ? Math.floor(Math.max(geo.kernel - geo.strides, 0) / 2) : 0;
  const k = geo.kernel;
  const out: Float64Array[] = [];
  for (let i = 0; i < geo.size; i++) {
    for (let j = 0; j < geo.size; j++) {
      const p = new Float64Array(k * k * co);
      for (let a = 0; a < k; a++) {
        for (let b = 0; b < k; b++) {
          const r = i * geo.strides + a - pad;
          const c = j * geo.strides + b - pad;
          if (r < 0 || r >= hOut || c < 0 || c >= wOut) continue;
          for (let o = 0; o < co; o++) p[(a * k + b) * co + o] = g[(r * wOut + c) * co + o]!;
        }
      }
      out.push(p);
    }
  }
  return out;
}

/** Per example i and output o: the patches P_io [S][K'] and the inputs x_i [S][ci], by brute force. */
function referencePerExample(model: tf.Sequential, xs: tf.Tensor4D, geo: Geometry): Array<{ x: Float64Array[]; patches: Float64Array[][] }> {
  const [layer, ...tail] = model.layers;
  const n = xs.shape[0];
  const ci = xs.shape[3];
  return Array.from({ length: n }, (_, i) => {
    const xi = tf.slice(xs, [i], [1]);
    const s = layer!.apply(xi) as tf.Tensor4D; // linear activation: the pre-activation
    const [, hOut, wOut, co] = s.shape;
    const outputs = tf.tidy(() => tail.reduce((h, l) => l.apply(h) as tf.Tensor, s as tf.Tensor).size);
    const patches = Array.from({ length: outputs }, (_, o) => {
      const g = tf.grad((t: tf.Tensor) => tail.reduce((h, l) => l.apply(h) as tf.Tensor, t).reshape([-1]).gather([o]).sum())(s);
      const values = host(g);
      return referencePatches(values, hOut, wOut, co, geo);
    });
    const xv = host(xi.reshape([-1]));
    s.dispose();
    xi.dispose();
    return { x: Array.from({ length: geo.size * geo.size }, (_, p) => xv.slice(p * ci, (p + 1) * ci)), patches };
  });
}

/** Σ_v u uᵀ accumulated into m (n×n). */
function addOuter(m: Float64Array, u: Float64Array, scale = 1): void {
  const n = u.length;
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) m[a * n + b]! += scale * u[a]! * u[b]!;
}

function sumOf(vs: Float64Array[]): Float64Array {
  const out = new Float64Array(vs[0]!.length);
  for (const v of vs) v.forEach((x, j) => (out[j]! += x));
  return out;
}

/** (R ⊗ C) in the [K', ci] row-major layout: entry (r·ci + c, r'·ci + c') = R[r, r'] C[c, c']. */
function kron(r: Float64Array, kr: number, c: Float64Array, kc: number): Float64Array {
  const n = kr * kc;
  const out = new Float64Array(n * n);
  for (let a = 0; a < kr; a++) for (let b = 0; b < kc; b++) for (let a2 = 0; a2 < kr; a2++) for (let b2 = 0; b2 < kc; b2++) out[(a * kc + b) * n + a2 * kc + b2] = r[a * kr + a2]! * c[b * kc + b2]!;
  return out;
}

/** The [from, to) × [from, to) sub-block of a d×d matrix. */
function subBlock(m: Float64Array, d: number, from: number, to: number): Float64Array {
  const n = to - from;
  return Float64Array.from({ length: n * n }, (_, k) => m[(from + Math.floor(k / n)) * d + from + (k % n)]!);
}

/** The reference factors R (K'×K') and C (ci×ci) for a convention (regression: f̃_o = f_o). */
function referenceFactors(data: ReturnType<typeof referencePerExample>, type: 'expand' | 'reduce'): { r: Float64Array; c: Float64Array; kr: number; kc: number } {
  const kr = data[0]!.patches[0]![0]!.length;
  const kc = data[0]!.x[0]!.length;
  const s = data[0]!.x.length;
  const n = data.length;
  const r = new Float64Array(kr * kr);
  const c = new Float64Array(kc * kc);
  for (const { x, patches } of data) {
    if (type === 'expand') x.forEach((xp) => addOuter(c, xp, 1 / n));
    else addOuter(c, sumOf(x).map((v) => v / s), 1 / n);
    for (const po of patches) {
      if (type === 'expand') po.forEach((pp) => addOuter(r, pp, 1 / (n * s)));
      else addOuter(r, sumOf(po), 1 / n);
    }
  }
  return { r, c, kr, kc };
}

const GEOMETRIES: Geometry[] = [
  { strides: 1, padding: 'same', kernel: 3, bias: true, size: 3 },
  { strides: 1, padding: 'valid', kernel: 2, bias: false, size: 3 },
  { strides: 2, padding: 'same', kernel: 3, bias: true, size: 2 },
  { strides: 2, padding: 'valid', kernel: 3, bias: false, size: 2 },
  { strides: 2, padding: 'same', kernel: 3, bias: false, size: 2 },
  { strides: 1, padding: 'valid', kernel: 2, bias: true, size: 3 },
];

test('the reference patches reproduce the autodiff kernel gradient Σ_p P_pᵀ x_p (rel. 1e-4)', async (t) => {
  let worst = 0;
  for (const [k, geo] of GEOMETRIES.entries()) {
    const model = transposeModel(geo, 10 + 10 * k);
    const lc = firstLayer(model);
    const xs = tf.randomNormal([2, geo.size, geo.size, 2], 0, 1, 'float32', 3 + k) as tf.Tensor4D;
    const data = referencePerExample(model, xs, geo);
    const kr = data[0]!.patches[0]![0]!.length;
    for (let i = 0; i < 2; i++) {
      for (let o = 0; o < 2; o++) {
        const grad = flatGradient(lc, () => tf.tidy(() => (model.apply(tf.slice(xs, [i], [1])) as tf.Tensor).reshape([-1]).gather([o]).sum() as tf.Scalar));
        const ours = new Float64Array(kr * 2);
        data[i]!.x.forEach((xp, p) => {
          const pp = data[i]!.patches[o]![p]!;
          for (let r = 0; r < kr; r++) for (let c = 0; c < 2; c++) ours[r * 2 + c]! += pp[r]! * xp[c]!;
        });
        const err = relativeError(ours, grad.subarray(0, kr * 2));
        worst = Math.max(worst, err);
        assert.ok(err < TOL, `${name(geo)}, example ${i}, output ${o}: ${err}`);
      }
    }
    xs.dispose();
    model.dispose();
  }
  t.diagnostic(`max relative error ${worst.toExponential(2)}`);
});

test("KFAC of Conv2DTranspose: kernel block = R ⊗ C of the brute-force reference ('expand', 'reduce'), bias block = the exact bias block (rel. 1e-4)", async (t) => {
  const worst = { kernel: 0, bias: 0 };
  for (const [k, geo] of GEOMETRIES.entries()) {
    const model = transposeModel(geo, 10 + 10 * k);
    const lc = firstLayer(model);
    const entry = lc.layers[0]!;
    const xs = tf.randomNormal([4, geo.size, geo.size, 2], 0, 1, 'float32', 3 + k) as tf.Tensor4D;
    const data = referencePerExample(model, xs, geo);
    const exact = bruteForceFisher(model, lc, [xs], 'regression');
    const d = lc.numel();
    for (const type of ['expand', 'reduce'] as const) {
      const kfac = await FIM({ model, loader: [xs], variant: 'regression', representation: PMatKFAC.with({ kfacType: type }), layerCollection: lc });
      const ours = host(kfac.toTensor());
      const ref = referenceFactors(data, type);
      const kernel = ref.kr * ref.kc;
      const eKernel = relativeError(subBlock(ours, d, 0, kernel), kron(ref.r, ref.kr, ref.c, ref.kc));
      worst.kernel = Math.max(worst.kernel, eKernel);
      assert.ok(eKernel < TOL, `${name(geo)} ${type}: kernel block ${eKernel}`);
      const f = kfac.layerFactors(entry.id);
      assert.equal(f.k, ref.kr, 'rows of the kernel layout = kh·kw·cout');
      assert.equal(f.c, 2, 'columns = cin');
      if (geo.bias) {
        const eBias = relativeError(subBlock(ours, d, kernel, d), subBlock(exact, d, kernel, d));
        worst.bias = Math.max(worst.bias, eBias);
        assert.ok(eBias < TOL, `${name(geo)} ${type}: bias block ${eBias}`);
        // Two diagonal blocks: no kernel–bias cross term.
        for (let r = 0; r < kernel; r++) for (let c = kernel; c < d; c++) assert.equal(ours[r * d + c], 0);
      } else {
        assert.equal(f.bias, undefined);
      }
      kfac.dispose();
    }
    xs.dispose();
    model.dispose();
  }
  t.diagnostic(`max relative error: kernel ${worst.kernel.toExponential(2)}, bias ${worst.bias.toExponential(2)}`);
});

test('one example, one output, one input position: KFAC equals the exact (brute-force) block (rel. 1e-4)', async (t) => {
  let worst = 0;
  for (const [k, geo] of GEOMETRIES.entries()) {
    const g1 = { ...geo, size: 1 };
    const m = tf.sequential();
    m.add(tf.layers.conv2dTranspose({ inputShape: [1, 1, 2], filters: 2, kernelSize: g1.kernel, strides: g1.strides, padding: g1.padding, useBias: g1.bias, kernelInitializer: init(200 + k), biasInitializer: init(300 + k) }));
    m.add(tf.layers.activation({ activation: 'tanh' }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 1, kernelInitializer: init(400 + k), biasInitializer: init(500 + k) }));
    const lc = firstLayer(m);
    const xs = tf.randomNormal([1, 1, 1, 2], 0, 1, 'float32', 7 + k);
    const exact = bruteForceFisher(m, lc, [xs], 'regression');
    for (const type of ['expand', 'reduce'] as const) {
      const kfac = await FIM({ model: m, loader: [xs], variant: 'regression', representation: PMatKFAC.with({ kfacType: type }), layerCollection: lc });
      const err = relativeError(host(kfac.toTensor()).map((v, j) => (isCross(j, lc.numel(), lc.numel() - (g1.bias ? 2 : 0)) ? exact[j]! : v)), exact);
      worst = Math.max(worst, err);
      assert.ok(err < TOL, `${name(g1)} ${type}: ${err}`);
      kfac.dispose();
    }
    xs.dispose();
    m.dispose();
  }
  t.diagnostic(`max relative error ${worst.toExponential(2)}`);
});

/** Whether entry j of a d×d matrix is a kernel–bias cross term (KFAC has none by design). */
function isCross(j: number, d: number, kernel: number): boolean {
  const [r, c] = [Math.floor(j / d), j % d];
  return (r < kernel) !== (c < kernel);
}

test("constant over positions: exact kernel block = S·(R ⊗ C) ('expand') = R ⊗ C ('reduce'); bias block exact (rel. 1e-4)", async (t) => {
  const worst = { kernel: 0, bias: 0 };
  // Identical examples, linear Conv2DTranspose → global average pooling → dense: the output gradient is constant over
  // the output positions, so the gradient patches are constant over the input positions wherever
  // the patches need no zero padding ('valid'; 'same' with kernel = stride).
  const cases: Geometry[] = [
    { strides: 1, padding: 'valid', kernel: 2, bias: true, size: 3 },
    { strides: 2, padding: 'same', kernel: 2, bias: true, size: 2 },
    { strides: 2, padding: 'valid', kernel: 3, bias: false, size: 2 },
  ];
  for (const [k, geo] of cases.entries()) {
    const m = tf.sequential();
    m.add(tf.layers.conv2dTranspose({ inputShape: [geo.size, geo.size, 2], filters: 3, kernelSize: geo.kernel, strides: geo.strides, padding: geo.padding, useBias: geo.bias, kernelInitializer: init(600 + k), biasInitializer: init(700 + k) }));
    m.add(tf.layers.globalAveragePooling2d({}));
    m.add(tf.layers.dense({ units: 3, kernelInitializer: init(800 + k), biasInitializer: init(900 + k) }));
    const lc = firstLayer(m);
    const s = geo.size * geo.size;
    // The same input for every example, constant over the positions.
    const one = tf.randomNormal([1, 1, 1, 2], 0, 1, 'float32', 11 + k);
    const xs = tf.tile(one, [3, geo.size, geo.size, 1]);
    one.dispose();
    const dense = await FIM({ model: m, loader: [xs], representation: PMatDense, layerCollection: lc });
    const exact = dense.values();
    const d = lc.numel();
    const kernel = geo.kernel * geo.kernel * 3 * 2;
    for (const [type, scale] of [['expand', s], ['reduce', 1]] as const) {
      const kfac = await FIM({ model: m, loader: [xs], representation: PMatKFAC.with({ kfacType: type }), layerCollection: lc });
      const ours = host(kfac.toTensor());
      const e = relativeError(subBlock(ours, d, 0, kernel).map((v) => scale * v), subBlock(exact, d, 0, kernel));
      worst.kernel = Math.max(worst.kernel, e);
      assert.ok(e < TOL, `${name(geo)} ${type}: kernel ${e}`);
      if (geo.bias) {
        const eb = relativeError(subBlock(ours, d, kernel, d), subBlock(exact, d, kernel, d));
        worst.bias = Math.max(worst.bias, eb);
        assert.ok(eb < TOL, `${name(geo)} ${type}: bias ${eb}`);
      }
      kfac.dispose();
    }
    [dense, xs].forEach((o) => o.dispose());
    m.dispose();
  }
  t.diagnostic(`max relative error: kernel ${worst.kernel.toExponential(2)}, bias ${worst.bias.toExponential(2)}`);
});

/** A model with a Conv2DTranspose (bias) and a Dense layer: both kinds of Kronecker block. */
async function mixedKfac(kfacType: 'expand' | 'reduce' = 'expand') {
  const model = transposeModel({ strides: 2, padding: 'same', kernel: 3, bias: true, size: 2 }, 40);
  const lc = LayerCollection.fromLayers(model, [LayerCollection.fromModel(model).ids()[0]!, LayerCollection.fromModel(model).ids()[2]!]);
  const xs = tf.randomNormal([6, 2, 2, 2], 0, 1, 'float32', 21) as tf.Tensor4D;
  const kfac = await FIM({ model, loader: [xs], representation: PMatKFAC.with({ kfacType }), layerCollection: lc });
  return { model, lc, xs, kfac };
}

/** (M + regul·I)⁻¹ V for V with `cols` columns, float64 Cholesky. */
function denseSolve(m: Float64Array, d: number, regul: number, v: Float64Array, cols = 1): Float64Array {
  const a = m.map((x, j) => (Math.floor(j / d) === j % d ? x + regul : x));
  return choleskySolve(cholesky(a, d), d, v, cols);
}

test('KFAC methods with a Conv2DTranspose block agree with its own toTensor() (rel. 1e-4)', async (t) => {
  for (const type of ['expand', 'reduce'] as const) {
    const { model, lc, xs, kfac } = await mixedKfac(type);
    const d = lc.numel();
    const m = host(kfac.toTensor());
    const v = PVector.random(lc, 31);
    const vh = host(v.data.clone());
    const mvRef = new Float64Array(d);
    for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) mvRef[r]! += m[r * d + c]! * vh[c]!;
    const mv = kfac.mv(v);
    const checks: Array<[string, number]> = [];
    checks.push(['mv', relativeError(host(mv.data.clone()), mvRef)]);
    checks.push(['vTMv', Math.abs(kfac.vTMv(v) - vh.reduce((a, x, j) => a + x * mvRef[j]!, 0)) / Math.abs(vh.reduce((a, x, j) => a + x * mvRef[j]!, 0))]);
    let tr = 0;
    for (let j = 0; j < d; j++) tr += m[j * d + j]!;
    checks.push(['trace', Math.abs(kfac.trace() - tr) / tr]);
    const fro = Math.sqrt(m.reduce((a, x) => a + x * x, 0));
    checks.push(['frobenius', Math.abs(kfac.norm('fro') - fro) / fro]);
    const regul = (0.1 * tr) / d;
    const solved = kfac.solve(v, { regul });
    checks.push(['solve', relativeError(host(solved.data.clone()), denseSolve(m, d, regul, vh))]);
    const inv = kfac.inv({ regul });
    const eye = Float64Array.from({ length: d * d }, (_, j) => (Math.floor(j / d) === j % d ? 1 : 0));
    checks.push(['inv', relativeError(host(inv.toTensor()), denseSolve(m, d, regul, eye, d))]);
    const chol = cholesky(m.map((x, j) => (Math.floor(j / d) === j % d ? x + regul : x)), d);
    let logdet = 0;
    for (let j = 0; j < d; j++) logdet += 2 * Math.log(chol[j * d + j]!);
    checks.push(['logdet', Math.abs(kfac.logdet({ regul }) - logdet) / Math.abs(logdet)]);
    const diag = host(kfac.getDiag());
    checks.push(['getDiag', relativeError(diag, Float64Array.from({ length: d }, (_, j) => m[j * d + j]!))]);
    const sq = kfac.pow(2);
    const m2 = new Float64Array(d * d);
    for (let r = 0; r < d; r++) for (let k = 0; k < d; k++) for (let c = 0; c < d; c++) m2[r * d + c]! += m[r * d + k]! * m[k * d + c]!;
    checks.push(['pow(2)', relativeError(host(sq.toTensor()), m2)]);
    for (const [what, err] of checks) assert.ok(err < TOL, `${type} ${what}: ${err}`);
    t.diagnostic(`${type}: ${checks.map(([what, err]) => `${what} ${err.toExponential(2)}`).join(', ')}`);
    [mv, solved, inv, sq, v, kfac, xs].forEach((o) => o.dispose());
    model.dispose();
  }
});

test("KFAC's π-damped solve damps a separate bias block exactly: (B + λI)⁻¹ on the bias slice (rel. 1e-4)", async (t) => {
  const { model, lc, xs, kfac } = await mixedKfac();
  const e = lc.layers[0]!;
  const f = kfac.layerFactors(e.id);
  const cb = Math.round(Math.sqrt(f.bias!.length));
  const v = PVector.random(lc, 32);
  const vh = host(v.data.clone());
  const regul = 0.05;
  const solved = kfac.solve(v, { regul, damping: 'pi' });
  const at = e.offset + f.k * f.c;
  const ref = denseSolve(f.bias!, cb, regul, vh.slice(at, at + cb));
  const err = relativeError(host(solved.data.clone()).slice(at, at + cb), ref);
  assert.ok(err < TOL, `bias slice: ${err}`);
  t.diagnostic(`relative error ${err.toExponential(2)}`);
  [solved, v, kfac, xs].forEach((o) => o.dispose());
  model.dispose();
});

test('EKFAC with a Conv2DTranspose: equals KFAC before updateDiag; after it, the exact block projected on the eigenbasis (rel. 1e-4)', async (t) => {
  const model = transposeModel({ strides: 1, padding: 'same', kernel: 3, bias: true, size: 3 }, 50);
  const lc = LayerCollection.fromLayers(model, [LayerCollection.fromModel(model).ids()[0]!, LayerCollection.fromModel(model).ids()[2]!]);
  const xs = tf.randomNormal([5, 3, 3, 2], 0, 1, 'float32', 22);
  const kfac = await FIM({ model, loader: [xs], representation: PMatKFAC, layerCollection: lc });
  const ekfac = await FIM({ model, loader: [xs], representation: PMatEKFAC, layerCollection: lc });
  const e0 = relativeError(host(ekfac.toTensor()), host(kfac.toTensor()));
  assert.ok(e0 < TOL, `EKFAC before updateDiag vs KFAC: ${e0}`);
  const errs = [`before updateDiag vs KFAC ${e0.toExponential(2)}`];
  assert.deepEqual(ekfac.eigenBlocks().map((b) => `${b.id}:${b.part}:${b.k}x${b.c}`), [`${lc.layers[0]!.id}:weights:18x2`, `${lc.layers[0]!.id}:bias:2x1`, `${lc.layers[1]!.id}:weights:3x2`]);
  const bd = await FIM({ model, loader: [xs], representation: PMatBlockDiag, layerCollection: lc });
  const n0 = tf.memory().numTensors;
  await ekfac.updateDiag([xs]);
  assert.equal(tf.memory().numTensors, n0, 'updateDiag keeps the tensor count');
  const full = host(bd.toTensor());
  const d = lc.numel();
  for (const blk of ekfac.eigenBlocks()) {
    const n = blk.k * blk.c;
    const projected = new Float64Array(n);
    for (let p = 0; p < blk.k; p++) {
      for (let q = 0; q < blk.c; q++) {
        // column (p, q) of U_A ⊗ U_G, placed at the block's offset
        const u = new Float64Array(n);
        for (let r = 0; r < blk.k; r++) for (let s = 0; s < blk.c; s++) u[r * blk.c + s] = blk.uA[r * blk.k + p]! * blk.uG[s * blk.c + q]!;
        let acc = 0;
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) acc += u[i]! * full[(blk.offset + i) * d + blk.offset + j]! * u[j]!;
        projected[p * blk.c + q] = acc;
      }
    }
    const err = relativeError(blk.diagonal, projected);
    assert.ok(err < TOL, `${blk.id} (${blk.part}): ${err}`);
    errs.push(`${blk.part} ${blk.k}×${blk.c} ${err.toExponential(2)}`);
  }
  t.diagnostic(errs.join(', '));
  [kfac, ekfac, bd, xs].forEach((o) => o.dispose());
  model.dispose();
});

test('save/load round trips KFAC and EKFAC with a separate bias block exactly; mergePartial of two halves = one pass (rel. 1e-4)', async (t) => {
  const { model, lc, xs, kfac } = await mixedKfac();
  const back = deserialize(serialize(kfac), model) as PMatKFAC;
  for (const e of lc.layers) {
    const [f, g] = [kfac.layerFactors(e.id), back.layerFactors(e.id)];
    assert.deepEqual([g.k, g.c, Array.from(g.a), Array.from(g.g), g.bias && Array.from(g.bias)], [f.k, f.c, Array.from(f.a), Array.from(f.g), f.bias && Array.from(f.bias)]);
  }
  assert.equal(relativeError(host(back.toTensor()), host(kfac.toTensor())), 0, 'KFAC toTensor after load');
  const ekfac = await FIM({ model, loader: [xs], representation: PMatEKFAC, layerCollection: lc });
  await ekfac.updateDiag([xs]);
  const eback = deserialize(serialize(ekfac), model) as PMatEKFAC;
  const flat = (m: PMatEKFAC) => m.eigenBlocks().map((b) => [b.id, b.part, b.offset, Array.from(b.uA), Array.from(b.uG), Array.from(b.diagonal)]);
  assert.deepEqual(flat(eback), flat(ekfac));
  assert.equal(relativeError(host(eback.toTensor()), host(ekfac.toTensor())), 0, 'EKFAC toTensor after load');
  const [x1, x2] = [tf.slice(xs, [0], [2]), tf.slice(xs, [2], [4])];
  const p1 = await FIM({ model, loader: [x1], representation: PMatKFAC, layerCollection: lc });
  const p2 = await FIM({ model, loader: [x2], representation: PMatKFAC, layerCollection: lc });
  const merged = mergePartial([{ matrix: p1, examples: 2 }, { matrix: p2, examples: 4 }]);
  const err = relativeError(host(merged.toTensor()), host(kfac.toTensor()));
  assert.ok(err < TOL, `merged: ${err}`);
  t.diagnostic(`merged vs one pass ${err.toExponential(2)}`);
  [back, ekfac, eback, p1, p2, merged, x1, x2, kfac, xs].forEach((o) => o.dispose());
  model.dispose();
});

test('no tensor leaks: KFAC/EKFAC computation, methods, updateDiag, persistence and the QuasiDiag refusal with a Conv2DTranspose', async (t) => {
  const model = transposeModel({ strides: 2, padding: 'valid', kernel: 3, bias: true, size: 2 }, 60);
  const lc = firstLayer(model);
  const xs = tf.randomNormal([4, 2, 2, 2], 0, 1, 'float32', 23);
  const before = tf.memory().numTensors;
  const kfac = await FIM({ model, loader: [xs], representation: PMatKFAC, layerCollection: lc });
  const ekfac = await FIM({ model, loader: [xs], representation: PMatEKFAC, layerCollection: lc });
  await ekfac.updateDiag([xs]);
  const v = PVector.random(lc, 33);
  const outs = [kfac.mv(v), kfac.solve(v, { regul: 0.1 }), ekfac.mv(v), ekfac.solve(v, { regul: 0.1 })];
  const mats = [kfac.inv({ regul: 0.1 }), kfac.pow(0.5), ekfac.inv({ regul: 0.1 }), deserialize(serialize(kfac), model), deserialize(serialize(ekfac), model)];
  kfac.vTMv(v);
  ekfac.vTMv(v);
  kfac.logdet({ regul: 0.1 });
  tf.dispose([kfac.toTensor(), kfac.getDiag(), ekfac.toTensor(), ekfac.getDiag()]);
  await assert.rejects(() => FIM({ model, loader: [xs], representation: PMatQuasiDiag, layerCollection: lc }), UnsupportedLayerError);
  [...outs, ...mats, v, kfac, ekfac].forEach((o) => o.dispose());
  assert.equal(tf.memory().numTensors - before, 0, 'tensors leaked');
  t.diagnostic(`tensors before ${before}, after ${tf.memory().numTensors}`);
  xs.dispose();
  model.dispose();
});

test('QuasiDiag refuses Conv2DTranspose naming the layer and the way out; PMatEKFACBlockDiag gives it EKFAC (rel. 1e-4 to PMatEKFAC, both before updateDiag)', async (t) => {
  const model = transposeModel({ strides: 1, padding: 'same', kernel: 3, bias: true, size: 3 }, 70);
  const lc = firstLayer(model);
  const xs = tf.randomNormal([3, 3, 3, 2], 0, 1, 'float32', 24);
  const id = lc.layers[0]!.id;
  await assert.rejects(
    () => FIM({ model, loader: [xs], representation: PMatQuasiDiag, layerCollection: lc }),
    (e: Error) => e instanceof UnsupportedLayerError && e.message.includes(`'${id}'`) && /PMatEKFACBlockDiag/.test(e.message) && /PMatDiag/.test(e.message),
  );
  const mixed = await FIM({ model, loader: [xs], representation: PMatEKFACBlockDiag, layerCollection: lc });
  const ekfac = await FIM({ model, loader: [xs], representation: PMatEKFAC, layerCollection: lc });
  const err = relativeError(host(mixed.toTensor()), host(ekfac.toTensor()));
  assert.ok(err < TOL, `PMatEKFACBlockDiag vs PMatEKFAC: ${err}`);
  t.diagnostic(`PMatEKFACBlockDiag vs PMatEKFAC ${err.toExponential(2)}`);
  [mixed, ekfac, xs].forEach((o) => o.dispose());
  model.dispose();
});

test('2 worker threads give the single-thread KFAC and EKFAC with a Conv2DTranspose (bias block merged; rel. 1e-4)', async (t) => {
  const model = transposeModel({ strides: 2, padding: 'same', kernel: 3, bias: true, size: 2 }, 80);
  const batches = [1, 2, 3, 4].map((s) => ({ xs: tf.randomNormal([3, 2, 2, 2], 0, 1, 'float32', 40 + s) }));
  const errs: string[] = [];
  for (const rep of [PMatKFAC, PMatEKFAC] as const) {
    const single = await FIM({ model, loader: batches, representation: rep as typeof PMatKFAC, workers: 1 });
    const parallel = await FIM({ model, loader: batches, representation: rep as typeof PMatKFAC, workers: 2 });
    const err = relativeError(host(parallel.toTensor()), host(single.toTensor()));
    assert.ok(err < TOL, `${rep.representationName}: ${err}`);
    errs.push(`${rep.representationName} ${err.toExponential(2)}`);
    [single, parallel].forEach((o) => o.dispose());
  }
  t.diagnostic(errs.join(', '));
  await terminateWorkers();
  batches.forEach((b) => b.xs.dispose());
  model.dispose();
});
