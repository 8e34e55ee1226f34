#!/usr/bin/env node
/**
 * The `nngeometry` command line: `fim`, `ntk`, `spectrum` and `info` on saved tfjs Layers models. User
 * errors (bad paths, unreadable data, shapes the model does not take, unsupported layers, bad
 * options) print one line on stderr and exit with code 2; anything else is a bug and prints its
 * stack (exit code 1).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NNGeometryError, UnsupportedLayerError } from '../index.js';
import { tf } from '../tf.js';
import { silenceCpuBanner, useBackend } from './backend.js';
import { CliError, USER_ERROR_EXIT_CODE } from './errors.js';
import { FIM_USAGE, fimCommand } from './commands/fim.js';
import { INFO_USAGE, infoCommand } from './commands/info.js';
import { NTK_USAGE, ntkCommand } from './commands/ntk.js';
import { WORKER_USAGE, workerCommand } from './commands/worker.js';
import { SPECTRUM_USAGE, spectrumCommand } from './commands/spectrum.js';
import { helpText, packageVersion } from './help.js';

/** The usage line of each command. */
export const USAGES = [FIM_USAGE, NTK_USAGE, SPECTRUM_USAGE, INFO_USAGE, WORKER_USAGE];

const common = {
  model: { type: 'string' },
  data: { type: 'string' },
  'batch-size': { type: 'string' },
  count: { type: 'string' },
  scale: { type: 'string' },
  backend: { type: 'string', default: 'wasm' },
  'ignore-unsupported': { type: 'boolean' },
  report: { type: 'string' },
  json: { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Options of a distributed run (`fim --redis`). */
const distributedOptions = { redis: { type: 'string' }, shards: { type: 'string' }, store: { type: 'string' }, 'run-id': { type: 'string' } } as const;

/** The flags of each command (node:util parseArgs). */
export const OPTIONS = {
  fim: { ...common, labels: { type: 'string' }, representation: { type: 'string' }, variant: { type: 'string' }, loss: { type: 'string' }, sigma2: { type: 'string' }, mc: { type: 'string' }, seed: { type: 'string' }, 'max-memory': { type: 'string' }, ...distributedOptions },
  ntk: { ...common, ...distributedOptions, centering: { type: 'boolean' }, top: { type: 'string' } },
  spectrum: { ...common, redis: { type: 'string' }, shards: { type: 'string' }, store: { type: 'string' }, representation: { type: 'string' }, variant: { type: 'string' }, k: { type: 'string' }, which: { type: 'string' }, trace: { type: 'boolean' }, samples: { type: 'string' }, density: { type: 'boolean' }, probes: { type: 'string' }, steps: { type: 'string' }, seed: { type: 'string' } },
  info: { model: { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  worker: { redis: { type: 'string' }, concurrency: { type: 'string' }, 'lock-ms': { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
} as const;

/** Runs the CLI on `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(helpText(USAGES));
    return command ? 0 : USER_ERROR_EXIT_CODE;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    console.log(packageVersion());
    return 0;
  }
  try {
    if (!(command in OPTIONS)) throw new CliError(`unknown command '${command}'; commands: fim, ntk, spectrum, info, worker (nngeometry --help)`);
    const cmd = command as keyof typeof OPTIONS;
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({ args: rest, options: OPTIONS[cmd], strict: true, allowPositionals: false }) as { values: typeof values });
    } catch (e) {
      throw new CliError(`${(e as Error).message.split('\n')[0]} (nngeometry ${cmd} --help)`);
    }
    if (values.help) {
      console.log(`Usage: ${cmd === 'fim' ? FIM_USAGE : cmd === 'ntk' ? NTK_USAGE : cmd === 'spectrum' ? SPECTRUM_USAGE : cmd === 'worker' ? WORKER_USAGE : INFO_USAGE}`);
      return 0;
    }
    if (cmd === 'worker') {
      // Workers run tfjs in their compute threads, on the backend each run names.
      await workerCommand(values);
      return 0;
    }
    if (!values.model) throw new CliError(`--model is required (nngeometry ${cmd} --help)`);
    if (cmd === 'info') {
      await tf.ready();
      silenceCpuBanner();
      await infoCommand(values as { model?: string; json?: string });
      return 0;
    }
    const backend = await useBackend(String(values.backend));
    if (cmd === 'fim') await fimCommand(values, backend);
    else if (cmd === 'spectrum') await spectrumCommand(values, backend);
    else await ntkCommand(values, backend);
    return 0;
  } catch (e) {
    if (e instanceof CliError || e instanceof NNGeometryError) {
      const prefix = e instanceof UnsupportedLayerError ? 'unsupported layer: ' : '';
      console.error(`nngeometry: ${prefix}${(e as Error).message.split('\n')[0]}${hint((e as Error).message)}`);
      return USER_ERROR_EXIT_CODE;
    }
    throw e;
  }
}

/**
 * The way out the CLI adds to a library error: a layer without Kronecker factors (an LSTM, a
 * depthwise convolution, a normalisation) is supported, so --ignore-unsupported does not skip
 * it; ekfac-blockdiag computes it as an exact block and the other layers as EKFAC.
 */
function hint(message: string): string {
  return /no Kronecker factors/.test(message) && !/ekfac-blockdiag/.test(message)
    ? '; --ignore-unsupported does not skip it (the layer is supported, without Kronecker factors): use --representation ekfac-blockdiag (EKFAC where a layer has factors, an exact block elsewhere) or diag'
    : '';
}

/** Whether this module is the program (node dist/cli/main.js, an npm bin link, tsx), not an import. */
function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `nngeometry info … | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
