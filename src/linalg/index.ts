/**
 * Float64 dense linear algebra on row-major `Float64Array`s: symmetric eigen-decomposition,
 * Cholesky factorisation and solves, matrix product. Backed by Eigen 3.4 compiled to
 * WebAssembly once `initLinalg()` resolves, by plain TypeScript before (and where WebAssembly
 * is unavailable). The TypeScript implementations are also exported under `*TS` names.
 */
export { cholesky } from './cholesky.js';
export { eighSym } from './eigh.js';
export { gemm } from './gemm.js';
export { initLinalg, linalgInfo, useLinalgImplementation } from './implementation.js';
export type { InitLinalgOptions } from './implementation.js';
export { choleskySolve, solveTriangularLower, solveTriangularUpperT } from './solve.js';
export type { LinalgImplementation, LinalgInfo, SymmetricEigen } from './types.js';
export {
  choleskySolveTS,
  choleskyTS,
  eighSymTS,
  gemmTS,
  solveTriangularLowerTS,
  solveTriangularUpperTTS,
} from './typescript/index.js';
