/**
 * `nngeometry worker`: serves distributed passes (shard and merge jobs of `nngeometry fim
 * --redis`) from a Redis server until SIGTERM or SIGINT, then lets its current shard finish
 * and exits 0. Each line it prints is one event (a shard done, a failure).
 */
import { startWorker } from '../../distributed/worker.js';
import { CliError } from '../errors.js';
import { positiveInt } from '../inputs.js';

export const WORKER_USAGE = `nngeometry worker --redis redis://HOST:PORT [--concurrency 1] [--lock-ms 30000] [--quiet]`;

export interface WorkerValues {
  redis?: string;
  concurrency?: string;
  'lock-ms'?: string;
  quiet?: boolean;
}

/**
 * Runs a worker until a termination signal; resolves when it has shut down.
 *
 * @example await workerCommand({ redis: 'redis://localhost:6379' });
 */
export async function workerCommand(v: WorkerValues): Promise<void> {
  if (!v.redis) throw new CliError('--redis is required (redis://HOST:PORT)');
  const concurrency = positiveInt(v.concurrency, '--concurrency', 1);
  const lockDurationMs = positiveInt(v['lock-ms'], '--lock-ms', 30_000);
  const log = (line: string) => {
    if (!v.quiet) console.log(`${new Date().toISOString()} ${line}`);
  };
  const worker = await startWorker({ redis: v.redis, concurrency, lockDurationMs, onEvent: log });
  // The line tests and supervisors wait for.
  console.log(`worker ${worker.name} serving ${v.redis} (concurrency ${concurrency})`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log(`${signal}: finishing the current shard, then exiting`);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      void worker.close().then(resolve, resolve);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  log(`worker ${worker.name} stopped`);
}
