/**
 * `nngeometry --help` and `nngeometry --version`: every command, every flag with its default,
 * the representations (from the registry) and the variants (from the library), so that the help
 * never drifts from what the program accepts.
 */
import { readFileSync } from 'node:fs';
import { MONTE_CARLO_VARIANTS, VARIANTS } from '../index.js';
import { REPRESENTATIONS } from './representations.js';

/** The package version, read from the package.json two folders up (src/cli/ or dist/cli/). */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(manifest.version);
}

/** What each variant means (the model's output and the output distribution's Fisher). */
const VARIANT_MEANING: Record<string, string> = {
  classif_logits: 'the model outputs logits (no final softmax); the default',
  classif_logsoftmax: 'the model ends in a log-softmax (log-probabilities)',
  classif_probs: "the model ends in a softmax (probabilities): most Keras classifiers",
  classif_binary_logits: 'one logit per independent Bernoulli output (no final sigmoid)',
  regression: 'real outputs, Gaussian with variance --sigma2',
  empirical: 'the empirical Fisher of a loss (--loss) on the labels (--labels)',
  segmentation_logits: 'per-pixel logits over the last axis (Monte-Carlo only: --mc)',
};

const FLAGS: ReadonlyArray<readonly [string, string]> = [
  ['--model PATH', 'a tfjs Layers model: its model.json, or the folder holding it (as saveModel writes)'],
  ['--data FILE', 'inputs: IDX (.gz or not), CSV (one example per row) or JSON (array, or { "xs", "ys" })'],
  ['--labels FILE', 'labels for --variant empirical (IDX, CSV or JSON)'],
  ['--representation NAME', 'fim: the matrix representation (default diag; spectrum: implicit; see Representations)'],
  ['--variant NAME', 'fim, spectrum: what the model outputs (default classif_logits; see Variants)'],
  ['--loss cross_entropy|mse', 'fim --variant empirical: the per-example loss (default cross_entropy)'],
  ['--sigma2 X', 'fim --variant regression: the output variance (default 1)'],
  ['--mc T', 'fim: Monte-Carlo estimate with T sampled labels per example instead of the closed form'],
  ['--seed S', 'fim --mc: the label sampler seed; spectrum: the probes\' seed (default 0: runs are reproducible)'],
  ['--batch-size B', 'examples per batch (default 64)'],
  ['--count N', 'use the first N examples (fim: all; ntk: 100)'],
  ['--scale X', 'multiply the inputs by X (default 1/255 for uint8 IDX images, else 1)'],
  ['--backend wasm|cpu', 'the tfjs backend (default wasm)'],
  ['--max-memory BYTES', 'fim: refuse a representation whose storage would exceed BYTES (default 2e9)'],
  ['--ignore-unsupported', 'leave out the parameters of layers no layer kind supports (instead of failing); it does not give a layer Kronecker factors: for KFAC-like matrices of models with such layers use --representation ekfac-blockdiag'],
  ['--centering', 'ntk: center the kernel (subtract the mean output gradient)'],
  ['--top K', 'ntk: how many top eigenvalues to print (default 10)'],
  ['--k K', 'spectrum: how many eigenpairs eigsh computes (default 10)'],
  ['--which largest|smallest', 'spectrum: which end of the spectrum (default largest)'],
  ['--trace', 'spectrum: also estimate the trace by Hutch++, with its 95% interval'],
  ['--samples M', 'spectrum --trace: products the trace estimate takes (default 30)'],
  ['--density', 'spectrum: also estimate the spectral density by stochastic Lanczos quadrature'],
  ['--probes P, --steps S', 'spectrum --density: random probes (default 10) and Lanczos steps per probe (default 80)'],
  ['--report FILE.html', 'write a self-contained HTML report (heatmaps, spectra, per-layer traces)'],
  ['--json FILE.json', 'write the printed numbers as JSON'],
  ['--quiet', 'no progress bars on stderr (the result table is still printed on stdout)'],
  ['--redis URL', 'fim: spread the pass over `nngeometry worker` processes through BullMQ on Redis'],
  ['--shards N', 'fim --redis: how many shards the data is cut into (default 8)'],
  ['--store DIR', 'fim --redis: keep the partial results in this shared folder instead of Redis'],
  ['--run-id ID', 'fim --redis: name the run (default: an id derived from the model, data and options)'],
  ['--concurrency C, --lock-ms MS', 'worker: shards processed at once (default 1), job lock duration (default 30000)'],
  ['-h, --help', 'this help (nngeometry COMMAND --help: that command\'s usage)'],
  ['--version', 'print the version'],
];

/** The text of `nngeometry --help`. */
export function helpText(usages: readonly string[]): string {
  const width = Math.max(...FLAGS.map(([f]) => f.length));
  const wrap = (text: string, indent: number) => {
    const words = text.split(' ');
    const lines: string[] = [];
    let line = '';
    for (const w of words) {
      if (line && line.length + 1 + w.length > 100 - indent) {
        lines.push(line);
        line = w;
      } else line = line ? `${line} ${w}` : w;
    }
    lines.push(line);
    return lines.join(`\n${' '.repeat(indent)}`);
  };
  const repWidth = Math.max(...REPRESENTATIONS.map((r) => r.name.length));
  const variantWidth = Math.max(...Object.keys(VARIANT_MEANING).map((v) => v.length));
  const variants = [...new Set<string>([...VARIANTS, ...MONTE_CARLO_VARIANTS])];
  return [
    `nngeometry ${packageVersion()}: Fisher information, NTK and layer information of saved tfjs models.`,
    '',
    'Usage:',
    ...usages.map((u) => `  ${u}`),
    '',
    'Flags:',
    ...FLAGS.map(([flag, text]) => `  ${flag.padEnd(width)}  ${wrap(text, width + 4)}`),
    '',
    'Representations (--representation; class names such as PMatKFAC are accepted too):',
    ...REPRESENTATIONS.map((r) => `  ${r.name.padEnd(repWidth)}  ${r.summary}${r.needsKronecker ? ' [needs Kronecker factors]' : ''}`),
    '',
    'Variants (--variant; it must match the model\'s last activation):',
    ...variants.map((v) => `  ${v.padEnd(variantWidth)}  ${VARIANT_MEANING[v] ?? ''}`),
    '',
    'Exit codes: 0 success, 2 user error (one line on stderr), 1 internal error (stack printed).',
  ].join('\n');
}
