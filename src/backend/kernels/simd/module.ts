/**
 * Loader of nngeometry's float32 WebAssembly SIMD128 kernels (wasm/simd_kernels.c, built by
 * wasm/build-simd.sh). The module is instantiated synchronously (`new WebAssembly.Module` /
 * `new WebAssembly.Instance`) on first use, so that tfjs kernel functions, which are synchronous,
 * can call it. It has its own growable memory: every call copies its operands in from the tfjs
 * heap, runs, and copies the result out; buffers are laid out from `__heap_base` on and reused by
 * the next call (the memory keeps its high-water size until `releaseSimdMemory`).
 *
 * On Node's main thread the heavy kernels also use the machine's other cores
 * (`setSimdThreads`, default: every core, at most 8): the threaded build runs on a shared memory
 * that helper threads (threads.ts) instantiate too, and a call splits its output between them.
 * The split is bit-identical to one thread. Elsewhere (browsers, worker threads, no
 * SharedArrayBuffer) the single-thread build runs.
 *
 * Where WebAssembly SIMD is unavailable, or synchronous compilation is refused (browsers refuse
 * it on the main thread for modules over 4 KB: call `await preloadSimdKernels()` first there),
 * `simdKernels()` returns null and callers keep their plain JS / XNNPACK code.
 */
import { SIMD_KERNELS_THREADS_WASM_BASE64, SIMD_KERNELS_WASM_BASE64 } from './simd-module.generated.js';
import { SIMD_THREAD_STACK_BYTES, SimdThreadError, SimdThreads, availableCores, onNodeMainThread } from './threads.js';

/** The raw exports of simd_kernels.wasm; pointers are byte offsets into `memory`. */
export interface SimdExports {
  /** The module's own memory (single-thread build; the threaded build imports a shared one). */
  memory?: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  nn_zero(dst: number, n: number): void;
  nn_im2col_mk(x: number, geom: number, m0: number, m1: number, out: number): void;
  nn_im2col_km(x: number, geom: number, out: number): void;
  nn_col2im_add(cols: number, geom: number, m0: number, m1: number, dx: number): void;
  nn_conv_filter_grad_work(geom: number): number;
  nn_conv_filter_grad_blocks(geom: number): number;
  nn_add_partials(p: number, count: number, n: number, out: number): void;
  nn_ssyrk_blocks(m: number, n: number): number;
  nn_max_blocks(rows: number, cols: number): number;
  nn_ssyrk_add_partials(p: number, count: number, n: number, c: number, mirror: number): void;
  nn_conv_input_grad_work(geom: number): number;
  nn_conv_forward_work(geom: number): number;
  /** Float64 work (doubles) per slot of nn_dgemm for n columns and depth k. */
  nn_dgemm_work(n: number, k: number): number;
}

/**
 * The kernels that split their work into chunks (their last three arguments, `chunk`, `chunks`
 * and the work `slot`, are added by `SimdModule.run`), with their other arguments; pointers are
 * byte offsets, and `work` holds one slot per thread of the split.
 */
export interface SimdPartedKernels {
  nn_sgemm: [m: number, n: number, k: number, a: number, b: number, c: number, transA: number, transB: number, accumulate: number, work: number];
  nn_sgemm_batch: [count: number, m: number, n: number, k: number, a: number, strideA: number, b: number, strideB: number, c: number, strideC: number, transA: number, transB: number, work: number];
  nn_ssyrk: [m: number, n: number, x: number, c: number, mirror: number, work: number];
  nn_ssyrk_rows: [m: number, n: number, x: number, partials: number, work: number];
  nn_conv_filter_grad: [x: number, dy: number, geom: number, partials: number, work: number];
  nn_conv_input_grad: [dy: number, w: number, geom: number, dx: number, work: number];
  nn_conv_forward: [x: number, w: number, bias: number, geom: number, relu: number, y: number, work: number];
  nn_dgemm: [m: number, n: number, k: number, a: number, lda: number, b: number, ldb: number, c: number, ldc: number, accumulate: number, work: number];
}

const PARTED_KERNELS = ['nn_sgemm', 'nn_sgemm_batch', 'nn_ssyrk', 'nn_ssyrk_rows', 'nn_conv_filter_grad', 'nn_conv_input_grad', 'nn_conv_forward', 'nn_dgemm'] as const;

const REQUIRED_FUNCTIONS = [
  'nn_zero', 'nn_im2col_mk', 'nn_im2col_km', 'nn_col2im_add', 'nn_add_partials', 'nn_max_blocks', 'nn_ssyrk_blocks', 'nn_ssyrk_add_partials',
  'nn_conv_filter_grad_work', 'nn_conv_filter_grad_blocks', 'nn_conv_input_grad_work', 'nn_conv_forward_work', 'nn_dgemm_work', ...PARTED_KERNELS,
] as const;

/** How a kernel call is split: `chunks` pieces of output taken by `threads` threads. */
export interface SimdSplit {
  /** Disjoint pieces of the output (results do not depend on it, nor on `threads`). */
  chunks: number;
  /** Threads that take them (1 + helpers); the call's work buffer needs one slot per thread. */
  threads: number;
}

/** Chunks per thread of a split call: enough that a stalled thread delays a small share. */
export const SIMD_CHUNKS_PER_THREAD = 4;

/**
 * Floating-point operations below which a kernel runs on one thread: waking the helpers and
 * waiting for them costs tens of microseconds. Measured on 2 idle cores (`npm run
 * bench:threads`): a 128³ GEMM (4.2 MFLOP) ran 0.72× as fast on 2 threads, 192³ (14 MFLOP) 1.48×.
 */
export const SIMD_THREAD_MIN_FLOPS = 8e6;

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
  /** The memory every pointer refers to (shared with the helper threads when there are any). */
  readonly memory: WebAssembly.Memory;
  private readonly heapBase: number;

  /**
   * `compiled`: the module it was instantiated from, to instantiate it afresh; `memory`: the
   * shared memory of a threaded build; `threads`: its helpers, whose stacks take the
   * `threads.helpers · SIMD_THREAD_STACK_BYTES` bytes from __heap_base on.
   */
  constructor(readonly compiled: WebAssembly.Module, instance: WebAssembly.Instance, memory?: WebAssembly.Memory, private threads: SimdThreads | null = null) {
    this.exports = instance.exports as unknown as SimdExports;
    const own = this.exports.memory;
    if (memory == null && own == null) throw new Error('the SIMD kernel module has no memory');
    this.memory = memory ?? own!;
    this.heapBase = align(Number(this.exports.__heap_base.value)) + (threads?.helpers ?? 0) * SIMD_THREAD_STACK_BYTES;
  }

  /**
   * The module to lay out `floats` on: this one, or, when this one runs on a shared memory (helper
   * threads) that the buffers would grow past SIMD_MEMORY_RETAIN_BYTES, a single-thread module
   * with its own memory, given back by `trimSimdMemory` at the end of the call. A shared memory
   * can only be freed once every thread has let go of it, so it is never grown past what it
   * keeps; the one call that needs more runs on one thread.
   */
  fit(floats: number[]): SimdModule {
    if (this.threads == null) return this;
    let end = this.heapBase;
    for (const n of floats) end = align(end + 4 * Math.max(n, 0));
    if (end <= Math.max(SIMD_MEMORY_RETAIN_BYTES, this.memoryBytes())) return this;
    overflowCompiled ??= new WebAssembly.Module(embeddedSimdBytes() as Uint8Array<ArrayBuffer>);
    overflow ??= fromModule(overflowCompiled);
    return overflow;
  }

  /** Bytes of the module's memory (its high-water mark: wasm memories never shrink). */
  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Helper threads ready to take parts of a kernel now (0 on a single-thread build). */
  helperThreads(): number {
    return this.threads?.ready() ?? 0;
  }

  /**
   * Threads for a kernel of `flops` floating-point operations: 1 + the ready helpers, at most
   * `setSimdThreads`' count (and any `capSimdThreads`), and 1 below SIMD_THREAD_MIN_FLOPS.
   */
  threadsFor(flops: number): number {
    if (this.threads == null || flops < SIMD_THREAD_MIN_FLOPS) return 1;
    return Math.max(1, Math.min(threadCount, ...threadCaps, 1 + this.threads.ready()));
  }

  /**
   * Runs a kernel's `split.chunks` chunks on `split.threads` threads (this one and helpers; the
   * work buffer must hold `split.threads` slots). Bit-identical for any split. Returns the
   * chunks this thread ran (the helpers ran the rest).
   */
  run<K extends keyof SimdPartedKernels>(name: K, args: SimdPartedKernels[K], split: SimdSplit = { chunks: 1, threads: 1 }): number {
    const fn = (this.exports as unknown as Record<K, (...a: number[]) => void>)[name];
    const { chunks } = split;
    if (split.threads <= 1 || this.threads == null) {
      for (let k = 0; k < chunks; k++) fn(...args, k, chunks, 0);
      return chunks;
    }
    let own = 0;
    try {
      this.threads.run(name, args, chunks, split.threads, (k) => {
        own++;
        fn(...args, k, chunks, 0);
      });
      return own;
    } catch (e) {
      if (!(e instanceof SimdThreadError)) throw e;
      // A helper died or trapped: its part is missing, and the same inputs on one thread
      // would hit the same trap if it was the kernel's. Stop using helpers from now on.
      this.threads.dispose();
      this.threads = null;
      throw new Error(`nngeometry SIMD kernel ${name}: ${e.message}; helper threads are now off`, { cause: e });
    }
  }

  /** The helper threads (null on a single-thread build), for `releaseSimdMemory`. */
  get helpers(): SimdThreads | null {
    return this.threads;
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
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    return ptrs;
  }

  /** A float32 view of `length` values at byte offset `ptr` (valid until the memory grows). */
  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  /** Writes a convolution geometry at `ptr` (15 int32 values). */
  writeGeometry(ptr: number, g: SimdConvGeometry): void {
    new Int32Array(this.memory.buffer, ptr, 15).set([
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

/** The embedded module's bytes (`threaded`: the build on an imported shared memory). */
export function embeddedSimdBytes(threaded = false): Uint8Array {
  const binary = atob(threaded ? SIMD_KERNELS_THREADS_WASM_BASE64 : SIMD_KERNELS_WASM_BASE64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Instantiates a build of simd_kernels.c synchronously and checks its exports. A threaded build
 * (one that imports its memory) gets a fresh shared memory and `helpers` helper threads.
 */
export function instantiateSimd(bytes: Uint8Array, helpers = 0): SimdModule {
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  return fromModule(module, helpers);
}

function importsMemory(module: WebAssembly.Module): boolean {
  return WebAssembly.Module.imports(module).some((i) => i.kind === 'memory');
}

// Pages a threaded build's shared memory starts with (the module's data and stack take 2).
const SHARED_INITIAL_PAGES = 64;

/**
 * Instantiates `module`; a threaded build on a new shared memory, with `helpers` helper threads,
 * or with `keep`'s helpers moved onto the new memory when their number matches.
 */
function fromModule(module: WebAssembly.Module, helpers = 0, keep: SimdThreads | null = null): SimdModule {
  const threaded = importsMemory(module);
  const memory = threaded ? new WebAssembly.Memory({ initial: SHARED_INITIAL_PAGES, maximum: 65536, shared: true }) : undefined;
  const instance = new WebAssembly.Instance(module, memory != null ? { env: { memory } } : {});
  const exports = instance.exports as Record<string, unknown>;
  if ((!threaded && !(exports['memory'] instanceof WebAssembly.Memory)) || !(exports['__heap_base'] instanceof WebAssembly.Global)) {
    throw new Error('the SIMD kernel module exports no memory or __heap_base (expected a build of wasm/simd_kernels.c)');
  }
  for (const name of REQUIRED_FUNCTIONS) {
    if (typeof exports[name] !== 'function') {
      throw new Error(`the SIMD kernel module lacks the function export '${name}' (expected a build of wasm/simd_kernels.c)`);
    }
  }
  if (!threaded || helpers < 1) {
    keep?.dispose();
    return new SimdModule(module, instance, memory);
  }
  if (!(exports['__stack_pointer'] instanceof WebAssembly.Global)) {
    throw new Error('the threaded SIMD kernel module exports no __stack_pointer (expected the threaded build of wasm/simd_kernels.c)');
  }
  // The helpers' stacks sit from __heap_base on; the memory must hold them before they start.
  const stackBase = align(Number((exports['__heap_base'] as WebAssembly.Global).value));
  const end = stackBase + helpers * SIMD_THREAD_STACK_BYTES;
  if (end > memory!.buffer.byteLength) memory!.grow(Math.ceil((end - memory!.buffer.byteLength) / PAGE));
  let threads: SimdThreads | null;
  if (keep != null && keep.helpers === helpers) {
    keep.reload(memory!);
    threads = keep;
  } else {
    keep?.dispose();
    threads = SimdThreads.start(module, memory!, helpers, stackBase, PARTED_KERNELS);
  }
  return new SimdModule(module, instance, memory, threads);
}

type State =
  | { kind: 'unloaded' }
  | { kind: 'ready'; module: SimdModule; source: 'embedded' | 'bytes' }
  | { kind: 'unavailable'; reason: string };

let state: State = { kind: 'unloaded' };
let enabled = true;

/** The most threads `setSimdThreads` accepts. */
export const SIMD_MAX_THREADS = 64;

/**
 * Threads a kernel may use by default: `NNGEOMETRY_SIMD_THREADS` when set; on Node's main thread
 * every core, at most 8; elsewhere 1 (worker threads of the library's own pools, browsers).
 */
function defaultThreads(): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.['NNGEOMETRY_SIMD_THREADS'];
  const fallback = onNodeMainThread() ? Math.max(1, Math.min(availableCores(), 8)) : 1;
  if (env != null && env !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 1 && n <= SIMD_MAX_THREADS) return n;
    // Read at import, where throwing would take the whole library down: say it once instead.
    console.warn(`nngeometry: NNGEOMETRY_SIMD_THREADS='${env}' is not an integer in [1, ${SIMD_MAX_THREADS}]; ` +
      `the SIMD kernels use ${fallback} thread(s). Set it to a count, unset it, or call setSimdThreads(n).`);
  }
  return fallback;
}

let threadCount = defaultThreads();

/** Caps in force (capSimdThreads), each a count of threads. */
const threadCaps: number[] = [];

/**
 * Caps the threads of every SIMD kernel at `threads` until the returned function is called
 * (the helpers stay started). For passes that already use each core for a share of the data
 * (`FIM({ workers })`), so that this thread's share does not take a second core as well.
 */
export function capSimdThreads(threads: number): () => void {
  threadCaps.push(threads);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    threadCaps.splice(threadCaps.indexOf(threads), 1);
  };
}

function sharedMemorySupported(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

function load(): State {
  if (!webAssemblySimdSupported()) return { kind: 'unavailable', reason: 'this WebAssembly engine has no SIMD128' };
  if (threadCount > 1 && onNodeMainThread() && sharedMemorySupported()) {
    try {
      return { kind: 'ready', module: instantiateSimd(embeddedSimdBytes(true), threadCount - 1), source: 'embedded' };
    } catch {
      // No threads here after all: the single-thread build below.
    }
  }
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
  /** Threads a kernel may use (`setSimdThreads`). */
  threads: number;
  /** Threads a large kernel uses now: 1 + the helper threads that have started (0 when unavailable). */
  threadsRunning: number;
} {
  if (state.kind === 'unloaded' && enabled) state = load();
  if (state.kind === 'ready') {
    return { enabled, available: true, source: state.source, memoryBytes: state.module.memoryBytes(), threads: threadCount, threadsRunning: 1 + Math.min(threadCount - 1, state.module.helperThreads()) };
  }
  return { enabled, available: false, memoryBytes: 0, threads: threadCount, threadsRunning: 0, ...(state.kind === 'unavailable' ? { reason: state.reason } : {}) };
}

/** Turns the SIMD kernels on or off (off: every caller runs its plain JS / XNNPACK code). */
export function setSimdKernelsEnabled(on: boolean): void {
  enabled = on;
}

/**
 * Sets how many threads one SIMD kernel may use (1 to SIMD_MAX_THREADS; default: every core of
 * the machine, at most 8, on Node's main thread; 1 elsewhere), including the large float64
 * products of the WebAssembly eigensolver (`eighSym`, gemm_f64.ts). Results do not depend on it:
 * the kernels split their output, never a sum. Helper threads start in the background, so the first
 * kernels after a change may still run on one thread. Threads need Node ≥ 20.16 (or 22.3) and
 * SharedArrayBuffer; elsewhere the count is kept but kernels run on one thread.
 *
 * ```ts
 * setSimdThreads(1); // e.g. when the application runs its own worker per core
 * ```
 */
export function setSimdThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > SIMD_MAX_THREADS) {
    throw new RangeError(`setSimdThreads: threads must be an integer in [1, ${SIMD_MAX_THREADS}], got ${threads}`);
  }
  if (threads === threadCount) return;
  threadCount = threads;
  // The next use loads the build and the helpers that this count needs.
  if (state.kind === 'ready' && state.source === 'embedded') {
    state.module.helpers?.dispose();
    state = { kind: 'unloaded' };
  }
}

/** Threads a SIMD kernel may use (`setSimdThreads`). */
export function simdThreads(): number {
  return threadCount;
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
 * Uses another build of wasm/simd_kernels.c (e.g. a fresh CI build; a threaded build gets
 * `setSimdThreads` − 1 helpers) instead of the embedded one; `bytes` undefined goes back to the
 * embedded module (loaded again on next use).
 */
export function useSimdModuleBytes(bytes: Uint8Array | undefined): void {
  if (state.kind === 'ready') state.module.helpers?.dispose();
  state = bytes == null ? { kind: 'unloaded' } : { kind: 'ready', module: instantiateSimd(bytes, threadCount - 1), source: 'bytes' };
}

/**
 * Bytes of module memory kept between calls: a call that needed more gives its memory back when
 * it ends (`trimSimdMemory`), so one large convolution does not pin a second copy of its operands
 * for the life of the process. Re-instantiating costs well under a millisecond.
 */
export const SIMD_MEMORY_RETAIN_BYTES = 64 * 1024 * 1024;

/** The single-thread module of the call in progress that did not fit the shared memory (`fit`). */
let overflow: SimdModule | null = null;

/**
 * The single-thread build for such calls, compiled once (each call instantiates it on a fresh
 * memory): compiling per call decoded and compiled the module again every time, and its
 * functions started on V8's baseline code each time.
 */
let overflowCompiled: WebAssembly.Module | null = null;

/**
 * Releases the module memory if it grew past SIMD_MEMORY_RETAIN_BYTES, and any single-thread
 * module a call used instead of the shared one (called after each kernel).
 */
export function trimSimdMemory(): void {
  overflow = null;
  if (state.kind === 'ready' && state.module.memoryBytes() > SIMD_MEMORY_RETAIN_BYTES) releaseSimdMemory();
}

/**
 * Drops the instance and its memory; the next use instantiates the same module afresh (helper
 * threads move to the new memory).
 */
export function releaseSimdMemory(): void {
  if (state.kind !== 'ready') return;
  const helpers = state.module.helpers;
  state = { kind: 'ready', module: fromModule(state.module.compiled, helpers?.helpers ?? 0, helpers), source: state.source };
}
