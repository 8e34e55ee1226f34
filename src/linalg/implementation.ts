/**
 * Which implementation the public linear-algebra functions use. The TypeScript kernels work
 * from the first call; `initLinalg` loads the Eigen WebAssembly module and switches to it.
 */
import { InvalidArgumentError } from '../errors.js';
import { checkOptions } from '../validation.js';
import { typescriptKernels } from './typescript/index.js';
import type { LinalgImplementation, LinalgInfo, LinalgKernels } from './types.js';
import { eigenKernels } from './wasm/kernels.js';
import { embeddedEigenBytes, environmentEigenBytes, instantiateEigen } from './wasm/loader.js';

/** Options of {@link initLinalg}. */
export interface InitLinalgOptions {
  /**
   * `true` (default): load the module embedded in the package, or in Node the file named by
   * the environment variable NNGEOMETRY_LINALG_WASM; if the embedded module cannot be
   * compiled here (no WebAssembly, or no SIMD128), stay on TypeScript and say why in
   * `fallbackReason`. `false`: use the TypeScript implementation. A `Uint8Array`: instantiate
   * these bytes (a build of wasm/eigen_linalg.cpp) and use them; failures reject.
   */
  wasm?: boolean | Uint8Array;
}

let active: LinalgKernels = typescriptKernels;
let eigen: { kernels: LinalgKernels; source: NonNullable<LinalgInfo['wasmSource']> } | undefined;
let defaultLoad: Promise<LinalgInfo> | undefined;
let fallbackReason: string | undefined;

/** The kernels the public functions dispatch to. */
export function activeKernels(): LinalgKernels {
  return active;
}

/**
 * Loads the Eigen WebAssembly module so that `eighSym`, `cholesky`, the solves and `gemm` use
 * it, and reports which implementation is now active. Safe to call many times and
 * concurrently: the default module is loaded once, and a call without bytes reuses whichever
 * module is already loaded.
 *
 * @example
 * const info = await initLinalg(); // { implementation: 'eigen-wasm', wasmSource: 'embedded' }
 */
export async function initLinalg(options: InitLinalgOptions = {}): Promise<LinalgInfo> {
  checkOptions(options, ['wasm'], 'initLinalg');
  const wasm = options.wasm ?? true;
  if (wasm === false) {
    active = typescriptKernels;
    return linalgInfo();
  }
  if (wasm instanceof Uint8Array) {
    const exports = await instantiateEigen(wasm, 'the bytes passed to initLinalg');
    eigen = { kernels: eigenKernels(exports), source: 'bytes' };
    active = eigen.kernels;
    fallbackReason = undefined;
    return linalgInfo();
  }
  if (wasm !== true) {
    throw new InvalidArgumentError(
      `initLinalg: option 'wasm' must be a boolean or a Uint8Array, received ${typeof wasm}`,
    );
  }
  if (eigen) {
    active = eigen.kernels;
    return linalgInfo();
  }
  defaultLoad ??= loadDefault();
  return defaultLoad;
}

async function loadDefault(): Promise<LinalgInfo> {
  try {
    const override = await environmentEigenBytes();
    if (override) {
      const exports = await instantiateEigen(override.bytes, `NNGEOMETRY_LINALG_WASM=${override.path}`);
      eigen = { kernels: eigenKernels(exports), source: 'environment' };
    } else if (typeof WebAssembly === 'undefined') {
      fallbackReason = 'WebAssembly is not available in this environment';
    } else {
      try {
        const exports = await instantiateEigen(embeddedEigenBytes(), 'the embedded module');
        eigen = { kernels: eigenKernels(exports), source: 'embedded' };
      } catch (error) {
        fallbackReason = `the embedded WebAssembly module failed to load (${String(error)})`;
      }
    }
  } finally {
    defaultLoad = undefined; // a failed override may be fixed and retried
  }
  if (eigen) {
    active = eigen.kernels;
    fallbackReason = undefined;
  }
  return linalgInfo();
}

/** Reports which implementation the linear-algebra functions currently use. */
export function linalgInfo(): LinalgInfo {
  const implementation: LinalgImplementation = active === typescriptKernels ? 'typescript' : 'eigen-wasm';
  const info: LinalgInfo = { implementation };
  if (eigen) info.wasmSource = eigen.source;
  if (implementation === 'typescript' && fallbackReason) info.fallbackReason = fallbackReason;
  return info;
}

/**
 * Switches the implementation the public functions use, for tests and benchmarks.
 * 'eigen-wasm' throws InvalidArgumentError unless `initLinalg` has loaded a module.
 */
export function useLinalgImplementation(impl: LinalgImplementation): void {
  if (impl === 'typescript') {
    active = typescriptKernels;
  } else if (impl === 'eigen-wasm') {
    if (!eigen) {
      throw new InvalidArgumentError(
        `useLinalgImplementation: 'eigen-wasm' is not loaded; await initLinalg() first` +
          (fallbackReason ? ` (it fell back to TypeScript because ${fallbackReason})` : ''),
      );
    }
    active = eigen.kernels;
  } else {
    throw new InvalidArgumentError(
      `useLinalgImplementation: argument 'impl' must be 'eigen-wasm' or 'typescript', received ${String(impl)}`,
    );
  }
}
