/**
 * Brute-force references, independent of the library's engine: per-example Jacobians from
 * `tf.variableGrads` through tfjs-layers' own forward (`model.apply`), one output coordinate at
 * a time, and the variant's output Fisher H_i assembled in float64.
 */
import { tf } from '../../src/tf.js';
import type { LayerCollection } from '../../src/layers/layer-collection.js';

/** Trainable variables of the collection, in collection order. */
function variables(lc: LayerCollection): tf.Variable[] {
  return lc.layers.flatMap((e) => e.layer.trainableWeights.map((w) => w.read() as tf.Variable));
}

/** ∇θ of a scalar function of the model, flattened in collection order (float64). */
export function flatGradient(lc: LayerCollection, f: () => tf.Scalar): Float64Array {
  const vars = variables(lc);
  const { value, grads } = tf.variableGrads(f, vars);
  const parts = vars.map((v) => grads[v.name]!.dataSync());
  value.dispose();
  tf.dispose(Object.values(grads));
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Per-example Jacobian rows J_i[c] = ∂f_c(x_i)/∂θ and the outputs f(x_i). */
export function perExampleJacobian(model: tf.LayersModel, lc: LayerCollection, x: tf.Tensor | tf.Tensor[]): { jac: Float64Array[]; out: Float64Array } {
  const outT = tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).reshape([-1]));
  const out = Float64Array.from(outT.dataSync());
  outT.dispose();
  const jac = Array.from(out, (_, c) =>
    flatGradient(lc, () => tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).reshape([-1]).gather([c]).sum() as tf.Scalar)),
  );
  return { jac, out };
}

export type RefVariant = 'classif_logits' | 'classif_logsoftmax' | 'classif_probs' | 'classif_binary_logits' | 'regression';

/** The output Fisher H of one example from its outputs f (float64, C×C). */
export function outputFisher(variant: RefVariant, f: Float64Array, sigma2 = 1): Float64Array[] {
  const c = f.length;
  const H = Array.from({ length: c }, () => new Float64Array(c));
  if (variant === 'classif_logits') {
    const m = Math.max(...f);
    const e = Array.from(f, (v) => Math.exp(v - m));
    const z = e.reduce((a, b) => a + b, 0);
    const p = e.map((v) => v / z);
    for (let a = 0; a < c; a++) for (let b = 0; b < c; b++) H[a]![b] = (a === b ? p[a]! : 0) - p[a]! * p[b]!;
  } else if (variant === 'classif_logsoftmax') {
    for (let a = 0; a < c; a++) H[a]![a] = Math.exp(f[a]!);
  } else if (variant === 'classif_probs') {
    for (let a = 0; a < c; a++) H[a]![a] = 1 / f[a]!;
  } else if (variant === 'classif_binary_logits') {
    for (let a = 0; a < c; a++) {
      const s = 1 / (1 + Math.exp(-f[a]!));
      H[a]![a] = s * (1 - s);
    }
  } else {
    for (let a = 0; a < c; a++) H[a]![a] = 1 / sigma2;
  }
  return H;
}

/** F = (1/n) Σ_i J_iᵀ H_i J_i, dense d×d float64, by brute force. */
export function bruteForceFisher(model: tf.LayersModel, lc: LayerCollection, xs: Array<tf.Tensor | tf.Tensor[]>, variant: RefVariant, sigma2 = 1): Float64Array {
  const d = lc.numel();
  const F = new Float64Array(d * d);
  let n = 0;
  for (const batch of xs) {
    const parts = Array.isArray(batch) ? batch : [batch];
    for (let i = 0; i < parts[0]!.shape[0]!; i++) {
      const xi = parts.map((p) => tf.slice(p, [i], [1]));
      const { jac, out } = perExampleJacobian(model, lc, Array.isArray(batch) ? xi : xi[0]!);
      tf.dispose(xi);
      const H = outputFisher(variant, out, sigma2);
      const c = out.length;
      // HJ then Jᵀ(HJ)
      const HJ = Array.from({ length: c }, (_, a) => {
        const row = new Float64Array(d);
        for (let b = 0; b < c; b++) {
          const h = H[a]![b]!;
          if (h !== 0) for (let k = 0; k < d; k++) row[k]! += h * jac[b]![k]!;
        }
        return row;
      });
      for (let a = 0; a < c; a++) {
        const ja = jac[a]!;
        const hja = HJ[a]!;
        for (let p = 0; p < d; p++) {
          const v = ja[p]!;
          if (v === 0) continue;
          for (let q = 0; q < d; q++) F[p * d + q]! += v * hja[q]!;
        }
      }
      n++;
    }
  }
  return F.map((v) => v / n);
}

/** Empirical Fisher (1/n) Σ ∇ℓ_i ∇ℓ_iᵀ from per-example loss gradients. */
export function bruteForceEmpirical(
  model: tf.LayersModel,
  lc: LayerCollection,
  batches: Array<{ xs: tf.Tensor; ys: tf.Tensor }>,
  loss: (y: tf.Tensor, f: tf.Tensor) => tf.Tensor,
): Float64Array {
  const d = lc.numel();
  const F = new Float64Array(d * d);
  let n = 0;
  for (const { xs, ys } of batches) {
    for (let i = 0; i < xs.shape[0]!; i++) {
      const g = flatGradient(lc, () =>
        tf.tidy(() => {
          const f = (model.apply(tf.slice(xs, [i], [1]), { training: false }) as tf.Tensor).reshape([1, -1]);
          return tf.sum(loss(tf.slice(ys, [i], [1]), f)) as tf.Scalar;
        }),
      );
      for (let p = 0; p < d; p++) for (let q = 0; q < d; q++) F[p * d + q]! += g[p]! * g[q]!;
      n++;
    }
  }
  return F.map((v) => v / n);
}

/** ‖a − b‖_F / ‖b‖_F. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let k = 0; k < b.length; k++) {
    num += (a[k]! - b[k]!) ** 2;
    den += b[k]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/**
 * For a Sequential model with dilated Conv2D layers (which tfjs cannot differentiate), a twin
 * with every dilated kernel written out as a plain, larger kernel with zeros between the taps
 * (a JS loop, independent of the library), and the map from each original parameter to its
 * position among the twin's parameters. J_original = J_twin[:, map].
 */
export function undilatedTwin(model: tf.Sequential): { twin: tf.Sequential; map: Int32Array } {
  const twin = tf.sequential();
  const map: number[] = [];
  let twinOffset = 0;
  model.layers.forEach((layer, li) => {
    const config = layer.getConfig() as Record<string, unknown>;
    const dil = config.dilationRate as number[] | number | undefined;
    const d = Array.isArray(dil) ? dil[0]! : (dil ?? 1);
    const weights = layer.getWeights();
    const extra = li === 0 ? { batchInputShape: model.inputs[0]!.shape } : {};
    if (layer.getClassName() === 'Conv2D' && d > 1) {
      const [kh, kw, ci, co] = weights[0]!.shape as number[];
      const eh = (kh! - 1) * d + 1;
      const ew = (kw! - 1) * d + 1;
      const k = weights[0]!.dataSync();
      const big = new Float32Array(eh * ew * ci! * co!);
      const idx = (a: number, b: number, c: number, o: number, w: number) => ((a * w + b) * ci! + c) * co! + o;
      for (let a = 0; a < kh!; a++)
        for (let b = 0; b < kw!; b++)
          for (let c = 0; c < ci!; c++)
            for (let o = 0; o < co!; o++) {
              big[idx(a * d, b * d, c, o, ew)] = k[idx(a, b, c, o, kw!)]!;
              map.push(twinOffset + idx(a * d, b * d, c, o, ew));
            }
      twinOffset += big.length;
      const conv = tf.layers.conv2d({ ...(config as object), ...extra, kernelSize: [eh, ew], dilationRate: 1, name: `${layer.name}_twin` } as Parameters<typeof tf.layers.conv2d>[0]);
      twin.add(conv);
      const rest = weights.slice(1);
      rest.forEach((w) => {
        for (let j = 0; j < w.size; j++) map.push(twinOffset + j);
        twinOffset += w.size;
      });
      conv.setWeights([tf.tensor4d(big, [eh, ew, ci!, co!]), ...rest]);
    } else {
      const Ctor = layer.constructor as new (c: object) => tf.layers.Layer;
      const copy = new Ctor({ ...config, ...extra, name: `${layer.name}_twin` });
      twin.add(copy);
      weights.forEach((w) => {
        for (let j = 0; j < w.size; j++) map.push(twinOffset + j);
        twinOffset += w.size;
      });
      if (weights.length) copy.setWeights(weights);
    }
  });
  return { twin, map: Int32Array.from(map) };
}

/** The sub-matrix F[map, map] of a dense d×d matrix. */
export function selectSubmatrix(F: Float64Array, dFull: number, map: Int32Array): Float64Array {
  const d = map.length;
  const out = new Float64Array(d * d);
  for (let p = 0; p < d; p++) for (let q = 0; q < d; q++) out[p * d + q] = F[map[p]! * dFull + map[q]!]!;
  return out;
}

/** The values of `t` as float64, disposing `t` (for comparisons with float64 references). */
export function host(t: tf.Tensor): Float64Array {
  const a = Float64Array.from(t.dataSync());
  t.dispose();
  return a;
}
