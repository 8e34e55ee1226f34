/**
 * PMatDiag holds its diagonal in one of two places: a float32 tensor on the device (what a pass
 * over at most 16 batches leaves, and what `new PMatDiag(lc, tensor)` takes over) or a float64
 * array on the host. Every operation must give the numbers computed here by plain loops from
 * `values()` — the same whichever the storage — and leave only what it returns:
 *   - trace, norms, vTMv, solve of a vector: float64 host algebra (bit for bit: the same sums in
 *     the same order); a device diagonal read in place, not through a stale or wrong view;
 *   - inv, add, sub, scale, mm: new host matrices, including device ⊕ host mixes;
 *   - mv, getDiag, toTensor, mmap, mapTMmap, solve of a map: float32 device algebra (1e-6);
 *   - the state saved and reloaded: the same values;
 *   - a tensor given to the constructor is refused with a typed error naming what is wrong
 *     (dtype, shape, size, disposed, not finite), and is left alive when refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { DisposedError, FIM, InvalidArgumentError, LayerCollection, NonFiniteError, NotPositiveDefiniteError, PFMapDense, PMatDiag, PVector } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { relativeError } from '../support/reference.js';

let model: tf.LayersModel;
let lc: LayerCollection;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let onDevice: PMatDiag;
let onHost: PMatDiag;
let v: PVector;
let x: Float64Array;
let m: Float64Array;

const f64 = (t: tf.Tensor) => Float64Array.from(t.dataSync());

before(async () => {
  await useTestBackend();
  model = mlp();
  lc = LayerCollection.fromModel(model);
  batches = randomBatches(model, 12, 4, 21);
  const n0 = tf.memory().numTensors;
  onDevice = (await FIM({ model, loader: batches, representation: PMatDiag })) as PMatDiag;
  assert.equal(tf.memory().numTensors, n0 + 1, 'a pass of 3 batches leaves the diagonal on the device');
  m = onDevice.values();
  onHost = new PMatDiag(lc, Float64Array.from(m));
  assert.equal(tf.memory().numTensors, n0 + 1, 'a float64 diagonal holds no tensor');
  v = PVector.random(lc, 4);
  x = f64(v.data);
});

after(() => {
  onDevice.dispose();
  onHost.dispose();
  v.dispose();
  disposeBatches(batches);
  model.dispose();
});

/** Runs `f` and checks that it leaves `returned` more tensors than it found. */
function counted<T>(f: () => T, returned = 0): T {
  const n0 = tf.memory().numTensors;
  const r = f();
  assert.equal(tf.memory().numTensors, n0 + returned, 'tensor count');
  return r;
}

for (const [storage, diag] of [['device', () => onDevice], ['host', () => onHost]] as const) {
  test(`PMatDiag on the ${storage}: trace, norms, vTMv and solve are the float64 loops over values() bit for bit`, () => {
    const F = diag();
    let trace = 0;
    let fro = 0;
    let max = 0;
    let min = Infinity;
    let quad = 0;
    for (let k = 0; k < m.length; k++) {
      trace += m[k]!;
      fro += m[k]! * m[k]!;
      max = Math.max(max, Math.abs(m[k]!));
      min = Math.min(min, Math.abs(m[k]!));
      quad += m[k]! * x[k]! * x[k]!;
    }
    assert.equal(counted(() => F.trace()), trace);
    assert.equal(counted(() => F.norm()), Math.sqrt(fro));
    assert.equal(counted(() => F.norm(2)), max);
    assert.equal(counted(() => F.norm(-2)), min);
    assert.equal(counted(() => F.vTMv(v)), quad);
    const regul = 1e-3;
    const s = counted(() => F.solve(v, { regul }), 1);
    assert.deepEqual(Array.from(s.data.dataSync()), Array.from(Float32Array.from(x, (xk, k) => xk / (m[k]! + regul))));
    s.dispose();
    assert.deepEqual(Array.from(counted(() => F.values())), Array.from(m));
  });

  test(`PMatDiag on the ${storage}: inv, add, sub, scale and mm (with either storage) are new host matrices of the elementwise float64 results`, () => {
    const F = diag();
    const cases: Array<[string, () => PMatDiag, (mk: number) => number]> = [
      ['inv', () => F.inv({ regul: 0.5 }), (mk) => 1 / (mk + 0.5)],
      ['add device', () => F.add(onDevice), (mk) => mk + mk],
      ['add host', () => F.add(onHost), (mk) => mk + mk],
      ['sub', () => F.sub(onHost.scale(0.25)), (mk) => mk - mk * 0.25],
      ['scale', () => F.scale(-3), (mk) => mk * -3],
      ['mm', () => F.mm(onDevice), (mk) => mk * mk],
    ];
    for (const [name, make, expected] of cases) {
      const n0 = tf.memory().numTensors;
      const r = make();
      assert.equal(tf.memory().numTensors, n0, `${name}: a host matrix`);
      assert.deepEqual(Array.from(r.values()), Array.from(m, expected), name);
      r.dispose();
    }
  });

  test(`PMatDiag on the ${storage}: mv, getDiag, toTensor, mmap, mapTMmap and the solve of a map are the products with diag (1e-6)`, () => {
    const F = diag();
    const mv = counted(() => F.mv(v), 1);
    assert.ok(relativeError(f64(mv.data), x.map((xk, k) => m[k]! * xk)) < 1e-6);
    mv.dispose();
    const got = counted(() => F.getDiag(), 1);
    assert.ok(relativeError(f64(got), m) < 1e-7);
    got.dispose();
    const d = m.length;
    const dense = counted(() => F.toTensor(), 1);
    const values = dense.dataSync();
    for (let i = 0; i < d; i += 97) for (let j = 0; j < d; j += 89) assert.equal(values[i * d + j], i === j ? Math.fround(m[i]!) : 0, `toTensor [${i}, ${j}]`);
    dense.dispose();
    const jData = tf.randomNormal([2, 3, d], 0, 1, 'float32', 5) as tf.Tensor3D;
    const J = new PFMapDense(lc, jData);
    const j = f64(jData);
    const scaled = counted(() => F.mmap(J), 1);
    assert.ok(relativeError(f64(scaled.data), j.map((y, i) => y * m[i % d]!)) < 1e-6);
    scaled.dispose();
    const quadratic = counted(() => F.mapTMmap(J), 1);
    const sums = [0, 0, 0];
    for (let r = 0; r < 6; r++) for (let k = 0; k < d; k++) sums[r % 3]! += m[k]! * j[r * d + k]! ** 2;
    assert.ok(relativeError(f64(quadratic), sums) < 1e-5);
    quadratic.dispose();
    const solved = counted(() => F.solve(J, { regul: 0.1 }), 1);
    assert.ok(relativeError(f64(solved.data), j.map((y, i) => y / (m[i % d]! + 0.1))) < 1e-6);
    solved.dispose();
    J.dispose();
  });

  test(`PMatDiag on the ${storage}: saved state reloads to the same values; a singular solve is refused`, () => {
    const F = diag();
    const back = PMatDiag.fromState(lc, F.toState());
    assert.deepEqual(Array.from(back.values()), Array.from(m));
    back.dispose();
    // A zero entry: (0 + 0) is not > 0, refused by name.
    const zero = new PMatDiag(lc, Float64Array.from(m, (mk, k) => (k === 7 ? 0 : mk)));
    assert.throws(() => zero.solve(v, { regul: 0 }), (e: unknown) => e instanceof NotPositiveDefiniteError && /entry 7/.test(e.message));
    zero.dispose();
  });
}

test('new PMatDiag(lc, tensor) takes a float32 [d] tensor over; bad tensors are refused by name and left alive', () => {
  const d = lc.numel();
  const n0 = tf.memory().numTensors;
  const t = tf.tensor1d(Float32Array.from(m));
  const F = new PMatDiag(lc, t);
  assert.equal(F.trace(), Float64Array.from(Float32Array.from(m)).reduce((a, b) => a + b, 0));
  F.dispose();
  assert.ok(t.isDisposed, 'dispose releases the tensor taken over');
  assert.equal(tf.memory().numTensors, n0);
  const bad: Array<[string, tf.Tensor, typeof InvalidArgumentError | typeof NonFiniteError, RegExp]> = [
    ['int32', tf.zeros([d], 'int32'), InvalidArgumentError, /float32 of shape \[\d+\], received int32/],
    ['rank 2', tf.zeros([d, 1]), InvalidArgumentError, /received float32 \[\d+, 1\]/],
    ['size', tf.zeros([d + 1]), InvalidArgumentError, new RegExp(`expected ${d} values, received ${d + 1}`)],
    ['NaN', tf.tensor1d(Float32Array.from({ length: d }, (_, k) => (k === 5 ? NaN : 1))), NonFiniteError, /holds NaN at index 5/],
  ];
  for (const [name, tensor, type, message] of bad) {
    assert.throws(() => new PMatDiag(lc, tensor as tf.Tensor1D), (e: unknown) => e instanceof type && message.test((e as Error).message), name);
    assert.ok(!tensor.isDisposed, `${name}: the refused tensor is left to its owner`);
    tensor.dispose();
  }
  const gone = tf.zeros([d]) as tf.Tensor1D;
  gone.dispose();
  assert.throws(() => new PMatDiag(lc, gone), (e: unknown) => e instanceof InvalidArgumentError && /disposed tensor/.test((e as Error).message));
  assert.equal(tf.memory().numTensors, n0);
});

test('a disposed PMatDiag refuses every operation (device storage)', async () => {
  const F = (await FIM({ model, loader: batches, representation: PMatDiag })) as PMatDiag;
  F.dispose();
  for (const [name, op] of [['trace', () => F.trace()], ['values', () => F.values()], ['mv', () => F.mv(v)], ['getDiag', () => F.getDiag()], ['add', () => onHost.add(F)]] as const) {
    assert.throws(op, DisposedError, name);
  }
});
