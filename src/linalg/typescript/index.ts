/** The plain-TypeScript implementation: the test oracle, and the fallback before `initLinalg`. */
import type { LinalgKernels } from '../types.js';
import { choleskyKernel } from './cholesky.js';
import { eighSymKernel } from './eigh.js';
import { gemmKernel } from './gemm.js';
import { backwardTransposedKernel, forwardKernel } from './triangular.js';

export { choleskyTS } from './cholesky.js';
export { eighSymTS } from './eigh.js';
export { gemmTS } from './gemm.js';
export { choleskySolveTS, solveTriangularLowerTS, solveTriangularUpperTTS } from './triangular.js';

/** The TypeScript kernels behind the public fronts. */
export const typescriptKernels: LinalgKernels = {
  eighSym: eighSymKernel,
  cholesky: choleskyKernel,
  solveTriangularLower: (l, n, b, nrhs) => forwardKernel(l, n, b.slice(), nrhs),
  solveTriangularUpperT: (l, n, b, nrhs) => backwardTransposedKernel(l, n, b.slice(), nrhs),
  choleskySolve: (l, n, b, nrhs) => backwardTransposedKernel(l, n, forwardKernel(l, n, b.slice(), nrhs), nrhs),
  gemm: gemmKernel,
};
