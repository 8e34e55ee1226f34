/**
 * `npm run demo`: serves demo/dist on http://localhost:8080 (PORT to change it) with a minimal
 * static file server (no dependency). Also used by the browser test on a free port.
 */
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIST } from './build.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json',
  '.json': 'application/json', '.wasm': 'application/wasm', '.bin': 'application/octet-stream', '.gz': 'application/octet-stream',
  '.md': 'text/plain; charset=utf-8',
};

/** Starts a static server for `dir` on `port` (0: any free port); resolves once listening. */
export function serveStatic(dir: string, port: number): Promise<Server> {
  const base = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const file = normalize(join(base, path.endsWith('/') ? `${path}index.html` : path));
    if (!(file === base || file.startsWith(base + sep)) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    // .gz files are served as they are (the page decompresses them), not with Content-Encoding.
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok(server));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!existsSync(join(DIST, 'index.html'))) {
    console.error('demo/dist is missing: run `npm run demo:build` first (`npm run demo` does both)');
    process.exit(2);
  }
  const port = Number(process.env.PORT ?? 8080);
  await serveStatic(DIST, port);
  console.log(`nngeometry demo on http://localhost:${port}/ (Ctrl-C to stop)`);
}
