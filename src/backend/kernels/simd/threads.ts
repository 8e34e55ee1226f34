/**
 * Helper threads for the SIMD kernels (Node): each instantiates the threaded build of
 * wasm/simd_kernels.c on the main thread's shared WebAssembly memory, with its own stack, and then
 * waits on a control block for work. A kernel call runs part 0 on the calling thread and parts
 * 1..P−1 on the helpers: the kernels split their output into disjoint parts that are bit-identical
 * to the single-thread result (see the comment at the top of simd_kernels.c), so the thread
 * count never changes a number. The caller blocks (`Atomics.wait`) until every part is done,
 * which keeps the kernels synchronous, as tfjs kernel functions must be.
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
const PARTS = 2; // parts of the current job (helpers with index ≥ parts skip it)
const ARGUMENTS = 4; // up to MAX_ARGUMENTS int32 arguments
const MAX_ARGUMENTS = 16;
const HELPER_SLOTS = ARGUMENTS + MAX_ARGUMENTS; // then 4 words per helper: done, failed, ready, spare
const QUIT = -1;
const RELOAD = -2;

/** Bytes of each helper's stack (the module's own stack is 64 KiB too, -z stack-size). */
export const SIMD_THREAD_STACK_BYTES = 65536;

// Runs in each helper (CommonJS, `eval: true`): instantiate, say ready, then serve jobs.
const HELPER_SOURCE = `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { module, control, index, names, stackTop, port } = workerData;
const c = new Int32Array(control);
const base = ${HELPER_SLOTS} + 4 * (index - 1);
let fns = null;
function instantiate(memory) {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  instance.exports.__stack_pointer.value = stackTop;
  fns = names.map((n) => instance.exports[n]);
}
instantiate(workerData.memory);
let seen = Atomics.load(c, ${SEQUENCE});
Atomics.store(c, base + 2, 1);
Atomics.notify(c, base + 2);
for (;;) {
  Atomics.wait(c, ${SEQUENCE}, seen);
  seen = Atomics.load(c, ${SEQUENCE});
  const op = c[${OPERATION}];
  if (op === ${QUIT}) break;
  let failed = 0;
  try {
    if (op === ${RELOAD}) {
      const m = receiveMessageOnPort(port);
      if (m != null) instantiate(m.message);
      else failed = 1;
    } else if (index < c[${PARTS}]) {
      const n = c[${ARGUMENTS} - 1];
      const args = [];
      for (let i = 0; i < n; i++) args.push(c[${ARGUMENTS} + i]);
      args.push(index, c[${PARTS}]);
      fns[op](...args);
    }
  } catch (e) {
    failed = 1;
  }
  Atomics.store(c, base + 1, failed);
  Atomics.store(c, base, seen);
  Atomics.notify(c, base);
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
   * Runs `name(...args, part, parts)` for parts 1..parts−1 on the helpers and `self(0, parts)`
   * on this thread, and returns when all are done. `parts − 1` must not exceed `ready()`.
   */
  run(name: string, args: readonly number[], parts: number, self: (part: number, parts: number) => void): void {
    if (this.disposed) throw new SimdThreadError('SIMD helper threads were disposed');
    const op = this.index.get(name);
    if (op == null) throw new SimdThreadError(`no SIMD kernel '${name}' for helper threads`);
    if (args.length > MAX_ARGUMENTS) throw new SimdThreadError(`${name}: ${args.length} arguments exceed ${MAX_ARGUMENTS}`);
    const c = this.control;
    c[OPERATION] = op;
    c[PARTS] = parts;
    c[ARGUMENTS - 1] = args.length;
    for (let i = 0; i < args.length; i++) c[ARGUMENTS + i] = args[i]! | 0;
    this.post();
    try {
      self(0, parts);
    } finally {
      this.join(parts - 1);
    }
  }

  /** Gives the helpers a new memory (after the module was instantiated afresh on it). */
  reload(memory: WebAssembly.Memory): void {
    for (const port of this.ports) port.postMessage(memory);
    this.control[OPERATION] = RELOAD;
    this.post();
    this.join(this.helpers);
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
    this.control[OPERATION] = QUIT;
    this.post();
    for (const port of this.ports) port.close();
  }
}
