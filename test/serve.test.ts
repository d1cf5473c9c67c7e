// `macslot serve` over HTTP: only the bundled page's own files, with the isolation and security headers, and a clear
// error for everything else (traversal, listings, other methods, bad paths); it ends on a signal and frees its port.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnTracked, waitForLine } from './support/processes.js';
import { CLI, requireBuild, startServe, stop, WEB } from './support/serve.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request with the path sent exactly as given (no normalization by a client library). */
function get(url: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Reply> {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ host: hostname, port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

/** Sends raw bytes and resolves with the whole reply once the server closes the connection. */
function raw(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const socket = connect(Number(port), hostname, () => socket.end(text));
    let reply = '';
    socket.on('data', (c) => (reply += c.toString()));
    socket.on('close', () => ok(reply));
    socket.on('error', fail);
  });
}

// Requests that must not reach a file: each with the status it gets.
const REFUSED: readonly { name: string; path: string; method?: string; status: number }[] = [
  { name: 'a dot-dot segment', path: '/../package.json', status: 400 },
  { name: 'dot-dot deeper', path: '/web/../../package.json', status: 400 },
  { name: 'percent-encoded dot-dot', path: '/%2e%2e/package.json', status: 400 },
  { name: 'encoded slash and dot-dot', path: '/..%2f..%2fetc%2fpasswd', status: 400 },
  { name: 'a dot segment', path: '/./index.html', status: 400 },
  { name: 'an encoded backslash', path: '/..%5cpackage.json', status: 400 },
  { name: 'an encoded NUL', path: '/page.js%00.html', status: 400 },
  { name: 'bad percent-encoding', path: '/%zz', status: 400 },
  { name: 'a file of the package outside the page', path: '/index.js', status: 404 },
  { name: 'the CLI', path: '/cli/main.js', status: 404 },
  { name: 'a folder (no listing)', path: '/web/', status: 404 },
  { name: 'the served folder itself with a name', path: '/dist/web/', status: 404 },
  { name: 'a missing file', path: '/nope.js', status: 404 },
  { name: 'POST', path: '/', method: 'POST', status: 405 },
  { name: 'PUT on a file', path: '/page.js', method: 'PUT', status: 405 },
  { name: 'DELETE', path: '/index.html', method: 'DELETE', status: 405 },
  { name: 'OPTIONS', path: '/', method: 'OPTIONS', status: 405 },
  { name: 'a URL over 2048 characters', path: `/${'a'.repeat(2100)}`, status: 414 },
];

describe('macslot serve', () => {
  it('serves every file of the page with the isolation and security headers, and HEAD and revalidation', async () => {
    const { child, url } = await startServe();
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const names = readdirSync(WEB);
      expect(names).toContain('page.js');
      expect(names).toContain('worker.js');
      for (const name of ['', ...names]) {
        const r = await get(url, `/${name}`);
        expect(r.status, name).toBe(200);
        expect(r.body.equals(readFileSync(join(WEB, name === '' ? 'index.html' : name))), name).toBe(true);
        expect(r.headers['cross-origin-opener-policy'], name).toBe('same-origin');
        expect(r.headers['cross-origin-embedder-policy'], name).toBe('require-corp');
        expect(r.headers['cross-origin-resource-policy'], name).toBe('same-origin');
        expect(r.headers['x-content-type-options'], name).toBe('nosniff');
        expect(r.headers['content-security-policy'], name).toContain("'wasm-unsafe-eval'");
        expect(r.headers['content-type'], name).toMatch(name.endsWith('.js') ? /^text\/javascript/ : /^text\/(html|css)/);
      }
      const head = await get(url, '/page.js', 'HEAD');
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      expect(Number(head.headers['content-length'])).toBe(readFileSync(join(WEB, 'page.js')).length);
      const etag = String(head.headers.etag);
      expect((await get(url, '/page.js', 'GET', { 'If-None-Match': etag })).status).toBe(304);
      expect((await get(url, '/page.js', 'GET', { 'If-None-Match': '"other"' })).status).toBe(200);
      // A query string does not change what is served.
      expect((await get(url, '/index.html?x=1')).status).toBe(200);
    } finally {
      await stop(child);
    }
  });

  it('refuses traversal, listings, other methods and bad paths with a clear error', async () => {
    const { child, url } = await startServe();
    try {
      for (const c of REFUSED) {
        const r = await get(url, c.path, c.method);
        expect(r.status, c.name).toBe(c.status);
        expect(r.body.toString(), c.name).toMatch(new RegExp(`^${c.status} \\S`));
        expect(r.headers['content-type'], c.name).toBe('text/plain; charset=utf-8');
        expect(r.body.toString(), c.name).not.toContain('"name"');
        if (c.status === 405) expect(r.headers.allow, c.name).toBe('GET, HEAD');
      }
      // Not a path at all, and not HTTP at all: a 400, and the server keeps serving.
      expect(await raw(url, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
      expect(await raw(url, 'NOT HTTP\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
      expect((await get(url, '/')).status).toBe(200);
    } finally {
      await stop(child);
    }
  });

  it('leaves out COOP and COEP with --no-isolation, and says so', async () => {
    const { child, url } = await startServe(['--no-isolation']);
    try {
      const r = await get(url, '/');
      expect(r.status).toBe(200);
      expect(r.headers['cross-origin-opener-policy']).toBeUndefined();
      expect(r.headers['cross-origin-embedder-policy']).toBeUndefined();
      expect(r.headers['content-security-policy']).toContain("'wasm-unsafe-eval'");
    } finally {
      await stop(child);
    }
  });

  it('ends on SIGINT and SIGTERM by that signal, and frees its port', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const { child, url } = await startServe();
      expect((await get(url, '/')).status).toBe(200);
      expect(await stop(child, signal)).toEqual({ code: null, signal });
      await expect(get(url, '/')).rejects.toThrow(/ECONNREFUSED/);
    }
  });

  it('stops by itself, quietly, when its standard output is closed before the URL is printed', async () => {
    requireBuild();
    const child = spawnTracked(process.execPath, [CLI, 'serve', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
      child.once('exit', (code, signal) => r({ code, signal })),
    );
    // Closed long before the CLI has loaded the page, so the URL's write fails with EPIPE (`macslot serve | true`).
    child.stdout!.destroy();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 20_000)))]);
    clearTimeout(timer);
    // Before, it went on serving a URL nobody could learn until a signal came.
    expect(ended, `still serving 20 s after its output closed (stderr: ${err})`).toEqual({ code: 0, signal: null });
    expect(err).toBe('');
  });

  it('prints the URL in words without --json, and refuses a bad port or a port in use', async () => {
    requireBuild();
    const words = spawnTracked(process.execPath, [CLI, 'serve'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const line = await waitForLine(words, (l) => l.includes('http://'), 20_000);
    expect(line).toMatch(/^macslot serve: the live page is at http:\/\/127\.0\.0\.1:\d+\/$/);
    await stop(words);
    const bad = spawnSync(process.execPath, [CLI, 'serve', '--port', '70000'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--port "70000" is not an integer in 0..65535');
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok));
    try {
      const port = (busy.address() as { port: number }).port;
      const r = spawnSync(process.execPath, [CLI, 'serve', '--port', String(port)], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('EADDRINUSE');
    } finally {
      await new Promise((done) => busy.close(done));
    }
  });
});
