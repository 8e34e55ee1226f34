/**
 * The PyTorch reference (bench/pytorch_reference.py) from TypeScript: finds a Python with torch,
 * runs the script, and sets our rows side by side with PyTorch's plain gradient step.
 *
 * Interpreter: $NNGEOMETRY_PYTHON, then /usr/bin/python3 (Debian's python3-torch installs there,
 * while a pyenv `python3` on PATH often has no torch), then `python3` on PATH; the first that
 * imports torch is used. None: the reference is skipped and the reason printed.
 *
 * `npm run bench:pytorch` (this file) prints the reference alone; `npm run bench` calls
 * `runPytorchReference` and prints a "÷ PyTorch" table. Install Debian's libopenblas0-pthread
 * so that torch's BLAS/LAPACK is OpenBLAS rather than the reference BLAS (the JSON says which
 * library the process mapped).
 *
 * Allocator: the script runs with glibc's MALLOC_MMAP_THRESHOLD_=32 MiB (its maximum) and
 * MALLOC_TRIM_THRESHOLD_=4 GiB unless they are set (`torchMallocEnv`; BENCH_TORCH_MALLOC=default
 * leaves glibc's defaults). With the defaults, glibc hands torch's large activations back to the
 * kernel and maps them again on every step, and on a VM whose first touch of a page is expensive
 * (this one: 3.5 ms per MiB) PyTorch's CNN 32x32x3 step measured 464–604 ms; with memory kept,
 * 84–91 ms. tfjs-wasm's memory never shrinks, so keeping PyTorch's is the like-for-like setting.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** One plain forward+backward row of the reference. */
export interface PytorchRow {
  workload: string;
  what: string;
  examples: number;
  params: number;
  ms: number;
  samples: number[];
}

/** torch.linalg.eigh in float64 at one size. */
export interface PytorchEighRow {
  n: number;
  ms: number;
  samples: number[];
  /** ‖AV − VΛ‖_F / ‖A‖_F */
  residual: number;
}

/** What the script prints. */
export interface PytorchReference {
  schema: 1;
  torch: string;
  python: string;
  executable: string;
  threads: number;
  /** Shared objects with blas/lapack in their path that the process mapped. */
  blas: string[];
  quick: boolean;
  rows: PytorchRow[];
  eigh: PytorchEighRow[];
}

/**
 * The environment of the reference's Python: glibc's allocator keeps freed memory (see the
 * file's documentation), unless the caller set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_
 * or BENCH_TORCH_MALLOC=default.
 */
export function torchMallocEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.BENCH_TORCH_MALLOC === 'default') return env;
  return { ...env, MALLOC_MMAP_THRESHOLD_: env.MALLOC_MMAP_THRESHOLD_ ?? String(32 << 20), MALLOC_TRIM_THRESHOLD_: env.MALLOC_TRIM_THRESHOLD_ ?? String(2 ** 32) };
}

/** Either the reference or why there is none. */
export type PytorchOutcome = { ok: true; reference: PytorchReference } | { ok: false; reason: string };

const SCRIPT = fileURLToPath(new URL('./pytorch_reference.py', import.meta.url));

/** The first interpreter (NNGEOMETRY_PYTHON, /usr/bin/python3, python3) that imports torch, or the reasons none did. */
export function findTorchPython(): { python: string } | { reason: string } {
  const candidates = [process.env.NNGEOMETRY_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  const reasons: string[] = [];
  for (const python of [...new Set(candidates)]) {
    if (python.includes('/') && !existsSync(python)) {
      reasons.push(`${python}: not found`);
      continue;
    }
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return { python };
    reasons.push(`${python}: ${r.error ? r.error.message : (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`)}`);
  }
  return { reason: `no Python with torch (${reasons.join('; ')}); install Debian's python3-torch and libopenblas0-pthread, or set NNGEOMETRY_PYTHON` };
}

/**
 * Runs the reference script with `args` in the first Python with torch (its allocator set by
 * `torchMallocEnv`) and gives its last stdout line (the JSON result) to `read`; or why not.
 */
function runScript<T>(args: string[], timeoutMs: number, read: (line: string) => T): { ok: true; reference: T } | { ok: false; reason: string } {
  const found = findTorchPython();
  if ('reason' in found) return { ok: false, reason: found.reason };
  const r = spawnSync(found.python, [SCRIPT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: timeoutMs, maxBuffer: 16 << 20, env: torchMallocEnv() });
  if (r.status !== 0) return { ok: false, reason: `${found.python} ${SCRIPT} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})` };
  try {
    return { ok: true, reference: read(r.stdout.trim().split('\n').at(-1)!) };
  } catch (error) {
    return { ok: false, reason: `the reference printed no usable JSON (${String(error)})` };
  }
}

/** Runs the reference script; `quick`: 256 examples and small eigh sizes; `eigh`: sizes (default 1024, 2048, 5409). */
export function runPytorchReference(options: { quick?: boolean; eigh?: number[]; reps?: number } = {}): PytorchOutcome {
  const args = ['--reps', String(options.reps ?? 3)];
  if (options.quick) args.push('--quick');
  if (options.eigh) args.push(options.eigh.length ? '--eigh' : '--skip-eigh', ...(options.eigh.length ? [options.eigh.join(',')] : []));
  return runScript(args, 30 * 60_000, (line) => JSON.parse(line) as PytorchReference);
}

/** PyTorch's plain step and NNGeometry's exact classif_logits KFAC pass on one MLP of bench/scale.ts. */
export interface PytorchKfacReference {
  workload: string;
  plainMs: number;
  kfacMs: number;
  /** kfacMs ÷ plainMs: the multiple to set beside the scale row's FIM PMatKFAC. */
  kfacOverPlain: number;
  threads: number;
}

/**
 * Runs `pytorch_reference.py --kfac-mlp width,hidden,examples` (the MLP 784 → width×hidden → 10
 * of bench/scale.ts): the plain step and the KFAC factors pass, each the median of `reps`.
 */
export function runPytorchKfacReference(width: number, hidden: number, examples: number, reps = 1): { ok: true; reference: PytorchKfacReference } | { ok: false; reason: string } {
  return runScript(['--kfac-mlp', `${width},${hidden},${examples}`, '--reps', String(reps)], 30 * 60_000, (line) => {
    const out = JSON.parse(line) as { threads: number; rows: Array<{ workload: string; ms: number }>; kfac_over_plain: number };
    const [plain, kfac] = out.rows;
    return { workload: plain!.workload, plainMs: plain!.ms, kfacMs: kfac!.ms, kfacOverPlain: out.kfac_over_plain, threads: out.threads };
  });
}

/** PyTorch's plain step and NNGeometry 0.3's classif_logits passes on the CNN 32x32x3, measured in one run. */
export interface NngeometryCnnReference {
  workload: string;
  examples: number;
  plainMs: number;
  /** FIM PMatKFAC (get_kfac_blocks). */
  kfacMs: number;
  /** FIM PMatDiag (get_covariance_diag). */
  diagMs: number;
  /** PMatEKFAC.update_diag (get_kfe_diag), the KFAC eigenvectors given. */
  updateDiagMs: number;
  /** Each pass ÷ plainMs (NNGeometry at filing: KFAC ≈ 14.5, Diag ≈ 27, update_diag ≈ 77). */
  overPlain: { kfac: number; diag: number; updateDiag: number };
  /** Every timed run (ms, sorted), to show the spread on a shared machine. */
  samples: { plain: number[]; kfac: number[]; diag: number[]; updateDiag: number[] };
  torch: string;
  threads: number;
  blas: string[];
}

/**
 * Runs `pytorch_reference.py --nngeometry-cnn32` (bench/nngeometry_classif_logits.py reproduces
 * NNGeometry 0.3's passes in plain PyTorch): the plain step, FIM PMatKFAC, FIM PMatDiag and
 * PMatEKFAC.update_diag on the CNN 32x32x3's 1,024 examples, each warmed up once and the median
 * of `reps`, so that our CNN rows are set against NNGeometry measured on the same machine at the
 * same time rather than against the times at which the convolution work was filed.
 */
export function runNngeometryCnnReference(reps = 3): { ok: true; reference: NngeometryCnnReference } | { ok: false; reason: string } {
  return runScript(['--nngeometry-cnn32', '--reps', String(reps)], 60 * 60_000, parseNngeometryCnnReference);
}

/** The JSON line of `--nngeometry-cnn32`, checked: four rows in order, positive times. */
export function parseNngeometryCnnReference(line: string): NngeometryCnnReference {
  const out = JSON.parse(line) as { torch: string; threads: number; blas: string[]; rows: Array<{ workload: string; what: string; examples: number; ms: number; samples?: number[] }> };
  const expected = ['plain forward+backward', 'NNGeometry FIM PMatKFAC', 'NNGeometry FIM PMatDiag', 'NNGeometry PMatEKFAC.update_diag'];
  if (!Array.isArray(out.rows) || out.rows.length !== expected.length || out.rows.some((row, i) => row.what !== expected[i] || !(row.ms > 0))) {
    throw new Error(`expected rows ${expected.join(', ')} with positive times, got ${JSON.stringify(out.rows?.map((row) => [row.what, row.ms]))}`);
  }
  const [plain, kfac, diag, updateDiag] = out.rows as [typeof out.rows[0], typeof out.rows[0], typeof out.rows[0], typeof out.rows[0]];
  return {
    workload: plain.workload, examples: plain.examples, plainMs: plain.ms, kfacMs: kfac.ms, diagMs: diag.ms, updateDiagMs: updateDiag.ms,
    overPlain: { kfac: kfac.ms / plain.ms, diag: diag.ms / plain.ms, updateDiag: updateDiag.ms / plain.ms },
    samples: { plain: plain.samples ?? [plain.ms], kfac: kfac.samples ?? [kfac.ms], diag: diag.samples ?? [diag.ms], updateDiag: updateDiag.samples ?? [updateDiag.ms] },
    torch: out.torch, threads: out.threads, blas: out.blas,
  };
}

/** Rows with a workload, a description, examples and a time: what the "÷ PyTorch" table needs. */
export interface ComparableRow {
  workload: string;
  what: string;
  examples?: number;
  ms: number;
}

/**
 * Our rows divided by PyTorch's plain forward+backward over the same workload and example
 * count (rows on fewer examples, e.g. the Jacobian's 256, are left out): a plain step at
 * 1.0 matches PyTorch; an FIM row at 5 costs five PyTorch gradient steps.
 */
export function pytorchRatios<R extends ComparableRow>(rows: readonly R[], reference: PytorchReference): (R & { pytorchMs: number; pytorchRatio: number })[] {
  return rows.flatMap((r) => {
    const t = reference.rows.find((p) => p.workload === r.workload && p.examples === r.examples);
    return t ? [{ ...r, pytorchMs: t.ms, pytorchRatio: r.ms / t.ms }] : [];
  });
}

/** The "÷ PyTorch" table. */
export function formatPytorchTable(rows: readonly ComparableRow[], reference: PytorchReference): string {
  const lines = [
    `PyTorch ${reference.torch} (${reference.executable}, ${reference.threads} threads, BLAS ${reference.blas.find((b) => /blas/i.test(b)) ?? 'unknown'})`,
    'workload'.padEnd(28) + 'what'.padEnd(58) + 'ours ms'.padStart(10) + 'PyTorch step ms'.padStart(16) + '÷ PyTorch'.padStart(11),
  ];
  for (const r of pytorchRatios(rows, reference)) {
    lines.push(r.workload.slice(0, 27).padEnd(28) + r.what.slice(0, 57).padEnd(58) + r.ms.toFixed(0).padStart(10) + r.pytorchMs.toFixed(0).padStart(16) + r.pytorchRatio.toFixed(2).padStart(11));
  }
  if (reference.eigh.length) {
    lines.push('', 'torch.linalg.eigh float64: ' + reference.eigh.map((e) => `n=${e.n} ${e.ms.toFixed(0)} ms (res ${e.residual.toExponential(1)})`).join(', '));
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.env.BENCH_QUICK === '1';
  const outcome = runPytorchReference({ quick });
  if (!outcome.ok) {
    console.log(`PyTorch reference skipped: ${outcome.reason}`);
  } else {
    const ref = outcome.reference;
    console.log(`PyTorch ${ref.torch}, Python ${ref.python} (${ref.executable}), ${ref.threads} threads, BLAS: ${ref.blas.join(', ') || 'unknown'}`);
    for (const r of ref.rows) console.log(`${r.workload.padEnd(28)}${r.what.padEnd(26)}${String(r.examples).padStart(6)} ex.${r.ms.toFixed(0).padStart(9)} ms`);
    for (const e of ref.eigh) console.log(`torch.linalg.eigh float64 n=${String(e.n).padStart(5)}${e.ms.toFixed(0).padStart(9)} ms  residual ${e.residual.toExponential(1)}`);
    console.log(JSON.stringify(ref));
  }
}
