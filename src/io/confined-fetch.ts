/**
 * A `fetch` for tfjs's http model handler that treats a remote model.json as untrusted: every
 * request must stay on the model.json's origin and under its folder (a manifest naming
 * '../x' or another host is refused before any request), and no response body is read past what
 * the manifest allows — the model.json itself at most MAX_MODEL_JSON_BYTES, each weight shard at
 * most the bytes of its manifest group (the exact total is checked when the model is built).
 * Browser-safe (global fetch and Response).
 */
import { InvalidArgumentError } from '../errors.js';
import { checkManifest, entriesBytes } from './weights-manifest.js';

/** The largest model.json read (its topology; the weights are in the shards): 64 MiB. */
export const MAX_MODEL_JSON_BYTES = 64 * 1024 * 1024;

/** The body of `response`, refused as soon as it exceeds `limit` bytes. */
async function readLimited(response: Response, limit: number, what: string): Promise<Uint8Array> {
  const tooLong = () => new InvalidArgumentError(`loadModel: '${what}' sends more than the ${limit} bytes its manifest allows; the files do not belong to this model.json`);
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > limit) throw tooLong();
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLong();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * The fetch to give `tf.io.http(modelUrl, { fetchFunc })` (see the file comment). tfjs requests
 * the model.json first, then its shards: the manifest read from the first response bounds the others.
 *
 * @example
 * const artifacts = await tf.io.http(url, { fetchFunc: confinedFetch(url) }).load();
 */
export function confinedFetch(modelUrl: string): (input: RequestInfo | URL, init?: RequestInit) => Promise<Response> {
  const base = new URL(modelUrl);
  const folder = base.href.slice(0, base.href.lastIndexOf('/') + 1);
  let limits: Map<string, number> | undefined;
  let allShards = 0;
  return async (input, init) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input.toString() : input.url, base);
    if (url.origin !== base.origin || !url.href.startsWith(folder)) {
      throw new InvalidArgumentError(`loadModel: '${modelUrl}' names the weights URL '${url.href}', outside the model's folder '${folder}'; weight files must be named relative to it`);
    }
    const response = await fetch(url, init);
    if (!response.ok || response.body === null) return response;
    const isModelJson = limits === undefined;
    const body = await readLimited(response, isModelJson ? MAX_MODEL_JSON_BYTES : (limits!.get(url.href) ?? allShards), url.href);
    if (isModelJson) {
      limits = new Map();
      try {
        const groups = checkManifest((JSON.parse(new TextDecoder().decode(body)) as { weightsManifest?: unknown }).weightsManifest, `loadModel: '${modelUrl}'`);
        for (const g of groups) {
          const bytes = entriesBytes(g.weights, `loadModel: '${modelUrl}'`);
          allShards += bytes;
          for (const p of g.paths) limits.set(new URL(p, base).href, bytes);
        }
      } catch (e) {
        // A model.json tfjs cannot use fails in tfjs's own parsing, with our checks' error where ours found the fault.
        if (e instanceof InvalidArgumentError) throw e;
      }
    }
    return new Response(body.buffer as ArrayBuffer, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}
