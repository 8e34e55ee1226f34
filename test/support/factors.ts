/**
 * Kronecker-factor fixtures built without the library's products: a seeded generator, RᵀR by a
 * triple loop, and symmetric positive definite matrices (the tests of factors held as rows).
 */

/** A seeded uniform generator in [−0.5, 0.5). */
export function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31 - 0.5;
  };
}

/** RᵀR (n×n) for R m×n row-major, by a plain triple loop (independent of the library's products). */
export function gramLoop(r: Float64Array, m: number, n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let t = 0; t < m; t++) s += r[t * n + i]! * r[t * n + j]!;
    a[i * n + j] = s;
  }
  return a;
}

/** A symmetric positive definite n×n matrix BᵀB + 0.1 I, B drawn from `next`. */
export function spd(n: number, next: () => number): Float64Array {
  const g = gramLoop(Float64Array.from({ length: n * n }, next), n, n);
  for (let i = 0; i < n; i++) g[i * n + i]! += 0.1;
  return g;
}
