/**
 * The Eigen WebAssembly kernels behind the public fronts. Each call copies its inputs into the
 * module's memory, runs, copies the results out and frees its buffers, so no pointer outlives
 * a call. Views on `memory.buffer` are made only after the last allocation of a call: an
 * allocation may grow the memory, which detaches every earlier view.
 */
import { NNGeometryError } from '../../errors.js';
import type { LinalgKernels, SymmetricEigen } from '../types.js';
import type { EigenExports } from './loader.js';

/** Builds the kernels on an instantiated module. */
export function eigenKernels(eigen: EigenExports): LinalgKernels {
  /** Allocates one buffer per size (in float64 elements), runs `body`, frees them all. */
  function withBuffers<T>(fn: string, sizes: number[], body: (ptrs: number[]) => T): T {
    const ptrs: number[] = [];
    try {
      for (const size of sizes) {
        const bytes = 8 * Math.max(size, 1);
        // wasm32 addresses 4 GiB; malloc returns 0 when the memory cannot grow that far.
        const ptr = bytes < 2 ** 32 ? eigen.nn_malloc(bytes) >>> 0 : 0;
        if (ptr === 0) {
          throw new NNGeometryError(
            `${fn}: cannot allocate ${bytes} bytes in the WebAssembly memory (wasm32 is limited to 4 GiB); ` +
              `use the TypeScript implementation (useLinalgImplementation('typescript')) or smaller matrices`,
          );
        }
        ptrs.push(ptr);
      }
      return body(ptrs);
    } finally {
      for (const ptr of ptrs) eigen.nn_free(ptr);
    }
  }
  const view = (ptr: number, length: number): Float64Array => new Float64Array(eigen.memory.buffer, ptr, length);

  const solve = (
    name: 'nn_trsm_lower' | 'nn_trsm_lower_t' | 'nn_llt_solve',
    l: Float64Array, n: number, b: Float64Array, nrhs: number,
  ): Float64Array =>
    withBuffers(name, [n * n, n * nrhs], ([pl, pb]) => {
      view(pl!, n * n).set(l);
      view(pb!, n * nrhs).set(b);
      eigen[name](pl!, n, pb!, nrhs);
      return view(pb!, n * nrhs).slice();
    });

  const eigh = (name: 'nn_eigh' | 'nn_eigh_qr', a: Float64Array, n: number): SymmetricEigen =>
    withBuffers('eighSym', [n * n, n, n * n], ([pa, pw, pv]) => {
      view(pa!, n * n).set(a);
      if (eigen[name]!(pa!, n, pw!, pv!) !== 0) {
        throw new NNGeometryError(`eighSym: the QR iterations did not converge for n = ${n}`);
      }
      return { values: view(pw!, n).slice(), vectors: view(pv!, n * n).slice() };
    });

  return {
    eighSym: (a, n) => eigh('nn_eigh', a, n),
    ...(eigen.nn_eigh_qr ? { eighSymQR: (a: Float64Array, n: number) => eigh('nn_eigh_qr', a, n) } : {}),
    ...(eigen.nn_eigh_route ? { lastEighRoute: () => (eigen.nn_eigh_route!() === 0 ? 'divide-and-conquer' as const : 'qr-fallback' as const) } : {}),
    cholesky(a: Float64Array, n: number) {
      return withBuffers('cholesky', [n * n, 1], ([pa, pp]) => {
        view(pa!, n * n).set(a);
        const pivot = eigen.nn_llt(pa!, n, pp!);
        if (pivot >= 0) return { pivot, value: view(pp!, 1)[0]! };
        return view(pa!, n * n).slice();
      });
    },
    solveTriangularLower: (l, n, b, nrhs) => solve('nn_trsm_lower', l, n, b, nrhs),
    solveTriangularUpperT: (l, n, b, nrhs) => solve('nn_trsm_lower_t', l, n, b, nrhs),
    choleskySolve: (l, n, b, nrhs) => solve('nn_llt_solve', l, n, b, nrhs),
    gemm(a: Float64Array, m: number, k: number, b: Float64Array, n: number): Float64Array {
      return withBuffers('gemm', [m * k, k * n, m * n], ([pa, pb, pc]) => {
        view(pa!, m * k).set(a);
        view(pb!, k * n).set(b);
        eigen.nn_gemm(pa!, m, k, pb!, n, pc!);
        return view(pc!, m * n).slice();
      });
    },
  };
}
