/**
 * Forms Q = H₀H₁⋯H_{r−1} from Householder vectors, by blocked backward accumulation in the
 * compact WY form (Schreiber and Van Loan, "A storage-efficient WY representation for products
 * of Householder transformations", SIAM J. Sci. Stat. Comput. 10(1), 1989).
 */

/** Reflectors per block: the block's W (NB rows of Q's width) stays in cache. */
const NB = 32;

/**
 * Returns Q (n×n row-major) = H₀⋯H_{r−1} with H_k = I − τ_k v_k v_kᵀ, where v_k is zero up to
 * index k, one at k+1 and row k of `v` (row-major n×n) beyond.
 *
 * Unblocked accumulation reads and writes all of the trailing Q twice per reflector. For a
 * block of reflectors k0..k1−1, H_k0⋯H_{k1−1} = I − Y T Yᵀ with T upper triangular (the
 * recurrence of LAPACK dlarft), so Q ← (I − Y T Yᵀ) Q costs two passes per block: W = YᵀQ
 * and Q −= Y(TW), each combining four rows at a time to cut loads and stores by four.
 */
export function formHouseholderQ(v: Float64Array, tau: Float64Array, n: number, r: number): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  for (let k0 = Math.floor(Math.max(r - 1, 0) / NB) * NB; k0 >= 0 && r > 0; k0 -= NB) {
    const nb = Math.min(r, k0 + NB) - k0;
    const m = n - k0 - 1; // rows and columns of the trailing block Q[k0+1.., k0+1..]
    const off = (k0 + 1) * n + (k0 + 1);
    // Y (m × nb), reflector l contiguous: y[l·m + i] = v_{k0+l}[k0+1+i].
    const y = new Float64Array(nb * m);
    for (let l = 0; l < nb; l++) {
      const row = (k0 + l) * n + k0 + 1;
      y[l * m + l] = 1;
      for (let i = l + 1; i < m; i++) y[l * m + i] = v[row + i]!;
    }
    const t = triangularFactor(y, m, nb, tau, k0);
    // W = YᵀQ (nb × m, row-major), four rows of Q per pass over a row of W.
    const w = new Float64Array(nb * m);
    let i = 0;
    for (; i + 3 < m; i += 4) {
      const q0 = off + i * n, q1 = q0 + n, q2 = q1 + n, q3 = q2 + n;
      for (let l = 0; l < nb && l <= i + 3; l++) {
        const y0 = y[l * m + i]!, y1 = y[l * m + i + 1]!, y2 = y[l * m + i + 2]!, y3 = y[l * m + i + 3]!;
        const wl = l * m;
        for (let j = 0; j < m; j++) {
          w[wl + j] = w[wl + j]! + y0 * q[q0 + j]! + y1 * q[q1 + j]! + y2 * q[q2 + j]! + y3 * q[q3 + j]!;
        }
      }
    }
    for (; i < m; i++) {
      const qi = off + i * n;
      for (let l = 0; l < nb && l <= i; l++) {
        const yl = y[l * m + i]!, wl = l * m;
        for (let j = 0; j < m; j++) w[wl + j] = w[wl + j]! + yl * q[qi + j]!;
      }
    }
    // W ← T W, from the top: row p of TW needs rows p.. of W, not yet overwritten.
    for (let p = 0; p < nb; p++) {
      const wp = p * m;
      for (let j = 0; j < m; j++) w[wp + j] = t[p * nb + p]! * w[wp + j]!;
      for (let c = p + 1; c < nb; c++) {
        const f = t[p * nb + c]!, wc = c * m;
        if (f !== 0) for (let j = 0; j < m; j++) w[wp + j] = w[wp + j]! + f * w[wc + j]!;
      }
    }
    // Q −= Y W, four reflectors per pass over a row of Q (Y[i][l] = 0 for l > i).
    for (let i = 0; i < m; i++) {
      const qi = off + i * n;
      const top = Math.min(nb, i + 1);
      let l = 0;
      for (; l + 3 < top; l += 4) {
        const y0 = y[l * m + i]!, y1 = y[(l + 1) * m + i]!, y2 = y[(l + 2) * m + i]!, y3 = y[(l + 3) * m + i]!;
        const w0 = l * m, w1 = w0 + m, w2 = w1 + m, w3 = w2 + m;
        for (let j = 0; j < m; j++) {
          q[qi + j] = q[qi + j]! - (y0 * w[w0 + j]! + y1 * w[w1 + j]! + y2 * w[w2 + j]! + y3 * w[w3 + j]!);
        }
      }
      for (; l < top; l++) {
        const yl = y[l * m + i]!, wl = l * m;
        for (let j = 0; j < m; j++) q[qi + j] = q[qi + j]! - yl * w[wl + j]!;
      }
    }
  }
  return q;
}

/**
 * T (nb×nb row-major, upper triangular) with H_k0⋯H_{k0+nb−1} = I − Y T Yᵀ:
 * T_ll = τ_l and T[0:l, l] = −τ_l T[0:l, 0:l] Yᵀ y_l (LAPACK dlarft, forward, columnwise).
 */
function triangularFactor(y: Float64Array, m: number, nb: number, tau: Float64Array, k0: number): Float64Array {
  const t = new Float64Array(nb * nb);
  const col = new Float64Array(nb);
  for (let l = 0; l < nb; l++) {
    const tl = tau[k0 + l]!;
    t[l * nb + l] = tl;
    if (tl === 0) continue;
    for (let p = 0; p < l; p++) {
      let s = 0;
      for (let i = l; i < m; i++) s += y[p * m + i]! * y[l * m + i]!;
      col[p] = -tl * s;
    }
    for (let p = 0; p < l; p++) {
      let s = 0;
      for (let c = p; c < l; c++) s += t[p * nb + c]! * col[c]!;
      t[p * nb + l] = s;
    }
  }
  return t;
}
