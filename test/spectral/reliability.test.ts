/**
 * Bad input, cancellation, progress and memory of the spectral tools: every bad argument is a
 * typed error naming the function and the option; an abort or a failing product midway
 * leaves no tensor behind; a successful call leaves only what it returns.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import {
  AbortedError,
  DisposedError,
  FIM,
  FVector,
  GramMatrix,
  InvalidArgumentError,
  LayerCollection,
  LayerCollectionMismatchError,
  NonFiniteError,
  PMatDense,
  PMatImplicit,
  PVector,
  asOperator,
  eigsh,
  estimateDiag,
  estimateTrace,
  initLinalg,
  spectralDensity,
  type LinearOperator,
} from '../../src/index.js';
import { useTestBackend, tensorsLeaked } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';

let model: tf.Sequential;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let F: PMatDense;
let lc: LayerCollection;

before(async () => {
  await useTestBackend();
  await initLinalg();
  model = mlp();
  lc = LayerCollection.fromModel(model);
  batches = randomBatches(model, 16, 8);
  F = await FIM({ model, loader: batches, representation: PMatDense });
});
after(() => {
  F.dispose();
  disposeBatches(batches);
  model.dispose();
});

type Call = (op: LinearOperator, options: Record<string, unknown>) => Promise<unknown>;
const CALLS: Record<string, Call> = {
  eigsh: (op, o) => eigsh(op, { route: 'lanczos', ...o }),
  estimateTrace: (op, o) => estimateTrace(op, o),
  estimateDiag: (op, o) => estimateDiag(op, o),
  spectralDensity: (op, o) => spectralDensity(op, { probes: 2, steps: 5, ...o }),
};

/** Disposes the vectors a spectral call returned. */
function release(r: unknown): void {
  if (r instanceof PVector || r instanceof FVector) r.dispose();
  else if (r && typeof r === 'object' && 'vectors' in r) (r as { vectors: PVector[] }).vectors.forEach((v) => v.dispose());
}

test('bad arguments: typed errors naming the function and the option', async () => {
  const d = lc.numel();
  const cases: Array<[string, Call, RegExp]> = [
    ['eigsh k = 0', (op) => eigsh(op, { k: 0 }), /eigsh: 'k' must be an integer in \[1, 74\], received number 0/],
    ['eigsh k < 0', (op) => eigsh(op, { k: -2 }), /'k'/],
    ['eigsh k = 1.5', (op) => eigsh(op, { k: 1.5 }), /'k' must be an integer/],
    ['eigsh k > d', (op) => eigsh(op, { k: d + 1 }), /d = 74/],
    ['eigsh tol = 0', (op) => eigsh(op, { tol: 0 }), /'tol' must be a finite number > 0/],
    ['eigsh tol < 0', (op) => eigsh(op, { tol: -1 }), /'tol'/],
    ['eigsh tol NaN', (op) => eigsh(op, { tol: NaN }), /'tol'/],
    ['eigsh which', (op) => eigsh(op, { which: 'middle' as 'largest' }), /'which' must be 'largest' or 'smallest'/],
    ['eigsh maxIterations 0', (op) => eigsh(op, { maxIterations: 0 }), /'maxIterations'/],
    ['eigsh unknown option', (op) => eigsh(op, { K: 3 } as never), /'K'/],
    ['estimateTrace samples 0', (op) => estimateTrace(op, { samples: 0 }), /'samples'/],
    ['estimateTrace hutchinson samples 0', (op) => estimateTrace(op, { method: 'hutchinson', samples: 0 }), /'samples' must be an integer ≥ 1/],
    ['estimateTrace hutch++ samples 2', (op) => estimateTrace(op, { samples: 2 }), /hutch\+\+ needs at least 3/],
    ['estimateTrace xtrace samples 1', (op) => estimateTrace(op, { method: 'xtrace', samples: 1 }), /xtrace needs at least 2/],
    ['estimateTrace method', (op) => estimateTrace(op, { method: 'exact' as 'xtrace' }), /'method' must be 'hutch\+\+' or 'hutchinson' or 'xtrace'/],
    ['estimateTrace distribution', (op) => estimateTrace(op, { distribution: 'uniform' as 'normal' }), /'distribution'/],
    ['estimateTrace seed 1.5', (op) => estimateTrace(op, { seed: 1.5 }), /'seed' must be an integer/],
    ['estimateDiag samples 0', (op) => estimateDiag(op, { samples: 0 }), /'samples'/],
    ['estimateDiag xdiag samples 1', (op) => estimateDiag(op, { samples: 1 }), /xdiag needs at least 2/],
    ['spectralDensity probes 0', (op) => spectralDensity(op, { probes: 0 }), /'probes' must be an integer ≥ 1/],
    ['spectralDensity steps 0.5', (op) => spectralDensity(op, { steps: 0.5 }), /'steps'/],
    ['estimateTrace xtrace samples > 2d', (op) => estimateTrace(op, { method: 'xtrace', samples: 2 * d + 2 }), /'samples' must be at most 2·d = 148 for xtrace/],
    ['estimateDiag xdiag samples > 2d', (op) => estimateDiag(op, { samples: 2 * d + 2 }), /'samples' must be at most 2·d = 148 for xdiag/],
    ['onProgress not a function', (op) => estimateTrace(op, { onProgress: 3 as never }), /'onProgress' must be a function/],
  ];
  for (const [name, call, message] of cases) {
    const leaked = await tensorsLeaked(() => assert.rejects(() => call(F, {}), (e: Error) => e instanceof InvalidArgumentError && message.test(e.message), name));
    assert.equal(leaked, 0, name);
  }
  for (const [name, call] of Object.entries(CALLS)) {
    await assert.rejects(() => call({} as LinearOperator, {}), /'op' must be an operator with a method mv/, name);
    await assert.rejects(() => call(null as unknown as LinearOperator, {}), InvalidArgumentError, name);
    await assert.rejects(() => call({ mv: () => null } as unknown as LinearOperator, {}), /layerCollection/, name);
    const s = await spectralDensity(F, { probes: 1, steps: 3 });
    assert.throws(() => s.density([0], { sigma: 0 }), /'sigma' must be a finite number > 0/);
  }
});

test('operators that misbehave: disposed, another layer collection, non-finite values, not a vector', async () => {
  const other = mlp();
  const lcOther = LayerCollection.fromModel(other);
  const D = await FIM({ model, loader: batches, representation: PMatDense });
  D.dispose();
  const I = await FIM({ model, loader: batches, representation: PMatImplicit });
  I.dispose();
  let calls = 0;
  const ops: Array<[string, LinearOperator, new (...a: never[]) => Error, RegExp]> = [
    ['disposed PMatDense', D, DisposedError, /: the operator has been disposed/],
    ['disposed PMatImplicit', I, DisposedError, /: the operator has been disposed \(this PMatImplicit/],
    ['another layer collection', asOperator(() => PVector.zeros(lcOther), lc), LayerCollectionMismatchError, /returned by op.mv/],
    ['NaN on the third product', asOperator((v) => (++calls % 3 === 0 ? PVector.adopt(lc, tf.fill([lc.numel()], NaN) as tf.Tensor1D) : F.mv(v)), lc), NonFiniteError, /non-finite value \(NaN\)/],
    ['not a vector', asOperator(() => 3 as unknown as PVector, lc), InvalidArgumentError, /must return a PVector/],
    ['its own input', asOperator((v) => v, lc), InvalidArgumentError, /returned its input/],
  ];
  await assert.rejects(() => eigsh(D, { k: 2 }), /eigsh: the operator has been disposed/, 'structured route');
  for (const [name, op, type, message] of ops) {
    for (const [fn, call] of Object.entries(CALLS)) {
      calls = 0;
      const leaked = await tensorsLeaked(() => assert.rejects(() => call(op, fn === 'eigsh' || fn === 'spectralDensity' ? {} : { samples: 6 }), (e: Error) => e instanceof type && message.test(e.message), `${fn}: ${name}`));
      assert.equal(leaked, 0, `${fn}: ${name} leaked`);
    }
  }
  other.dispose();
});

test('an AbortSignal stops every function between products (AbortedError, nothing leaked); onProgress counts products', async () => {
  for (const [fn, call] of Object.entries(CALLS)) {
    const controller = new AbortController();
    const seen: number[] = [];
    const leaked = await tensorsLeaked(() =>
      assert.rejects(
        () => call(F, { signal: controller.signal, onProgress: (p: { products: number }) => (seen.push(p.products), p.products === 3 && controller.abort('enough')), ...(fn.startsWith('estimate') ? { samples: 12 } : {}) }),
        (e: Error) => e instanceof AbortedError && new RegExp(`${fn} was aborted \\(enough\\)`).test(e.message),
      ),
    );
    assert.equal(leaked, 0, fn);
    assert.deepEqual(seen, [1, 2, 3], fn);
    const aborted = AbortSignal.abort();
    await assert.rejects(() => call(F, { signal: aborted }), AbortedError);
  }
});

test('no tensor leaks: each call leaves only what it returns (stored, matrix-free and function-space operators)', async () => {
  const I = await FIM({ model, loader: batches, representation: PMatImplicit });
  const K = await GramMatrix({ model, loader: batches.slice(0, 1) });
  for (const [name, op] of [['PMatDense', F], ['PMatImplicit', I], ['FMatDense', K]] as const) {
    for (const [fn, call] of Object.entries(CALLS)) {
      for (const options of fn === 'eigsh' ? [{ k: 3 }, { k: 3, route: 'auto' }] : [{ samples: 6 }, { samples: 6, method: 'hutchinson' }]) {
        const leaked = await tensorsLeaked(async () => release(await call(op, fn === 'spectralDensity' ? {} : options)));
        assert.equal(leaked, 0, `${fn} on ${name} ${JSON.stringify(options)}`);
      }
    }
  }
  I.dispose();
  K.dispose();
});

test('results come back as vectors of the operator’s space (PVector; FVector for FMatDense)', async () => {
  const K = await GramMatrix({ model, loader: batches.slice(0, 1) });
  const r = await eigsh(K, { k: 2 });
  assert.deepEqual(r.vectors[0]!.data.shape, [K.numOutputs, K.numExamples]);
  r.vectors.forEach((v) => v.dispose());
  const diag = await estimateDiag(K, { samples: 8 });
  assert.deepEqual(diag.data.shape, [K.numOutputs, K.numExamples]);
  diag.dispose();
  const p = await estimateDiag(F, { samples: 8 });
  assert.ok(p instanceof PVector && p.layerCollection.equals(lc));
  p.dispose();
  K.dispose();
});
