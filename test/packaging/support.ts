/**
 * Builds the package as `npm pack` would ship it and installs the tarball into a fresh project,
 * with no network: the build goes to a staging folder (never the shared dist/), `npm install
 * --offline` installs the tarball (its dependencies from the npm cache), and the peer
 * dependencies (@tensorflow/*) and tools (typescript, esbuild) come from this repository's
 * node_modules through symlinks.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'node_modules', '.bin');

/** A packed and installed copy of the package. */
export interface InstalledPackage {
  /** The temporary folder (remove it with `cleanup`). */
  work: string;
  /** The tarball `npm pack` wrote. */
  tarball: string;
  /** The files in the tarball, relative to the package root. */
  files: string[];
  /** The consumer project with nngeometry installed from the tarball. */
  project: string;
  cleanup(): void;
}

/** Runs a command; throws with its output when it fails. */
export function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Stages package.json, README, LICENSE, docs and a fresh build, packs them and installs the tarball. */
export function packAndInstall(): InstalledPackage {
  const work = mkdtempSync(join(tmpdir(), 'nngeometry-pack-'));
  const stage = join(work, 'stage');
  mkdirSync(join(stage, 'docs'), { recursive: true });
  for (const f of ['package.json', 'README.md', 'LICENSE']) cpSync(join(ROOT, f), join(stage, f));
  for (const f of readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'))) cpSync(join(ROOT, 'docs', f), join(stage, 'docs', f));
  // The build of `npm run build`, into the staging folder. Type errors elsewhere in the working
  // tree must not stop the emit (tsc emits regardless); a missing entry point is caught below.
  spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')], { cwd: ROOT, encoding: 'utf8' });
  const packed = JSON.parse(run('npm', ['pack', stage, '--json', '--pack-destination', work], work)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(work, packed[0]!.filename);
  const project = join(work, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  run('npm', ['install', '--offline', '--legacy-peer-deps', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', tarball], project);
  mkdirSync(join(project, 'node_modules', '@tensorflow'), { recursive: true });
  for (const peer of readdirSync(join(ROOT, 'node_modules', '@tensorflow'))) {
    symlinkSync(join(ROOT, 'node_modules', '@tensorflow', peer), join(project, 'node_modules', '@tensorflow', peer), 'dir');
  }
  return { work, tarball, files: packed[0]!.files.map((f) => f.path), project, cleanup: () => rmSync(work, { recursive: true, force: true }) };
}

/** Path of a tool installed in this repository (tsc, esbuild). */
export function tool(name: string): string {
  return join(BIN, name);
}

/**
 * The consumer's model and data, as JavaScript source shared by the Node and browser programs: a
 * softmax regression (logits = x W + b, 4 inputs, 3 classes) with fixed weights on 6 fixed
 * examples, whose Fisher has a closed form (see `closedFormTrace`).
 */
export const FIXTURE_JS = `
const IN = 4, OUT = 3, N = 6;
const W = Array.from({ length: IN * OUT }, (_, k) => 0.5 * Math.sin(1 + k));
const B = Array.from({ length: OUT }, (_, c) => 0.1 * c);
const X = Array.from({ length: N * IN }, (_, k) => Math.cos(k));
function buildModel(tf) {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: OUT, inputShape: [IN] })] });
  model.layers[0].setWeights([tf.tensor2d(W, [IN, OUT]), tf.tensor1d(B)]);
  return model;
}
`;

/**
 * tr F for `classif_logits` of the softmax regression of FIXTURE_JS, in float64: the Jacobian of
 * logit c in example i is x̃_i = [x_i; 1] in the columns of unit c, so
 * tr F = (1/n) Σ_i (‖x_i‖² + 1) Σ_c p_ic (1 − p_ic).
 */
export function closedFormTrace(): number {
  const IN = 4, OUT = 3, N = 6;
  const W = Array.from({ length: IN * OUT }, (_, k) => 0.5 * Math.sin(1 + k));
  const B = Array.from({ length: OUT }, (_, c) => 0.1 * c);
  const X = Array.from({ length: N * IN }, (_, k) => Math.cos(k));
  let trace = 0;
  for (let i = 0; i < N; i++) {
    const x = X.slice(i * IN, (i + 1) * IN);
    const z = Array.from({ length: OUT }, (_, c) => B[c]! + x.reduce((s, xk, k) => s + xk * W[k * OUT + c]!, 0));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((a, b) => a + b, 0);
    const p = e.map((v) => v / sum);
    trace += (x.reduce((s, v) => s + v * v, 0) + 1) * p.reduce((s, pc) => s + pc * (1 - pc), 0);
  }
  return trace / N;
}
