/**
 * Float64 vector kernels on the host for the spectral tools: dot products, axpy, and
 * Gram–Schmidt orthogonalisation repeated twice ("twice is enough", Giraud et al. 2005), which
 * keeps a basis orthogonal to machine precision however many vectors it holds.
 */
export function dot(x: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  return s;
}

export function norm(x: Float64Array): number {
  return Math.sqrt(dot(x, x));
}

/** y ← y + a·x. */
export function axpy(y: Float64Array, a: number, x: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += a * x[i]!;
}

export function scale(x: Float64Array, a: number): void {
  for (let i = 0; i < x.length; i++) x[i]! *= a;
}

/**
 * Removes from `x` (in place) its components along the orthonormal `basis`, twice. Returns the
 * norm of what is left.
 */
export function orthogonalize(x: Float64Array, basis: readonly Float64Array[]): number {
  for (let pass = 0; pass < 2; pass++) for (const q of basis) axpy(x, -dot(x, q), q);
  return norm(x);
}

/** Σ_j c[j] · columns[j] (a new vector of length d). */
export function combine(columns: readonly Float64Array[], c: ArrayLike<number>, d: number): Float64Array {
  const out = new Float64Array(d);
  for (let j = 0; j < columns.length; j++) if (c[j] !== 0) axpy(out, c[j]!, columns[j]!);
  return out;
}

/**
 * An orthonormal basis of span(columns) by modified Gram–Schmidt twice, in float64, dropping
 * columns whose remaining norm is below `dropTol` times their original norm (rank deficiency).
 */
export function orthonormalBasis(columns: readonly Float64Array[], dropTol = 1e-10): Float64Array[] {
  const basis: Float64Array[] = [];
  for (const c of columns) {
    const x = Float64Array.from(c);
    const before = norm(x);
    if (before === 0) continue;
    const after = orthogonalize(x, basis);
    if (after <= dropTol * before) continue;
    scale(x, 1 / after);
    basis.push(x);
  }
  return basis;
}

/** Sample mean and standard error (std/√m, NaN for one sample) of `xs`. */
export function meanAndStandardError(xs: readonly number[]): { mean: number; standardError: number } {
  const m = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / m;
  if (m < 2) return { mean, standardError: NaN };
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (m - 1);
  return { mean, standardError: Math.sqrt(variance / m) };
}
