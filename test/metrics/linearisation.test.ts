/**
 * The Fisher as the metric of the output distribution: for a small parameter step dw,
 * 2·KL(p(θ) ‖ p(θ+dw)) averaged over the examples ≈ dwᵀ F dw (classification variants) and
 * mean ‖f(θ+dw) − f(θ)‖²/σ² ≈ dwᵀ F dw (regression), within 1%. KL is evaluated in float64
 * from the model's outputs, independently of the library.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/tf.js';
import { FIM, LayerCollection, PMatDense, PVector, type Variant } from '../../src/index.js';
import { useTestBackend } from '../support/backend.js';
import { cnn, disposeBatches, mlp, randomBatches, residual } from '../support/models.js';

before(async () => {
  await useTestBackend();
});

function outputs(model: tf.LayersModel, batches: Array<{ xs: tf.Tensor }>): Float64Array[] {
  return batches.flatMap(({ xs }) => {
    const y = model.predict(xs) as tf.Tensor;
    const c = y.shape[y.shape.length - 1]!;
    const v = Float64Array.from(y.dataSync());
    y.dispose();
    return Array.from({ length: v.length / c }, (_, i) => v.subarray(i * c, (i + 1) * c));
  });
}

function logSoftmax(f: Float64Array): Float64Array {
  const m = Math.max(...f);
  const z = Math.log(f.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
  return f.map((v) => v - z);
}

function divergence(variant: Variant, a: Float64Array, b: Float64Array, sigma2: number): number {
  if (variant === 'classif_logits') {
    const la = logSoftmax(a);
    const lb = logSoftmax(b);
    return 2 * la.reduce((s, v, k) => s + Math.exp(v) * (v - lb[k]!), 0);
  }
  if (variant === 'classif_binary_logits') {
    return 2 * a.reduce((s, v, k) => {
      const p = 1 / (1 + Math.exp(-v));
      const q = 1 / (1 + Math.exp(-b[k]!));
      return s + p * Math.log(p / q) + (1 - p) * Math.log((1 - p) / (1 - q));
    }, 0);
  }
  return a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0) / sigma2;
}

for (const [name, make] of [
  ['mlp', () => mlp()],
  ['cnn', () => cnn()],
  ['residual', () => residual()],
] as const) {
  for (const variant of ['classif_logits', 'classif_binary_logits', 'regression'] as const) {
    test(`2·KL(θ, θ+dw) ≈ dwᵀFdw within 1%: ${name}, ${variant}`, async () => {
      const model = make();
      const lc = LayerCollection.fromModel(model);
      const batches = randomBatches(model, 16, 8);
      const sigma2 = 0.7;
      const F = await FIM({ model, loader: batches, representation: PMatDense, variant, ...(variant === 'regression' ? { sigma2 } : {}) });
      const direction = PVector.random(lc, 9);
      const dw = direction.scale(1e-3 / direction.norm()); // ‖dw‖ = 1e-3
      const quad = F.vTMv(dw);
      const w0 = PVector.fromModel(model, lc);
      const before = outputs(model, batches);
      dw.addToModel(model);
      const plus = outputs(model, batches);
      w0.copyToModel(model);
      const back = dw.scale(-1);
      back.addToModel(model);
      const minus = outputs(model, batches);
      w0.copyToModel(model);
      back.dispose();
      // Averaging the steps +dw and −dw cancels the third-order term of the expansion.
      const kl =
        before.reduce((s, a, i) => s + divergence(variant, a, plus[i]!, sigma2) + divergence(variant, a, minus[i]!, sigma2), 0) / (2 * before.length);
      const rel = Math.abs(kl - quad) / quad;
      assert.ok(rel < 0.01, `2KL ${kl} vs dwᵀFdw ${quad}: relative gap ${rel}`);
      [F, direction, dw, w0].forEach((x) => x.dispose());
      model.dispose();
      disposeBatches(batches);
    });
  }
}
