/**
 * Helper threads for the SIMD kernels (Node): each instantiates the threaded build of
 * wasm/simd_kernels.c on the main thread's shared WebAssembly memory, with its own stack, and then
 * waits on a control block for work. A kernel call is split into chunks (disjoint pieces of its
 * output, bit-identical to the single-thread result whatever their number: see the comment at the
 * top of simd_kernels.c) that the calling thread and the helpers take from a shared counter, so a
 * helper the OS does not schedule delays one chunk, not a fixed share. The caller then blocks
 * (`Atomics.wait`) until every helper has finished its last chunk, which keeps the kernels
 * synchronous, as tfjs kernel functions must be.
 *
 * Only Node's main thread starts helpers by default (`process.getBuiltinModule` gives
 * `node:worker_threads` synchronously; no bundler sees the import): the library's own worker
 * threads (`FIM({ workers })`, the distributed compute threads) already use one core each.
 * Helpers are `unref()`'d, so they never keep a process alive.
 */
import type { Worker } from 'node:worker_threads';

/** The slots of the control block (an Int32Array over a SharedArrayBuffer). */
const SEQUENCE = 0; // bumped by the caller for every job
const OPERATION = 1; // index of the function, or one of the commands below
const CHUNKS = 2; // chunks of the current job
const NEXT = 3; // the next chunk to take (Atomics.add)
const THREADS = 4; // threads of the current job (helpers with index ≥ THREADS skip it)
const COUNT = 5; // number of arguments
const ACTIVE = 6; // helpers inside the current job (registered before they look at it)
const CLOSED = 7; // the sequence number of the last job whose chunks are all taken
const FAILED = 8; // set by a helper whose chunk threw
const ARGUMENTS = 12; // up to MAX_ARGUMENTS int32 arguments
const MAX_ARGUMENTS = 16;
const HELPER_SLOTS = ARGUMENTS + MAX_ARGUMENTS; // then 4 words per helper: done, failed, ready, spare
const QUIT = -1;
const RELOAD = -2;

/** Bytes of each helper's stack (the module's own stack is 64 KiB too, -z stack-size). */
export const SIMD_THREAD_STACK_BYTES = 65536;

// Runs in each helper (CommonJS, `eval: true`): instantiate, say ready, then serve jobs.
const HELPER_SOURCE = `
const { workerData, receiveMessageOnPort } = require('worker_threads');
const { module, control, index, names, stackTop, port } = workerData;
// An idle helper never collects garbage by itself, and the memories it dropped stay mapped until
// it does: collect after every reload (gc from a fresh context once --expose-gc is set).
require('v8').setFlagsFromString('--expose-gc');
const collect = require('vm').runInNewContext('gc');
const c = new Int32Array(control);
const base = ${HELPER_SLOTS} + 4 * (index - 1);
let fns = null;
function instantiate(memory) {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  instance.exports.__stack_pointer.value = stackTop;
  fns = names.map((n) => instance.exports[n]);
}
instantiate(workerData.memory);
workerData.memory = null;
let seen = Atomics.load(c, ${SEQUENCE});
Atomics.store(c, base + 2, 1);
Atomics.notify(c, base + 2);
for (;;) {
  Atomics.wait(c, ${SEQUENCE}, seen);
  // The operation of the sequence number read (the caller writes it before the number).
  let op;
  for (;;) {
    const s = Atomics.load(c, ${SEQUENCE});
    op = Atomics.load(c, ${OPERATION});
    if (Atomics.load(c, ${SEQUENCE}) === s) { seen = s; break; }
  }
  if (op === ${QUIT}) break;
  if (op === ${RELOAD}) {
    let failed = 0;
    try {
      const m = receiveMessageOnPort(port);
      if (m != null) {
        fns = null;
        instantiate(m.message);
        collect();
      } else failed = 1;
    } catch (e) {
      failed = 1;
    }
    Atomics.store(c, base + 1, failed);
    Atomics.store(c, base, seen);
    Atomics.notify(c, base);
    continue;
  }
  // Register, then look: the caller closes the job, then waits for the registered ones to leave,
  // so a helper that wakes late finds the job closed and touches nothing.
  Atomics.add(c, ${ACTIVE}, 1);
  try {
    if (Atomics.load(c, ${CLOSED}) !== seen && index < c[${THREADS}]) {
      const n = c[${COUNT}], chunks = c[${CHUNKS}], fn = fns[op];
      const args = [];
      for (let i = 0; i < n; i++) args.push(c[${ARGUMENTS} + i]);
      args.push(0, chunks, index);
      for (let k = Atomics.add(c, ${NEXT}, 1); k < chunks; k = Atomics.add(c, ${NEXT}, 1)) {
        args[n] = k;
        fn(...args);
      }
    }
  } catch (e) {
    Atomics.store(c, ${FAILED}, 1);
  }
  if (Atomics.sub(c, ${ACTIVE}, 1) === 1) Atomics.notify(c, ${ACTIVE});
}
`;

interface NodeProcess {
  getBuiltinModule?: (id: string) => unknown;
}

/** node:worker_threads, synchronously, or null (browsers, Node < 20.16). */
function workerThreads(): typeof import('node:worker_threads') | null {
  const proc = (globalThis as { process?: NodeProcess }).process;
  const get = proc?.getBuiltinModule;
  if (typeof get !== 'function') return null;
  try {
    return get('node:worker_threads') as typeof import('node:worker_threads');
  } catch {
    return null;
  }
}

/** Whether this is the main thread of a Node process (helpers start only there by default). */
export function onNodeMainThread(): boolean {
  const threads = workerThreads();
  return threads != null && threads.isMainThread;
}

/** Logical cores of this machine (Node), or 1. */
export function availableCores(): number {
  const proc = (globalThis as { process?: NodeProcess }).process;
  const get = proc?.getBuiltinModule;
  if (typeof get !== 'function') return 1;
  try {
    const os = get('node:os') as typeof import('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  } catch {
    return 1;
  }
}

/** Thrown by `SimdThreads.run` when a helper trapped; the caller falls back to one thread. */
export class SimdThreadError extends Error {}

/**
 * A fixed set of helper threads over one shared memory. `run` is synchronous; at most one job is
 * in flight (tfjs runs kernels one at a time on a thread).
 */
export class SimdThreads {
  private readonly control: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly ports: import('node:worker_threads').MessagePort[] = [];
  private readonly index = new Map<string, number>();
  private sequence = 0;
  private disposed = false;

  /**
   * Starts `helpers` threads on `memory`; helper h's stack ends at `stackBase + (h+1)·STACK`.
   * Returns null where threads cannot start (no worker_threads, no SharedArrayBuffer).
   */
  static start(compiled: WebAssembly.Module, memory: WebAssembly.Memory, helpers: number, stackBase: number, names: readonly string[]): SimdThreads | null {
    const wt = workerThreads();
    if (wt == null || helpers < 1 || typeof SharedArrayBuffer === 'undefined') return null;
    try {
      return new SimdThreads(wt, compiled, memory, helpers, stackBase, names);
    } catch {
      return null;
    }
  }

  private constructor(
    wt: typeof import('node:worker_threads'), compiled: WebAssembly.Module, memory: WebAssembly.Memory,
    readonly helpers: number, stackBase: number, names: readonly string[],
  ) {
    names.forEach((n, i) => this.index.set(n, i));
    this.control = new Int32Array(new SharedArrayBuffer(4 * (HELPER_SLOTS + 4 * helpers)));
    for (let h = 0; h < helpers; h++) {
      const { port1, port2 } = new wt.MessageChannel();
      const worker = new wt.Worker(HELPER_SOURCE, {
        eval: true,
        workerData: {
          module: compiled, memory, control: this.control.buffer, index: h + 1, names,
          stackTop: stackBase + (h + 1) * SIMD_THREAD_STACK_BYTES, port: port2,
        },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      // A helper that dies stops taking parts: the next run sees it not ready and runs alone.
      worker.on('error', () => this.markDead(h + 1));
      worker.on('exit', () => this.markDead(h + 1));
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  private slot(h: number): number {
    return HELPER_SLOTS + 4 * (h - 1);
  }

  private markDead(h: number): void {
    Atomics.store(this.control, this.slot(h) + 2, 0);
  }

  /** Helpers ready now (started and alive), counted from 1 without gaps. */
  ready(): number {
    let n = 0;
    while (n < this.helpers && Atomics.load(this.control, this.slot(n + 1) + 2) === 1) n++;
    return n;
  }

  /**
   * Runs `name(...args, chunk, chunks, slot)` for every chunk in [0, chunks), taken from a shared
   * counter by this thread (`self(chunk)`, slot 0) and helpers 1..threads−1 (their index as
   * slot), and returns when all are done. `threads − 1` must not exceed `ready()`.
   */
  run(name: string, args: readonly number[], chunks: number, threads: number, self: (chunk: number) => void): void {
    if (this.disposed) throw new SimdThreadError('SIMD helper threads were disposed');
    const op = this.index.get(name);
    if (op == null) throw new SimdThreadError(`no SIMD kernel '${name}' for helper threads`);
    if (args.length > MAX_ARGUMENTS) throw new SimdThreadError(`${name}: ${args.length} arguments exceed ${MAX_ARGUMENTS}`);
    const c = this.control;
    c[CHUNKS] = chunks;
    c[THREADS] = threads;
    c[COUNT] = args.length;
    for (let i = 0; i < args.length; i++) c[ARGUMENTS + i] = args[i]! | 0;
    Atomics.store(c, NEXT, 0);
    Atomics.store(c, FAILED, 0);
    Atomics.store(c, OPERATION, op);
    this.post();
    try {
      for (let k = Atomics.add(c, NEXT, 1); k < chunks; k = Atomics.add(c, NEXT, 1)) self(k);
    } finally {
      // No chunk is left to take (or this thread failed: none may be taken any more). Close the
      // job and wait for the helpers inside it; those that wake later find it closed.
      Atomics.store(c, NEXT, chunks);
      Atomics.store(c, CLOSED, this.sequence);
      this.leave();
    }
    if (Atomics.load(c, FAILED) !== 0) throw new SimdThreadError('a SIMD helper thread failed in its chunk');
  }

  /** Gives the helpers a new memory (after the module was instantiated afresh on it). */
  reload(memory: WebAssembly.Memory): void {
    for (const port of this.ports) port.postMessage(memory);
    Atomics.store(this.control, OPERATION, RELOAD);
    this.post();
    this.join(this.helpers);
  }

  /** Waits until no helper is inside the current job. */
  private leave(): void {
    const c = this.control;
    let spins = 0;
    for (let active = Atomics.load(c, ACTIVE); active !== 0; active = Atomics.load(c, ACTIVE)) {
      // A chunk ends within microseconds to milliseconds: spin briefly before sleeping.
      if (spins++ < 2000) continue;
      Atomics.wait(c, ACTIVE, active, 50);
    }
  }

  private post(): void {
    this.sequence = (this.sequence + 1) | 0;
    Atomics.store(this.control, SEQUENCE, this.sequence);
    Atomics.notify(this.control, SEQUENCE);
  }

  /** Waits until helpers 1..count acknowledged the current job; throws if one of them failed. */
  private join(count: number): void {
    let failed = false;
    for (let h = 1; h <= count; h++) {
      const s = this.slot(h);
      let spins = 0;
      for (;;) {
        const done = Atomics.load(this.control, s);
        if (done === this.sequence) break;
        if (Atomics.load(this.control, s + 2) !== 1) { failed = true; break; } // died
        // Short jobs finish within microseconds: spin briefly before sleeping.
        if (spins++ < 2000) continue;
        Atomics.wait(this.control, s, done, 50);
      }
      if (Atomics.load(this.control, s + 1) !== 0) failed = true;
    }
    if (failed) throw new SimdThreadError('a SIMD helper thread failed');
  }

  /** Stops the helpers (asynchronously; they are unref'd, so nothing waits on them). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.control, OPERATION, QUIT);
    this.post();
    for (const port of this.ports) port.close();
  }
}
