/**
 * The empirical tangent kernel K[o,i,o',j] = ⟨∇θ f̃_o(x_i), ∇θ f̃_o'(x_j)⟩ assembled from the
 * per-layer kernels of LayerKind.gradientGram, without ever forming the Jacobian (O·n·d floats).
 * Not a sum over the data: the pass keeps, for every batch, each collected layer's input x (B
 * examples) and the gradients g_o at its pre-activation for all O outputs, stacked output-major
 * into [O·B, ...] ("extended rows" r = o·B + i); `result` then forms, for every pair of batches
 * a ≤ b,
 *   K_ab = Σ_l gradientGram_l(tile(x_a), G_a, tile(x_b), G_b)       [O·B_a, O·B_b],
 * where tile stacks O copies of x so that row r of the features meets row r of the
 * gradients (Dense: (x̃_a x̃_bᵀ) ∘ (G_a G_bᵀ); weight-shared layers sum over positions). Pairs
 * are cut into row chunks so that no per-layer temporary exceeds about (2048)² floats.
 *
 * Memory while computing: n·Σ_l |x_l| + O·n·Σ_l |g_l| floats on the device (inputs and
 * pre-activation gradients of the collected layers for all examples; for an MLP this is a few
 * thousand floats per example where J would need O·d), plus the (O·n)² float64 result.
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import type { Statistic } from './statistic.js';

/** Inputs and stacked output gradients of the collected layers on one batch. */
interface CapturedBatch {
  readonly size: number;
  readonly offset: number;
  readonly inputs: Map<string, tf.Tensor>;
  /** [O·B, ...] output-major. */
  readonly grads: Map<string, tf.Tensor>;
}

/** Largest R·S (rows × weight-sharing positions) of one per-layer Gram temporary. */
const CHUNK = 2048;

/**
 * K as a row-major float64 (O·n)×(O·n) array (row o·n + i). One forward and O backward passes
 * per batch keep the batches' (x, g); `result` then forms the #batches·(#batches+1)/2 block
 * products. `chunk` bounds R·S of one per-layer temporary (exposed for tests).
 *
 * @example
 * const { value: k, outputs, examples } = await accumulate(spec, tangentKernel(spec.layerCollection));
 */
export function tangentKernel(lc: LayerCollection, chunk = CHUNK): Statistic<Float64Array> {
  const batches: CapturedBatch[] = [];
  let pending = new Map<string, tf.Tensor[]>();
  let inputs = new Map<string, tf.Tensor>();
  let size = 0;
  let offset = 0;
  let outputs = 0;
  return {
    // Stacked outputs concatenated in order: the gradients of the batch, output-major, [O·B, ...].
    onOutputs: (g) => {
      size = g.batchSize;
      outputs = g.numOutputs;
      for (const e of lc.layers) {
        if (g.firstOutput === 0) inputs.set(e.id, tf.keep(g.inputs.get(e.id)!.clone()));
        const list = pending.get(e.id) ?? [];
        list.push(tf.keep(g.grads.get(e.id)!));
        pending.set(e.id, list);
      }
    },
    onBatchEnd: () => {
      const grads = new Map<string, tf.Tensor>();
      for (const [id, list] of pending) {
        grads.set(id, tf.tidy(() => tf.concat(list, 0)));
        tf.dispose(list);
      }
      batches.push({ size, offset, inputs, grads });
      offset += size;
      pending = new Map();
      inputs = new Map();
    },
    result: (examples) => {
      const values = new Float64Array((outputs * examples) ** 2);
      for (let a = 0; a < batches.length; a++) {
        for (let b = a; b < batches.length; b++) addBlock(lc, batches[a]!, batches[b]!, outputs, examples, values, chunk);
      }
      return values;
    },
    dispose: () => {
      for (const list of pending.values()) tf.dispose(list);
      tf.dispose([...inputs.values()]);
      for (const c of batches.splice(0)) tf.dispose([...c.inputs.values(), ...c.grads.values()]);
      pending = new Map();
      inputs = new Map();
    },
  };
}

/** Writes the block of batches (a, b) and, when a ≠ b, its transpose into `out`. */
function addBlock(lc: LayerCollection, a: CapturedBatch, b: CapturedBatch, outputs: number, n: number, out: Float64Array, limit: number): void {
  const rowsA = outputs * a.size;
  const rowsB = outputs * b.size;
  const chunk = chunkRows(lc, a, limit);
  const size = outputs * n;
  for (let ra = 0; ra < rowsA; ra += chunk) {
    const la = Math.min(chunk, rowsA - ra);
    for (let rb = 0; rb < rowsB; rb += chunk) {
      const lb = Math.min(chunk, rowsB - rb);
      const block = tf.tidy(() =>
        lc.layers
          .map((e) => {
            const [xa, ga] = extendedRows(a, e.id, outputs, ra, la);
            const [xb, gb] = extendedRows(b, e.id, outputs, rb, lb);
            return e.kind.gradientGram(e.layer, xa, ga, xb, gb);
          })
          .reduce((s, k) => tf.add(s, k)),
      );
      const v = block.dataSync();
      block.dispose();
      for (let r = 0; r < la; r++) {
        const row = globalRow(ra + r, a, n);
        for (let c = 0; c < lb; c++) {
          const col = globalRow(rb + c, b, n);
          const k = v[r * lb + c]!;
          out[row * size + col] = k;
          out[col * size + row] = k;
        }
      }
    }
  }
}

/** Features and gradients of extended rows [start, start + count) of a batch for one layer. */
function extendedRows(c: CapturedBatch, id: string, outputs: number, start: number, count: number): [tf.Tensor, tf.Tensor] {
  const x = c.inputs.get(id)!;
  const g = c.grads.get(id)!;
  // O copies stacked along the batch axis (concat: tf.tile is ~100× slower on tfjs-wasm).
  const tiled = outputs === 1 ? x : tf.concat(new Array<tf.Tensor>(outputs).fill(x), 0);
  const sliceRows = (t: tf.Tensor) => (start === 0 && count === t.shape[0] ? t : tf.slice(t, [start], [count]));
  return [sliceRows(tiled), sliceRows(g)];
}

/** Extended row r = o·B + i of a batch ↦ row o·n + offset + i of K. */
function globalRow(r: number, c: CapturedBatch, n: number): number {
  const o = Math.floor(r / c.size);
  return o * n + c.offset + (r - o * c.size);
}

/** Floats of one per-example Gram temporary ([R, K·C] gradients and [R, S, K] patches): 64 MB. */
const PER_EXAMPLE_FLOATS = 2 ** 24;

/**
 * Extended rows per block: a layer whose kernel goes through position pairs bounds R·S by
 * `limit`; one whose per-example gradients are cheaper than its position pairs at any block size
 * (numel·(2S + 1) < S²·(K + C): convolutions with few parameters on large maps, see
 * linearGradientGram) bounds R·(K·C + S·K) by PER_EXAMPLE_FLOATS instead.
 */
function chunkRows(lc: LayerCollection, c: CapturedBatch, limit: number): number {
  return lc.layers.reduce((rows, e) => {
    const g = c.grads.get(e.id)!;
    const channels = g.shape[g.shape.length - 1]!;
    const s = g.size / (g.shape[0]! * channels);
    if (s === 1) return Math.min(rows, limit);
    const k = e.numel / channels;
    const perExample = e.numel * (2 * s + 1) < s * s * (k + channels);
    return Math.min(rows, Math.max(1, Math.floor(perExample ? PER_EXAMPLE_FLOATS / (e.numel + s * k) : limit / s)));
  }, Number.POSITIVE_INFINITY);
}
