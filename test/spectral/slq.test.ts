/**
 * spectralDensity (stochastic Lanczos quadrature) against exact spectral moments tr(Mʲ)/d of
 * float64 dense references: the Fisher (PSD) and the Hessian (indefinite) of a small MLP.
 * Bounds: 3 of the reported standard errors (over probes), seeds fixed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, Hessian, LayerCollection, PMatDense, PMatImplicit, initLinalg, spectralDensity } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { disposeBatches, mlp, randomBatches } from '../support/models.js';
import { eigenvalues } from './support.js';

let model: tf.Sequential;
let batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>;
let d: number;

before(async () => {
  await useTestBackend();
  await initLinalg();
  model = mlp();
  batches = randomBatches(model, 64, 16);
  d = LayerCollection.fromModel(model).numel();
});
after(() => {
  disposeBatches(batches);
  model.dispose();
});

function exactMoment(ev: Float64Array, j: number): number {
  return ev.reduce((s, x) => s + x ** j, 0) / ev.length;
}

async function checkMoments(op: Parameters<typeof spectralDensity>[0], ev: Float64Array, probes: number, steps: number): Promise<void> {
  const slq = await spectralDensity(op, { probes, steps, seed: 3 });
  assert.equal(slq.products, probes * steps);
  assert.ok(Math.abs(slq.weights.reduce((a, b) => a + b, 0) - 1) < 1e-12, 'Σ weights = 1');
  // Each probe's block of `steps` nodes carries 1/probes.
  for (let p = 0; p < probes; p++) {
    const w = slq.weights.slice(p * steps, (p + 1) * steps).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(w - 1 / probes) < 1e-12, `probe ${p}: ${w}`);
  }
  for (const j of [1, 2, 3]) {
    const { value, standardError } = slq.moment(j);
    const direct = slq.nodes.reduce((s, x, i) => s + slq.weights[i]! * x ** j, 0);
    assert.ok(Math.abs(direct - value) <= 1e-12 * Math.abs(value) + 1e-300, 'moment = Σ wᵢλᵢʲ');
    const exact = exactMoment(ev, j);
    assert.ok(Math.abs(value - exact) <= 3 * standardError, `j=${j}: ${value} ± ${standardError} vs ${exact}`);
  }
  // Nodes lie in [λ_min, λ_max] (Ritz values interlace), up to float32 products.
  const scale = Math.max(Math.abs(ev[0]!), Math.abs(ev[ev.length - 1]!));
  assert.ok(Math.min(...slq.nodes) >= ev[0]! - 1e-5 * scale && Math.max(...slq.nodes) <= ev[ev.length - 1]! + 1e-5 * scale);
  // The smoothed density integrates to 1 (trapezoid on a grid wider than the spectrum).
  const sigma = 0.02 * scale;
  const lo = ev[0]! - 10 * sigma;
  const hi = ev[ev.length - 1]! + 10 * sigma;
  const grid = Array.from({ length: 4001 }, (_, i) => lo + ((hi - lo) * i) / 4000);
  const phi = slq.density(grid, { sigma });
  let integral = 0;
  for (let i = 1; i < grid.length; i++) integral += ((phi[i]! + phi[i - 1]!) / 2) * (grid[i]! - grid[i - 1]!);
  assert.ok(Math.abs(integral - 1) < 1e-3, `∫φ = ${integral}`);
}

test('Fisher (PSD, stored): moments j = 1, 2, 3 within 3 standard errors of tr(Fʲ)/d', async () => {
  const F = await FIM({ model, loader: batches, representation: PMatDense });
  const t = F.toTensor();
  const ev = eigenvalues(t.dataSync(), d);
  t.dispose();
  await checkMoments(F, ev, 20, 30);
  F.dispose();
});

test('Hessian (indefinite, matrix-free): moments within 3 standard errors, negative nodes present', async () => {
  const H = await Hessian({ model, loader: batches.slice(0, 2), loss: 'cross_entropy', representation: PMatImplicit });
  const Hd = await Hessian({ model, loader: batches.slice(0, 2), loss: 'cross_entropy', representation: PMatDense });
  const t = Hd.toTensor();
  const ev = eigenvalues(t.dataSync(), d);
  t.dispose();
  await checkMoments(H, ev, 6, 10);
  const slq = await spectralDensity(H, { probes: 1, steps: 10, seed: 1 });
  assert.ok(Math.min(...slq.nodes) < 0, 'the quadrature sees the negative curvature');
  H.dispose();
  Hd.dispose();
});

test('steps ≥ d: one probe reproduces the spectrum exactly (nodes = eigenvalues)', async () => {
  const F = await FIM({ model, loader: batches, representation: PMatDense });
  const t = F.toTensor();
  const ev = eigenvalues(t.dataSync(), d);
  t.dispose();
  const slq = await spectralDensity(F, { probes: 1, steps: 500, seed: 2 });
  assert.ok(slq.nodes.length <= d);
  // Every large eigenvalue is a node (a probe has a component along each eigenvector).
  const scale = ev[d - 1]!;
  for (const lambda of ev.slice(d - 10)) assert.ok(slq.nodes.some((x) => Math.abs(x - lambda) <= 1e-5 * scale), `λ = ${lambda}`);
  F.dispose();
});
