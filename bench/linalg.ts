/**
 * Float64 linear-algebra benchmark: eigh, Cholesky and a Cholesky solve with n right-hand
 * sides, for the Eigen WebAssembly module and the TypeScript implementation, on the test
 * matrix of the substrate study (research/substrate.md §4): A = GᵀG/n + 0.01·I with G uniform
 * in (−0.5, 0.5) from a seeded mulberry32 generator.
 *
 * eighSym (divide and conquer) is timed beside the module's QR-iteration route (`eighSymQR`,
 * the solver before it), in the same process.
 *
 * `npx tsx bench/linalg.ts [sizes]` prints a table; `npm run bench` calls `benchLinalg`.
 * `npx tsx bench/linalg.ts --interleaved n [reps] [--no-qr] [--one-thread] [--baseline file.wasm]`
 * alternates the two routes in one process and prints CPU and wall time of each call;
 * `--one-thread` adds eighSym with the SIMD helper threads capped to one (its products then all
 * run in the module), and `--baseline` the eighSym of another build of wasm/eigen_linalg.cpp
 * (e.g. the previous commit's module, kept under /tmp), for A/B comparisons on a loaded machine.
 * The helper threads (`NNGEOMETRY_SIMD_THREADS`, default every core up to 8) are started and
 * waited for before the first call; `--wait-idle` starts each round of calls only after 2 s in
 * which no other thread ran on the machine (Linux).
 * `npx tsx bench/linalg.ts --phases file.wasm n [reps]` runs the eighSym of a profiling build
 * (`NN_PROFILE=1 bash wasm/build.sh OUTDIR`) and prints the wall time of each phase.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import {
  cholesky,
  choleskySolve,
  eighSym,
  gemm,
  initLinalg,
  linalgInfo,
  useLinalgImplementation,
  type LinalgImplementation,
} from '../src/linalg/index.js';
import { eighSymQR } from '../src/linalg/eigh.js';
import { eigenImports, instantiateEigen } from '../src/linalg/wasm/loader.js';
import { eigenKernels } from '../src/linalg/wasm/kernels.js';
import { capSimdThreads, simdKernels, simdThreads } from '../src/backend/kernels/simd/module.js';

/** One row of the benchmark: median times (ms) of 3 repetitions and relative residuals. */
export interface LinalgBenchRow {
  n: number;
  impl: LinalgImplementation;
  /** eighSym (eigenvalues and eigenvectors). */
  eighMs: number;
  /** The same decomposition by the module's QR-iteration route (eighSymQR), measured alongside; WebAssembly rows only. */
  eighQrMs?: number;
  choleskyMs: number;
  /** cholesky + choleskySolve with n right-hand sides (the factorisation is included). */
  solveMs: number;
  /** ‖AV − V diag(w)‖_F / ‖A‖_F */
  eigResidual: number;
  /** ‖LLᵀ − A‖_F / ‖A‖_F */
  cholResidual: number;
  /** ‖AX − B‖_F / ‖B‖_F */
  solveResidual: number;
}

/** The TypeScript implementation is skipped at sizes where its eigh would exceed this. */
const TS_EIGH_LIMIT_MS = 10_000;
const REPS = 3;
/** The QR route is timed up to this size (BENCH_LINALG_QR_MAX, default 2048): at 5,409 it takes minutes. */
const QR_MAX_N = Number(process.env.BENCH_LINALG_QR_MAX ?? 2048);

/**
 * Measures eigh, Cholesky and solve for both implementations at each size (ascending). The
 * TypeScript implementation stops at the first size where its eigh, extrapolated as n³ from
 * the previous size, would take more than 10 s. Residuals are computed with `gemm` of the
 * Eigen module when it is loaded (it is tested against the TypeScript product).
 */
export async function benchLinalg(sizes: number[] = [256, 512, 1024]): Promise<LinalgBenchRow[]> {
  const before = linalgInfo().implementation;
  const info = await initLinalg();
  const impls: LinalgImplementation[] =
    info.implementation === 'eigen-wasm' ? ['eigen-wasm', 'typescript'] : ['typescript'];
  const rows: LinalgBenchRow[] = [];
  const tsEighMs = new Map<number, number>();
  try {
    for (const n of [...sizes].sort((x, y) => x - y)) {
      const a = testMatrix(n, 1);
      const b = uniform(n * n, 2);
      for (const impl of impls) {
        if (impl === 'typescript' && tsEighMs.size > 0) {
          const [m, ms] = [...tsEighMs].at(-1)!;
          if (ms * (n / m) ** 3 > TS_EIGH_LIMIT_MS) continue;
        }
        useLinalgImplementation(impl);
        const eig = median(() => eighSym(a, n));
        const qr = impl === 'eigen-wasm' && n <= QR_MAX_N ? median(() => eighSymQR(a, n)) : undefined;
        const chol = median(() => cholesky(a, n));
        const sol = median(() => choleskySolve(cholesky(a, n), n, b, n));
        if (impl === 'typescript') tsEighMs.set(n, eig.ms);
        // Residuals with the fastest product available.
        useLinalgImplementation(impls[0]!);
        rows.push({
          n,
          impl,
          eighMs: eig.ms,
          ...(qr ? { eighQrMs: qr.ms } : {}),
          choleskyMs: chol.ms,
          solveMs: sol.ms,
          eigResidual: eigResidual(a, n, eig.value.values, eig.value.vectors),
          cholResidual: relativeDifference(gemm(chol.value, n, n, transpose(chol.value, n), n), a),
          solveResidual: relativeDifference(gemm(a, n, n, sol.value, n), b),
        });
      }
    }
  } finally {
    useLinalgImplementation(before === 'eigen-wasm' && info.implementation === 'eigen-wasm' ? 'eigen-wasm' : 'typescript');
  }
  return rows;
}

function median<T>(f: () => T): { ms: number; value: T } {
  const times: number[] = [];
  let value!: T;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    value = f();
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return { ms: times[Math.floor(REPS / 2)]!, value };
}

/** mulberry32: a small seeded generator of uniform numbers in [0, 1). */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uniform(length: number, seed: number): Float64Array {
  const next = mulberry32(seed);
  return Float64Array.from({ length }, () => next() - 0.5);
}

/** A = GᵀG/n + 0.01·I, G uniform in (−0.5, 0.5): SPD, eigenvalues in about [0.01, 0.34]. */
function testMatrix(n: number, seed: number): Float64Array {
  const g = uniform(n * n, seed);
  const a = gemm(transpose(g, n), n, n, g, n);
  for (let i = 0; i < n * n; i++) a[i] = a[i]! / n;
  for (let i = 0; i < n; i++) a[i * n + i] = a[i * n + i]! + 0.01;
  return a;
}

function transpose(a: Float64Array, n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j]!;
  return t;
}

function relativeDifference(x: Float64Array, y: Float64Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < x.length; i++) {
    num += (x[i]! - y[i]!) ** 2;
    den += y[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

function eigResidual(a: Float64Array, n: number, w: Float64Array, v: Float64Array): number {
  const vw = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vw[i * n + j] = v[i * n + j]! * w[j]!;
  const av = gemm(a, n, n, v, n);
  let num = 0, den = 0;
  for (let i = 0; i < n * n; i++) {
    num += (av[i]! - vw[i]!) ** 2;
    den += a[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** Prints the rows as a table. */
export function formatLinalgTable(rows: LinalgBenchRow[]): string {
  const head =
    'n'.padStart(6) + 'impl'.padStart(12) + 'eigh ms'.padStart(10) + 'QR ms'.padStart(10) + 'chol ms'.padStart(10) +
    'solve ms'.padStart(10) + 'eig res'.padStart(10) + 'chol res'.padStart(10) + 'solve res'.padStart(10);
  const lines = rows.map(
    (r) =>
      String(r.n).padStart(6) + r.impl.padStart(12) + r.eighMs.toFixed(0).padStart(10) + (r.eighQrMs?.toFixed(0) ?? '—').padStart(10) +
      r.choleskyMs.toFixed(0).padStart(10) + r.solveMs.toFixed(0).padStart(10) +
      r.eigResidual.toExponential(1).padStart(10) + r.cholResidual.toExponential(1).padStart(10) +
      r.solveResidual.toExponential(1).padStart(10),
  );
  return [head, ...lines].join('\n');
}

/**
 * eighSym and eighSymQR alternated `reps` times on the bench matrix of size n in one process,
 * with the process's CPU time beside the wall time: on a loaded machine the medians above time
 * the two routes minutes apart, under different loads; alternating them does not. With
 * `baseline` (the path of another build of the module), its eighSym joins the alternation.
 * Prints each call, then per route the first (cold: V8 has not optimised the module yet) call
 * and the minimum and median of the later ones. The modules share the process, so the first
 * call of the second one may find V8's compiler threads busy with the first one's code.
 */
export async function compareEighRoutes(n: number, reps: number, qr = true, baseline?: string, oneThread = false, waitIdle = false): Promise<void> {
  await initLinalg();
  const simd = simdKernels();
  const helpers = Math.min(simdThreads() - 1, 8);
  for (let waited = 0; simd != null && simd.helperThreads() < helpers && waited < 10_000; waited += 20) {
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`SIMD helper threads: ${simd?.helperThreads() ?? 0} (load ${loadavg()[0]!.toFixed(2)})`);
  // The matrix's product runs on the TypeScript gemm, so that no module has run any code before
  // its first eigh (a module whose GEMM had already been optimised would start warm).
  useLinalgImplementation('typescript');
  const a = testMatrix(n, 1);
  useLinalgImplementation('eigen-wasm');
  const cpu = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };
  const routes: [string, (a: Float64Array, n: number) => unknown][] = [['eighSym (divide and conquer)', eighSym]];
  if (baseline) {
    const kernels = eigenKernels(await instantiateEigen(new Uint8Array(readFileSync(baseline)), baseline));
    routes.push([`baseline eighSym (${baseline})`, kernels.eighSym]);
  }
  if (oneThread) {
    routes.push(['eighSym, SIMD threads capped to 1', (x, m) => {
      const release = capSimdThreads(1);
      try {
        return eighSym(x, m);
      } finally {
        release();
      }
    }]);
  }
  if (qr) routes.push(['eighSymQR (QR route)', eighSymQR]);
  const samples = new Map<string, number[]>(routes.map(([name]) => [name, []]));
  const walls = new Map<string, number[]>(routes.map(([name]) => [name, []]));
  for (let r = 0; r < reps; r++) {
    if (waitIdle) await quietMachine();
    for (const [name, f] of routes) {
      const c0 = cpu();
      const w0 = performance.now();
      f(a, n);
      const ms = cpu() - c0;
      const wall = performance.now() - w0;
      samples.get(name)!.push(ms);
      walls.get(name)!.push(wall);
      console.log(`n=${n} ${name}: ${ms.toFixed(0)} ms CPU, ${wall.toFixed(0)} ms wall`);
    }
  }
  for (const [name, ms] of samples) {
    const warm = ms.slice(1).sort((x, y) => x - y);
    const summary = warm.length > 0 ? `; later calls min ${warm[0]!.toFixed(0)}, median ${warm[warm.length >> 1]!.toFixed(0)} ms CPU` : '';
    console.log(`n=${n} ${name}: first call ${ms[0]!.toFixed(0)} ms CPU${summary}`);
  }
  for (const [name, ms] of walls) {
    const warm = ms.slice(1).sort((x, y) => x - y);
    const summary = warm.length > 0 ? `; later calls min ${warm[0]!.toFixed(0)}, median ${warm[warm.length >> 1]!.toFixed(0)} ms wall` : '';
    console.log(`n=${n} ${name}: first call ${ms[0]!.toFixed(0)} ms wall${summary}`);
  }
  console.log(`load at the end ${loadavg()[0]!.toFixed(2)}`);
}

/** Threads running on the machine now (Linux /proc/stat; this one included), or 0 where unknown. */
function threadsRunning(): number {
  try {
    return Number(/procs_running (\d+)/.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Waits (at most 5 minutes) until no other thread has run on the machine for 2 s, sampled every
 * 100 ms (`--wait-idle`: on a machine shared with other jobs, rounds then start in quiet windows).
 */
async function quietMachine(): Promise<void> {
  const end = Date.now() + 300_000;
  for (let quiet = 0; quiet < 20 && Date.now() < end;) {
    quiet = threadsRunning() <= 1 ? quiet + 1 : 0;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Names of the slots of wasm/phase_timer.hpp, in order; the slots nest as their comments say. */
const PHASE_SLOTS = [
  'tridiagonalisation: symmetric products',
  'tridiagonalisation: panel steps (including the symmetric products)',
  'tridiagonalisation: rank-2k updates',
  'divide and conquer: secular equations and vectors',
  'divide and conquer: merge products',
  'divide and conquer: merges (including the two above)',
  'divide and conquer: leaves (QR iterations)',
  'back-transformation: Y and T per block',
  'back-transformation: Y^T Z and Z + Y (T W)',
  'back-transformation: T W',
];

/**
 * Runs nn_eigh of a profiling build of the module (`NN_PROFILE=1 bash wasm/build.sh OUTDIR`,
 * whose timers import env.nn_now) `reps` times on the bench matrix and prints, per call, its CPU
 * time and the wall milliseconds of each phase (the first call runs before V8 has optimised
 * the module).
 */
export async function profileEighPhases(file: string, n: number, reps: number): Promise<void> {
  let memory: WebAssembly.Memory | undefined;
  const imports = eigenImports(() => memory!);
  const { instance } = await WebAssembly.instantiate(new Uint8Array(readFileSync(file)), {
    env: { ...imports['env'], nn_now: () => performance.now() },
  });
  memory = instance.exports['memory'] as WebAssembly.Memory;
  const e = instance.exports as unknown as {
    memory: WebAssembly.Memory;
    _initialize(): void;
    nn_malloc(bytes: number): number;
    nn_free(ptr: number): void;
    nn_eigh(a: number, n: number, w: number, v: number): number;
    nn_phase_totals(): number;
    nn_phase_reset(): void;
  };
  e._initialize();
  const a = testMatrix(n, 1);
  for (let r = 0; r < reps; r++) {
    const pa = e.nn_malloc(8 * n * n), pw = e.nn_malloc(8 * n), pv = e.nn_malloc(8 * n * n);
    new Float64Array(e.memory.buffer, pa, n * n).set(a);
    e.nn_phase_reset();
    const c0 = process.cpuUsage();
    const status = e.nn_eigh(pa, n, pw, pv);
    const c = process.cpuUsage(c0);
    const totals = new Float64Array(e.memory.buffer, e.nn_phase_totals(), PHASE_SLOTS.length);
    console.log(`n=${n} call ${r + 1}: ${((c.user + c.system) / 1000).toFixed(0)} ms CPU, status ${status}`);
    PHASE_SLOTS.forEach((name, i) => console.log(`  ${name}: ${totals[i]!.toFixed(0)} ms wall`));
    e.nn_free(pa);
    e.nn_free(pw);
    e.nn_free(pv);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--phases') {
  // npx tsx bench/linalg.ts --phases file.wasm n [reps]
  await profileEighPhases(process.argv[3]!, Number(process.argv[4] ?? 2048), Number(process.argv[5] ?? 2));
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--interleaved') {
  // npx tsx bench/linalg.ts --interleaved n [reps] [--no-qr] [--one-thread] [--wait-idle] [--baseline file.wasm]
  const at = process.argv.indexOf('--baseline');
  await compareEighRoutes(
    Number(process.argv[3] ?? 2048),
    Number(process.argv[4] ?? 2),
    !process.argv.includes('--no-qr'),
    at > 0 ? process.argv[at + 1] : undefined,
    process.argv.includes('--one-thread'),
    process.argv.includes('--wait-idle'),
  );
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const sizes = process.argv[2]?.split(',').map(Number) ?? [256, 512, 1024];
  const rows = await benchLinalg(sizes);
  console.log(`float64 linear algebra, median of ${REPS} (solve: n right-hand sides, factor included)`);
  console.log(formatLinalgTable(rows));
}
