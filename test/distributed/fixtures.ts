/**
 * Fixtures of the distributed tests: a redis-server of their own on a free port (persistence
 * off), worker processes of the real CLI, and a small model and data set on disk.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../../src/tf.js';
import { saveModel } from '../../src/io/load-model.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Why the distributed tests cannot run here (no redis-server), or null. */
export function redisMissing(): string | null {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'redis-server is not installed (Debian: apt-get install redis-server); the distributed tests are skipped';
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server on a free port with persistence off. */
export class RedisServer {
  readonly url: string;
  private constructor(readonly port: number, private process: ChildProcess) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async start(port?: number): Promise<RedisServer> {
    const p = port ?? (await freePort());
    const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    const server = new RedisServer(p, child);
    await server.waitReady();
    return server;
  }

  private async waitReady(): Promise<void> {
    const { Redis } = await import('ioredis');
    for (let i = 0; i < 100; i++) {
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.ping();
        c.disconnect();
        return;
      } catch {
        c.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** Number of keys in the database. */
  async keys(pattern = '*'): Promise<string[]> {
    const { Redis } = await import('ioredis');
    const c = new Redis(this.url);
    try {
      return await c.keys(pattern);
    } finally {
      c.disconnect();
    }
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((r) => this.process.once('exit', r));
    this.process.kill('SIGKILL');
    await exited;
  }
}

/** A `nngeometry worker` process of the CLI, on the sources (node + tsx). */
export class WorkerProcess {
  output = '';
  readonly exited: Promise<number | null>;
  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  static start(redisUrl: string, extra: string[] = [], env: Record<string, string> = {}): WorkerProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--redis', redisUrl, ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    return new WorkerProcess(child);
  }

  /** Resolves once the worker printed `text`. */
  async waitFor(text: string | RegExp, timeoutMs = 60_000): Promise<void> {
    const t0 = Date.now();
    while (!(typeof text === 'string' ? this.output.includes(text) : text.test(this.output))) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`worker did not print ${String(text)} within ${timeoutMs} ms; output:\n${this.output}`);
      if (this.child.exitCode !== null) throw new Error(`worker exited (${this.child.exitCode}) before printing ${String(text)}; output:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** A small MLP (8 → 6 relu → 4 logits), saved under `dir`; returns the model.json path. */
export async function saveSmallModel(dir: string, seed = 3): Promise<string> {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ name: 'hidden', inputShape: [8], units: 6, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }), biasInitializer: tf.initializers.randomNormal({ seed: seed + 1, stddev: 0.1 }) }),
      tf.layers.dense({ name: 'logits', units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }), biasInitializer: tf.initializers.randomNormal({ seed: seed + 3, stddev: 0.1 }) }),
    ],
  });
  try {
    await saveModel(model, join(dir, 'model'));
  } finally {
    model.dispose();
  }
  return join(dir, 'model', 'model.json');
}

/** `n` examples of 8 values and labels in 0..3 as JSON ({ xs, ys }); returns the path. */
export function saveSmallData(dir: string, n: number, name = 'data.json', seed = 11): string {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const xs = Array.from({ length: n }, () => Array.from({ length: 8 }, () => Number((rand() * 4 - 2).toFixed(4))));
  const ys = Array.from({ length: n }, () => Math.floor(rand() * 4));
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ xs, ys }));
  return path;
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'nngeometry-distributed-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What the engine tests share: their Redis, two serving workers, and the small model and data on disk. */
export interface TwoWorkerCluster {
  redis: RedisServer;
  workers: WorkerProcess[];
  modelPath: string;
  dataPath: string;
  xs: number[][];
  ys: number[];
}

/**
 * Starts a redis-server of the test's own, saves the small model and `examples` examples under
 * `dir`, and starts two `nngeometry worker` processes (3 s locks), waiting until both serve.
 */
export async function startTwoWorkerCluster(dir: string, examples: number): Promise<TwoWorkerCluster> {
  const redis = await RedisServer.start();
  const modelPath = await saveSmallModel(dir);
  const dataPath = saveSmallData(dir, examples);
  const { xs, ys } = JSON.parse(readFileSync(dataPath, 'utf8')) as { xs: number[][]; ys: number[] };
  const workers = [WorkerProcess.start(redis.url, ['--lock-ms', '3000']), WorkerProcess.start(redis.url, ['--lock-ms', '3000'])];
  await Promise.all(workers.map((w) => w.waitFor('serving')));
  return { redis, workers, modelPath, dataPath, xs, ys };
}

/** Kills the workers and stops the Redis of `startTwoWorkerCluster` (either may be missing if `before` failed). */
export async function stopTwoWorkerCluster(workers: WorkerProcess[], redis: RedisServer | undefined): Promise<void> {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
}
