/**
 * Loader of nngeometry's float32 WebAssembly SIMD128 kernels (wasm/simd_kernels.c, built by
 * wasm/build-simd.sh). The module is instantiated synchronously (`new WebAssembly.Module` /
 * `new WebAssembly.Instance`) on first use, so that tfjs kernel functions, which are synchronous,
 * can call it. It has no imports and its own growable memory: every call copies its operands in
 * from the tfjs heap, runs, and copies the result out; buffers are laid out from `__heap_base` on
 * and reused by the next call (the memory keeps its high-water size until `releaseSimdMemory`).
 *
 * Where WebAssembly SIMD is unavailable, or synchronous compilation is refused (browsers refuse
 * it on the main thread for modules over 4 KB: call `await preloadSimdKernels()` first there),
 * `simdKernels()` returns null and callers keep their plain JS / XNNPACK code.
 */
import { SIMD_KERNELS_WASM_BASE64 } from './simd-module.generated.js';

/** The raw exports of simd_kernels.wasm; pointers are byte offsets into `memory`. */
export interface SimdExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  nn_zero(dst: number, n: number): void;
  nn_im2col_mk(x: number, geom: number, m0: number, m1: number, out: number): void;
  nn_im2col_km(x: number, geom: number, out: number): void;
  nn_col2im_add(cols: number, geom: number, m0: number, m1: number, dx: number): void;
  nn_sgemm(m: number, n: number, k: number, a: number, b: number, c: number, transA: number, transB: number, accumulate: number, work: number): void;
  nn_ssyrk(m: number, n: number, x: number, c: number, mirror: number, work: number): void;
  nn_conv_filter_grad_work(geom: number): number;
  nn_conv_filter_grad(x: number, dy: number, geom: number, dw: number, work: number): void;
  nn_conv_input_grad_work(geom: number): number;
  nn_conv_input_grad(dy: number, w: number, geom: number, dx: number, work: number): void;
}

const REQUIRED_FUNCTIONS = [
  'nn_zero', 'nn_im2col_mk', 'nn_im2col_km', 'nn_col2im_add', 'nn_sgemm', 'nn_ssyrk',
  'nn_conv_filter_grad_work', 'nn_conv_filter_grad', 'nn_conv_input_grad_work', 'nn_conv_input_grad',
] as const;

/** Depth of the packed block of B in nn_sgemm / nn_ssyrk (KC in simd_kernels.c). */
export const PACK_DEPTH = 256;

/** Convolution geometry in the order of simd_kernels.c's Geom struct. */
export interface SimdConvGeometry {
  n: number; h: number; w: number; c: number;
  oh: number; ow: number; fh: number; fw: number;
  sh: number; sw: number; dh: number; dw: number;
  top: number; left: number; co: number;
}

const PAGE = 65536;
const ALIGN = 16;

/** An instantiated module plus a bump layout of its memory, reset by every call. */
export class SimdModule {
  readonly exports: SimdExports;
  private readonly heapBase: number;

  /** `compiled`: the module it was instantiated from, to instantiate it afresh. */
  constructor(readonly compiled: WebAssembly.Module, instance: WebAssembly.Instance) {
    this.exports = instance.exports as unknown as SimdExports;
    this.heapBase = align(Number(this.exports.__heap_base.value));
  }

  /** Bytes of the module's memory (its high-water mark: wasm memories never shrink). */
  memoryBytes(): number {
    return this.exports.memory.buffer.byteLength;
  }

  /**
   * Byte offsets of consecutive 16-byte-aligned buffers of `floats[i]` float32 values each, from
   * __heap_base on, growing the memory if needed. Earlier layouts are overwritten: one per call.
   * Take views on the memory only after this (growing detaches earlier views).
   */
  layout(floats: number[]): number[] {
    const ptrs: number[] = [];
    let end = this.heapBase;
    for (const n of floats) {
      ptrs.push(end);
      end = align(end + 4 * Math.max(n, 0));
    }
    // wasm32 addresses at most 4 GiB (65536 pages).
    if (end > 2 ** 32) throw new RangeError(`nngeometry SIMD kernels: ${end} bytes exceed the 4 GiB of wasm32 memory`);
    const have = this.exports.memory.buffer.byteLength;
    if (end > have) this.exports.memory.grow(Math.ceil((end - have) / PAGE));
    return ptrs;
  }

  /** A float32 view of `length` values at byte offset `ptr` (valid until the memory grows). */
  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.exports.memory.buffer, ptr, length);
  }

  /** Writes a convolution geometry at `ptr` (15 int32 values). */
  writeGeometry(ptr: number, g: SimdConvGeometry): void {
    new Int32Array(this.exports.memory.buffer, ptr, 15).set([
      g.n, g.h, g.w, g.c, g.oh, g.ow, g.fh, g.fw, g.sh, g.sw, g.dh, g.dw, g.top, g.left, g.co,
    ]);
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/** Float32 values of a geometry record (15 int32, rounded up to a 16-byte slot). */
export const GEOMETRY_FLOATS = 16;

// A minimal module using a SIMD instruction (v128.const, drop): validates only where SIMD128 is supported.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 23, 1, 21, 0, 253, 12,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 26, 11,
]);

/** Whether this WebAssembly engine supports SIMD128. */
export function webAssemblySimdSupported(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The embedded module's bytes. */
export function embeddedSimdBytes(): Uint8Array {
  const binary = atob(SIMD_KERNELS_WASM_BASE64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Instantiates a build of simd_kernels.c synchronously and checks its exports. */
export function instantiateSimd(bytes: Uint8Array): SimdModule {
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  return fromModule(module);
}

function fromModule(module: WebAssembly.Module): SimdModule {
  const instance = new WebAssembly.Instance(module, {});
  const exports = instance.exports as Record<string, unknown>;
  if (!(exports['memory'] instanceof WebAssembly.Memory) || !(exports['__heap_base'] instanceof WebAssembly.Global)) {
    throw new Error('the SIMD kernel module exports no memory or __heap_base (expected a build of wasm/simd_kernels.c)');
  }
  for (const name of REQUIRED_FUNCTIONS) {
    if (typeof exports[name] !== 'function') {
      throw new Error(`the SIMD kernel module lacks the function export '${name}' (expected a build of wasm/simd_kernels.c)`);
    }
  }
  return new SimdModule(module, instance);
}

type State =
  | { kind: 'unloaded' }
  | { kind: 'ready'; module: SimdModule; source: 'embedded' | 'bytes' }
  | { kind: 'unavailable'; reason: string };

let state: State = { kind: 'unloaded' };
let enabled = true;

function load(): State {
  if (!webAssemblySimdSupported()) return { kind: 'unavailable', reason: 'this WebAssembly engine has no SIMD128' };
  try {
    return { kind: 'ready', module: instantiateSimd(embeddedSimdBytes()), source: 'embedded' };
  } catch (e) {
    return { kind: 'unavailable', reason: `instantiation failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * The SIMD kernel module, instantiated on first call; null when disabled (`setSimdKernelsEnabled`)
 * or unavailable (see `simdKernelsInfo().reason`), in which case callers use their plain code.
 */
export function simdKernels(): SimdModule | null {
  if (!enabled) return null;
  if (state.kind === 'unloaded') state = load();
  return state.kind === 'ready' ? state.module : null;
}

/** Whether the SIMD kernels are in use, and why not. */
export function simdKernelsInfo(): {
  /** Whether the kernels may be used (`setSimdKernelsEnabled`, default true). */
  enabled: boolean;
  /** Whether the WebAssembly SIMD module loaded and the kernels run. */
  available: boolean;
  /** Where the module came from: embedded in the package, or bytes given to the loader. */
  source?: 'embedded' | 'bytes';
  /** Why the module is unavailable (no WebAssembly SIMD, a failed self-test, ...). */
  reason?: string;
  /** Bytes of WebAssembly memory the module holds (0 when unavailable). */
  memoryBytes: number;
} {
  if (state.kind === 'unloaded' && enabled) state = load();
  if (state.kind === 'ready') return { enabled, available: true, source: state.source, memoryBytes: state.module.memoryBytes() };
  return { enabled, available: false, memoryBytes: 0, ...(state.kind === 'unavailable' ? { reason: state.reason } : {}) };
}

/** Turns the SIMD kernels on or off (off: every caller runs its plain JS / XNNPACK code). */
export function setSimdKernelsEnabled(on: boolean): void {
  enabled = on;
}

/**
 * Compiles the module asynchronously, for browsers' main threads, which refuse synchronous
 * compilation of modules over 4 KB. Resolves to whether the kernels are available.
 */
export async function preloadSimdKernels(): Promise<boolean> {
  if (state.kind === 'ready') return true;
  if (!webAssemblySimdSupported()) {
    state = { kind: 'unavailable', reason: 'this WebAssembly engine has no SIMD128' };
    return false;
  }
  try {
    const module = await WebAssembly.compile(embeddedSimdBytes() as Uint8Array<ArrayBuffer>);
    state = { kind: 'ready', module: fromModule(module), source: 'embedded' };
  } catch (e) {
    state = { kind: 'unavailable', reason: `instantiation failed: ${e instanceof Error ? e.message : String(e)}` };
  }
  return state.kind === 'ready';
}

/**
 * Uses another build of wasm/simd_kernels.c (e.g. a fresh CI build) instead of the embedded one;
 * `bytes` undefined goes back to the embedded module (loaded again on next use).
 */
export function useSimdModuleBytes(bytes: Uint8Array | undefined): void {
  state = bytes == null ? { kind: 'unloaded' } : { kind: 'ready', module: instantiateSimd(bytes), source: 'bytes' };
}

/**
 * Bytes of module memory kept between calls: a call that needed more gives its memory back when
 * it ends (`trimSimdMemory`), so one large convolution does not pin a second copy of its operands
 * for the life of the process. Re-instantiating costs well under a millisecond.
 */
export const SIMD_MEMORY_RETAIN_BYTES = 64 * 1024 * 1024;

/** Releases the module memory if it grew past SIMD_MEMORY_RETAIN_BYTES (called after each kernel). */
export function trimSimdMemory(): void {
  if (state.kind === 'ready' && state.module.memoryBytes() > SIMD_MEMORY_RETAIN_BYTES) releaseSimdMemory();
}

/** Drops the instance and its memory; the next use instantiates the same module afresh. */
export function releaseSimdMemory(): void {
  if (state.kind !== 'ready') return;
  state = { kind: 'ready', module: fromModule(state.module.compiled), source: state.source };
}
