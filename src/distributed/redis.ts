/**
 * Connecting to the run's Redis: the URL checked, the server reached within a few seconds or a
 * one-line DistributedError naming the URL and the way out, and its version checked (BullMQ
 * needs Redis ≥ 6.2). `ioredis` is loaded on demand, so that the library's other entry points
 * never need it. Node only.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { DistributedError } from '../errors.js';

/** How long to try reaching Redis before giving up (ms). */
export const CONNECT_TIMEOUT_MS = 3000;

/** Host and port of a redis:// URL (for messages). */
export function redisLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}:${u.port || '6379'}`;
  } catch {
    return url;
  }
}

/** Throws unless `url` is a redis:// or rediss:// URL. */
export function checkRedisUrl(url: unknown, where: string): string {
  if (typeof url !== 'string') throw new DistributedError(`${where}: 'redis' must be a URL such as redis://localhost:6379, received ${typeof url}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DistributedError(`${where}: '${url}' is not a URL; expected redis://HOST:PORT`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new DistributedError(`${where}: '${url}' must start with redis:// or rediss://`);
  return url;
}

/**
 * A connected ioredis client. `blocking`: commands wait for a reconnection forever (what BullMQ
 * workers need); otherwise a command fails after one reconnection attempt, so that a
 * coordinator notices a lost Redis instead of hanging.
 */
export async function connectRedis(url: string, options: { blocking: boolean; where: string }): Promise<Redis> {
  checkRedisUrl(url, options.where);
  const { Redis } = await import('ioredis');
  const settings: RedisOptions = {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: options.blocking ? null : 1,
    enableOfflineQueue: true,
    // Reconnect quickly at first, then every second.
    retryStrategy: (times) => Math.min(times * 100, 1000),
  };
  const client = new Redis(url, settings);
  let lastError = '';
  client.on('error', (e: Error & { code?: string }) => (lastError = e.code ?? e.message));
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), CONNECT_TIMEOUT_MS).unref());
  try {
    await Promise.race([client.connect(), timeout]);
    const info = await Promise.race([client.info('server'), timeout]);
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
      throw new DistributedError(`${options.where}: Redis at ${redisLabel(url)} is version ${version[1]}.${version[2]}; BullMQ needs Redis 6.2 or later`);
    }
  } catch (e) {
    client.disconnect();
    if (e instanceof DistributedError) throw e;
    const why = lastError || (e as Error).message;
    throw new DistributedError(`${options.where}: Redis at ${redisLabel(url)} is unreachable (${why}); start redis-server there or pass the right --redis URL`);
  }
  return client;
}
