// Command line: `macslot serve`, the live page on 127.0.0.1, serving only the bundled files of dist/web.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MacslotError } from '../errors.js';
import type { Io } from './common.js';
import { onInterrupt } from './interrupt.js';

/** What `macslot serve` was asked to do. */
export interface ServeOptions {
  /** TCP port on 127.0.0.1; 0 picks any free one. */
  readonly port: number;
  /** Send the cross-origin isolation headers (COOP and COEP). Off only to show the page's single-thread mode. */
  readonly isolation: boolean;
  /** Print the URL as one JSON line. */
  readonly json: boolean;
}

/** One file of the page, read once at start. */
interface Asset {
  readonly body: Buffer;
  readonly type: string;
  /** A strong validator from the content, so a reload revalidates with a 304 instead of fetching again. */
  readonly etag: string;
}

const HOST = '127.0.0.1';
const MAX_URL = 2048;
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};
// Only what the page needs: its own scripts, Wasm compilation (compiled from bytes in the script), its own workers.
const CSP =
  "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The folder of the bundled page beside the built CLI (dist/web). */
export function webRoot(): string {
  return fileURLToPath(new URL('../web/', import.meta.url));
}

/**
 * Reads the page's files (flat, no folders) into memory: the server answers only for these names, so no request can reach
 * another file. Throws NOT_SUPPORTED when the page was not built.
 */
export function loadAssets(root: string): Map<string, Asset> {
  let names: string[];
  try {
    names = readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isFile() && TYPES[extname(e.name)] !== undefined)
      .map((e) => e.name);
  } catch {
    names = [];
  }
  // Both, so that the sources (src/web, where index.html also lives) are never served as if they were the page.
  if (!names.includes('index.html') || !names.includes('page.js'))
    throw new MacslotError('NOT_SUPPORTED', `the page is not built: no index.html and page.js in ${root} (run npm run build)`);
  return new Map(
    names.map((n) => {
      const body = readFileSync(`${root}${n}`);
      return [`/${n}`, { body, type: TYPES[extname(n)]!, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }];
    }),
  );
}

/** Headers every response carries. */
function baseHeaders(isolation: boolean): Record<string, string> {
  return {
    ...(isolation ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {}),
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-cache',
  };
}

/** Returns the status and reason for a request that cannot be served, or the asset's path. */
function route(req: IncomingMessage, assets: ReadonlyMap<string, Asset>): { status: number; reason: string } | { path: string } {
  const url = req.url ?? '';
  if (url.length > MAX_URL) return { status: 414, reason: `the URL is longer than ${MAX_URL} characters` };
  if (!url.startsWith('/')) return { status: 400, reason: 'the request target is not a path' };
  const raw = url.split(/[?#]/, 1)[0]!;
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return { status: 400, reason: 'the path is not valid percent-encoding' };
  }
  // Refused outright rather than normalized: a page's own links never contain these.
  if (/[\\\0]/.test(path) || path.split('/').some((part) => part === '..' || part === '.'))
    return { status: 400, reason: 'the path has a dot segment, a backslash or a NUL' };
  const name = path === '/' ? '/index.html' : path;
  if (!assets.has(name)) return { status: 404, reason: `not found: ${path.slice(0, 200)}` };
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return { status: 405, reason: `method ${String(req.method).slice(0, 20)} is not allowed` };
  return { path: name };
}

/** Answers one request from `assets`: GET and HEAD only, each known name exactly, everything else a clear error. */
export function answer(req: IncomingMessage, res: ServerResponse, assets: ReadonlyMap<string, Asset>, isolation: boolean): void {
  const headers = baseHeaders(isolation);
  const r = route(req, assets);
  if ('status' in r) {
    const extra = r.status === 405 ? { Allow: 'GET, HEAD' } : {};
    res.writeHead(r.status, { ...headers, ...extra, 'Content-Type': 'text/plain; charset=utf-8' }).end(`${r.status} ${r.reason}\n`);
    return;
  }
  const a = assets.get(r.path)!;
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, { ...headers, ETag: a.etag }).end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Type': a.type, 'Content-Length': String(a.body.length), ETag: a.etag });
  res.end(req.method === 'HEAD' ? undefined : a.body);
}

/** Starts the server on 127.0.0.1:`port`; resolves once it listens. Throws NOT_SUPPORTED when the page is not built. */
export function startServer(options: Pick<ServeOptions, 'port' | 'isolation'>, root = webRoot()): Promise<Server> {
  const assets = loadAssets(root);
  const server = createServer((req, res) => answer(req, res, assets, options.isolation));
  // A peer that sends garbage gets a 400 from Node and is closed; it never ends the process.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port, HOST, () => {
      server.off('error', fail);
      ok(server);
    });
  });
}

/** Serves the page until SIGINT, SIGTERM or SIGHUP; prints the URL first. */
export async function runServe(o: ServeOptions, io: Io): Promise<number> {
  const server = await startServer(o);
  const { port } = server.address() as AddressInfo;
  const url = `http://${HOST}:${port}/`;
  const stop = (): void => {
    server.closeAllConnections();
    server.close();
  };
  const disarm = onInterrupt(stop);
  try {
    if (o.json) io.out(`${JSON.stringify({ url, isolated: o.isolation })}\n`);
    else
      io.out(
        `macslot serve: the live page is at ${url}\n` +
          (o.isolation ? '' : '  without cross-origin isolation: the page runs on one thread\n') +
          'Press Ctrl-C to stop.\n',
      );
  } catch (err) {
    // Nobody can learn the URL (a closed pipe, EPIPE): the server stops rather than outlive the command unseen.
    disarm();
    stop();
    throw err;
  }
  await new Promise((done) => server.once('close', done));
  return 0;
}
