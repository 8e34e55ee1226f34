/**
 * Correlation heatmaps of a parameter-space matrix, as in NNGeometry's documentation pictures:
 * C_ij = |M_ij| / √(M_ii M_jj) ∈ [0, 1], coloured with viridis. Pure code shared by the HTML
 * report (encoded to PNG) and the browser demo (drawn on a canvas).
 */

/** Viridis (matplotlib, CC0) at 9 stops; linear interpolation in between. */
const VIRIDIS: ReadonlyArray<readonly [number, number, number]> = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

/** The viridis colour of t ∈ [0, 1] (clamped), as [r, g, b] bytes. */
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [VIRIDIS[i]!, VIRIDIS[i + 1]!];
  return [Math.round(a[0] + f * (b[0] - a[0])), Math.round(a[1] + f * (b[1] - a[1])), Math.round(a[2] + f * (b[2] - a[2]))];
}

/**
 * |M_ij| / √(M_ii M_jj) for a row-major d×d matrix; 0 where a diagonal entry is not positive
 * (a parameter the data never moves), so that such rows show as empty rather than NaN.
 */
export function correlationMatrix(values: ArrayLike<number>, d: number): Float32Array {
  if (values.length !== d * d) throw new Error(`correlationMatrix: expected ${d * d} values for d = ${d}, received ${values.length}`);
  const scale = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    const m = values[i * d + i]!;
    scale[i] = m > 0 ? 1 / Math.sqrt(m) : 0;
  }
  const out = new Float32Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) out[i * d + j] = Math.min(1, Math.abs(values[i * d + j]!) * scale[i]! * scale[j]!);
  }
  return out;
}

/** RGBA pixels (one per entry, row i = image row i) of a [0, 1] matrix in viridis. */
export function heatmapRGBA(correlation: ArrayLike<number>, d: number): Uint8ClampedArray {
  const px = new Uint8ClampedArray(d * d * 4);
  for (let k = 0; k < d * d; k++) {
    const [r, g, b] = viridis(correlation[k]!);
    px[4 * k] = r;
    px[4 * k + 1] = g;
    px[4 * k + 2] = b;
    px[4 * k + 3] = 255;
  }
  return px;
}
