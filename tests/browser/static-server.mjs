// A plain static file server, as any static host behaves, for the browser
// tests and the benchmarks. No dependencies beyond Node itself.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';

const TYPES = {
  '.mjs': 'text/javascript',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/**
 * Serves `root` like any static host: files only, no rewrites; a folder
 * without its trailing slash is redirected, as common hosts do.
 * - `prefix` mounts the site under a sub-path such as `/milih/`;
 * - `delayMs` holds back every file under `model/`, as a slow network would.
 * The returned object counts the bytes it sent (`bytesServed`) and can
 * switch to another folder (`setRoot`), as a new deployment does.
 */
export async function serveStatic(root, { delayMs = 0, prefix = '/' } = {}) {
  let current = root;
  const counters = { bytesServed: 0, requests: 0 };
  const server = createServer(async (req, res) => {
    try {
      if (delayMs > 0 && req.url.includes('/model/')) {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      if (pathname === prefix.replace(/\/$/, '') && prefix !== '/') {
        res.writeHead(301, { location: prefix + new URL(req.url, 'http://x').search });
        res.end();
        return;
      }
      if (!pathname.startsWith(prefix)) throw new Error('outside the site');
      const path = normalize(pathname.slice(prefix.length - 1));
      if (path.includes('..')) throw new Error('outside root');
      let file = join(current, path);
      if ((await stat(file)).isDirectory()) {
        if (!pathname.endsWith('/')) {
          res.writeHead(301, { location: `${pathname}/${new URL(req.url, 'http://x').search}` });
          res.end();
          return;
        }
        file = join(file, 'index.html');
      }
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': body.length,
      });
      res.end(body);
      counters.bytesServed += body.length;
      counters.requests += 1;
    } catch {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    counters,
    setRoot: (dir) => { current = dir; },
    close: () => new Promise((r) => { server.close(r); server.closeAllConnections(); }),
  };
}
