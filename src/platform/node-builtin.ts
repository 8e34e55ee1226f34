/**
 * Node's built-in modules, loaded on demand. The library's Node-only paths (file paths in
 * `save` / `load` / `loadModel` / `saveModel`, the worker-thread pool behind `FIM({ workers })`)
 * take their built-ins from here, never from an `import … from 'node:…'`: the specifier is
 * computed at run time, so bundlers (esbuild, webpack, Vite) building for the browser have no
 * `node:` module to resolve, and the browser build needs no `--external:node:*`.
 */
import { InvalidArgumentError } from '../errors.js';

/** The built-ins the library loads, by name (without the `node:` scheme). */
export interface NodeBuiltins {
  fs: typeof import('node:fs');
  'fs/promises': typeof import('node:fs/promises');
  path: typeof import('node:path');
  crypto: typeof import('node:crypto');
  os: typeof import('node:os');
  worker_threads: typeof import('node:worker_threads');
}

/** True when running in Node (where `node:` built-ins exist). */
export function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/**
 * Imports `node:<name>`; `what` names the feature that needs it, for the error outside Node.
 * @example const fs = await nodeBuiltin('fs/promises', 'save to a file path');
 */
export async function nodeBuiltin<K extends keyof NodeBuiltins>(name: K, what: string): Promise<NodeBuiltins[K]> {
  if (!isNode()) {
    throw new InvalidArgumentError(`${what} needs Node (node:${name}); in a browser pass bytes, a URL or { read, write } callbacks instead`);
  }
  const specifier = `node:${name}`;
  return (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as NodeBuiltins[K];
}
