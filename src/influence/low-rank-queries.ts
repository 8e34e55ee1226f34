/**
 * Preconditioned query gradients compressed to low rank, layer by layer (kronfluence's
 * `query_gradient_low_rank`, after Grosse et al. 2023, sec. 3.2): each layer's slice of
 * q̃ = (F + λI)⁻¹∇ℓ(z_q), seen as the matrix [rows, cols] of the layer's parameter layout
 * (cols = the last axis of its first weight: the output units), is replaced by its best rank-k
 * approximation Σ_j s_j u_j v_jᵀ (truncated SVD, float64). Memory per query and layer:
 * k·(rows + cols) floats instead of rows·cols; the score with a training gradient G is
 * Σ_j s_j u_jᵀ G v_j. Layers whose slice is not such a matrix, or too small to gain, stay whole.
 */
import { tf } from '../tf.js';
import type { LayerCollection } from '../layers/layer-collection.js';
import { eighSym } from '../linalg/index.js';

interface CompressedLayer {
  readonly offset: number;
  readonly rows: number;
  readonly cols: number;
  readonly rank: number;
  /** s_j u_j stacked: [rows, nQuery·rank]. */
  readonly left: tf.Tensor2D;
  /** v_j stacked: [cols, nQuery·rank]. */
  readonly right: tf.Tensor2D;
}
interface WholeLayer {
  readonly offset: number;
  readonly size: number;
  /** The preconditioned query slices [nQuery, size]. */
  readonly queries: tf.Tensor2D;
}

export class LowRankQueries {
  private readonly parts: Array<CompressedLayer | WholeLayer>;
  private readonly count: number;

  private constructor(parts: Array<CompressedLayer | WholeLayer>, count: number) {
    this.parts = parts;
    this.count = count;
  }

  /** Compresses the rows of `preconditioned` [nQuery, d] to rank `rank` per layer. */
  static compress(lc: LayerCollection, preconditioned: tf.Tensor2D, rank: number): LowRankQueries {
    const nq = preconditioned.shape[0];
    const host = preconditioned.dataSync();
    const d = lc.numel();
    const parts = lc.layers.map((e): CompressedLayer | WholeLayer => {
      const cols = e.parameters[0]?.shape[e.parameters[0].shape.length - 1] ?? e.numel;
      const rows = e.numel / cols;
      const k = Math.min(rank, rows, cols);
      if (!Number.isInteger(rows) || rows < 2 || cols < 2 || k * (rows + cols) >= rows * cols) {
        return { offset: e.offset, size: e.numel, queries: tf.tidy(() => tf.slice(preconditioned, [0, e.offset], [-1, e.numel]) as tf.Tensor2D) };
      }
      const left = new Float32Array(rows * nq * k);
      const right = new Float32Array(cols * nq * k);
      for (let q = 0; q < nq; q++) {
        const m = Float64Array.from(host.subarray(q * d + e.offset, q * d + e.offset + e.numel));
        const { u, s, v } = truncatedSvd(m, rows, cols, k);
        for (let j = 0; j < k; j++) {
          for (let i = 0; i < rows; i++) left[i * nq * k + q * k + j] = u[i * k + j]! * s[j]!;
          for (let i = 0; i < cols; i++) right[i * nq * k + q * k + j] = v[i * k + j]!;
        }
      }
      return { offset: e.offset, rows, cols, rank: k, left: tf.tensor2d(left, [rows, nq * k]), right: tf.tensor2d(right, [cols, nq * k]) };
    });
    return new LowRankQueries(parts, nq);
  }

  /** Scores [nQuery, B] of the compressed queries with training gradients G [B, d]. */
  scores(grads: tf.Tensor2D): tf.Tensor2D {
    const b = grads.shape[0];
    const nq = this.count;
    return tf.tidy(() =>
      this.parts
        .map((p) => {
          if ('queries' in p) return tf.matMul(p.queries, tf.slice(grads, [0, p.offset], [-1, p.size]), false, true);
          // Σ_j (s_j u_j)ᵀ G v_j: G V [B·rows, nq·k], times S·U summed over rows and k.
          const gv = tf.matMul(tf.slice(grads, [0, p.offset], [-1, p.rows * p.cols]).reshape([b * p.rows, p.cols]), p.right).reshape([b, p.rows, nq, p.rank]);
          return tf.transpose(tf.sum(tf.mul(gv, p.left.reshape([1, p.rows, nq, p.rank])), [1, 3])) as tf.Tensor2D;
        })
        .reduce((x, y) => tf.add(x, y)) as tf.Tensor2D,
    );
  }

  dispose(): void {
    for (const p of this.parts) tf.dispose('queries' in p ? [p.queries] : [p.left, p.right]);
  }
}

/** The top-k singular triplets of M [rows, cols] (float64) from the eigendecomposition of the smaller Gram matrix. */
function truncatedSvd(m: Float64Array, rows: number, cols: number, k: number): { u: Float64Array; s: Float64Array; v: Float64Array } {
  // MᵀM = V S² Vᵀ (cols ≤ rows) or MMᵀ = U S² Uᵀ; the other side from M v / s or Mᵀ u / s.
  const byCols = cols <= rows;
  const n = byCols ? cols : rows;
  const gram = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let c = a; c < n; c++) {
      let x = 0;
      if (byCols) for (let i = 0; i < rows; i++) x += m[i * cols + a]! * m[i * cols + c]!;
      else for (let i = 0; i < cols; i++) x += m[a * cols + i]! * m[c * cols + i]!;
      gram[a * n + c] = x;
      gram[c * n + a] = x;
    }
  }
  const e = eighSym(gram, n);
  const u = new Float64Array(rows * k);
  const v = new Float64Array(cols * k);
  const s = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const col = n - 1 - j; // eigenvalues ascending: the largest last
    const sv = Math.sqrt(Math.max(e.values[col]!, 0));
    s[j] = sv;
    if (byCols) {
      for (let i = 0; i < cols; i++) v[i * k + j] = e.vectors[i * n + col]!;
      for (let i = 0; i < rows; i++) {
        let x = 0;
        for (let c = 0; c < cols; c++) x += m[i * cols + c]! * v[c * k + j]!;
        u[i * k + j] = sv > 0 ? x / sv : 0;
      }
    } else {
      for (let i = 0; i < rows; i++) u[i * k + j] = e.vectors[i * n + col]!;
      for (let c = 0; c < cols; c++) {
        let x = 0;
        for (let i = 0; i < rows; i++) x += m[i * cols + c]! * u[i * k + j]!;
        v[c * k + j] = sv > 0 ? x / sv : 0;
      }
    }
  }
  return { u, s, v };
}
