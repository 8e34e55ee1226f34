/** Types shared by the float64 linear-algebra module. Matrices are row-major `Float64Array`s. */

/** Eigen-decomposition `A = V diag(values) Vᵀ` of a symmetric matrix. */
export interface SymmetricEigen {
  /** Eigenvalues in ascending order (length n). */
  values: Float64Array;
  /** Orthonormal eigenvectors, n×n row-major: column j is the eigenvector of `values[j]`. */
  vectors: Float64Array;
}

/** Which implementation computes the linear algebra. */
export type LinalgImplementation = 'eigen-wasm' | 'typescript';

/** What `initLinalg` / `linalgInfo` report. */
export interface LinalgInfo {
  /** The implementation the public functions currently use. */
  implementation: LinalgImplementation;
  /** Where the WebAssembly module came from, once one is loaded. */
  wasmSource?: 'embedded' | 'environment' | 'bytes';
  /** Why the TypeScript implementation is used although WebAssembly was requested. */
  fallbackReason?: string;
}

/**
 * The unchecked kernels one implementation provides. Arguments have been validated by the
 * public fronts, and n ≥ 1 (n = 0 is answered by the fronts).
 */
export interface LinalgKernels {
  eighSym(a: Float64Array, n: number): SymmetricEigen;
  /** eighSym by the QR-iteration route, where the implementation has a second route. */
  eighSymQR?(a: Float64Array, n: number): SymmetricEigen;
  /** Which route the last eighSym took, where the implementation has two. */
  lastEighRoute?(): 'divide-and-conquer' | 'qr-fallback';
  /** Returns L, or the first failing pivot (index and value) when A is not positive definite. */
  cholesky(a: Float64Array, n: number): Float64Array | { pivot: number; value: number };
  solveTriangularLower(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array;
  solveTriangularUpperT(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array;
  choleskySolve(l: Float64Array, n: number, b: Float64Array, nrhs: number): Float64Array;
  gemm(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array;
}
