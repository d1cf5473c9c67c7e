// Browser: the built package in headless Chromium under COOP/COEP, the data plane in a module Web Worker over shared memory, checked
// against the reference filter.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { chromiumPresent, chromiumRequired, launchChromium, requireChromium } from './support/browser.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const RESULT_TIMEOUT_MS = 45_000;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

interface BrowserResult {
  ok: boolean;
  isolated: boolean;
  shared: boolean;
  workerShared: boolean;
  workerIsolated: boolean;
  workerLane: number;
  frames: number;
  mismatches: number;
  mainMismatches: number;
  samples: string[];
  rules: Record<string, number>;
  ring: { expected: number; frames: number; mismatches: number; woke: boolean; waitedMs: number; ringDrops: number };
  errors: string[];
}

/** Serves `/dist/*` from the build and everything else from test/browser, every response cross-origin isolated. */
function serve(): Promise<Server> {
  const dist = resolve(root, 'dist');
  const pages = resolve(root, 'test/browser');
  const server = createServer((req, res) => {
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const [base, rest] = path.startsWith('/dist/')
      ? [dist, path.slice('/dist/'.length)]
      : [pages, path === '/' ? 'index.html' : path.slice(1)];
    const file = resolve(base, rest);
    // A path that resolves outside its folder is refused, so the server never exposes the rest of the disk.
    if (!file.startsWith(base + sep)) {
      res.writeHead(403, { ...headers, 'Content-Type': 'text/plain' }).end('forbidden');
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end(`not found: ${path}`),
    );
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok(server));
  });
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

describe('browser', () => {
  it.skipIf(!chromiumPresent && !chromiumRequired)(
    'runs the data plane in a Web Worker over shared memory, matching the reference filter',
    async () => {
      requireChromium();
      if (!existsSync(resolve(root, 'dist/index.js'))) throw new Error('dist/index.js is missing; run npm run build first');
      const problems: string[] = [];
      const server = await serve();
      let browser: Browser | undefined;
      let result: BrowserResult | undefined;
      try {
        const { port } = server.address() as AddressInfo;
        browser = await launchChromium();
        const page = await browser.newPage();
        page.on('console', (m) => {
          if (m.type() === 'error' || m.type() === 'warning')
            problems.push(`${m.worker() ? 'worker' : 'page'} console.${m.type()}: ${m.text()}`);
        });
        page.on('worker', (w) =>
          w.on('console', (m) => {
            const line = `worker console.${m.type()}: ${m.text()}`;
            if ((m.type() === 'error' || m.type() === 'warning') && !problems.includes(line)) problems.push(line);
          }),
        );
        page.on('pageerror', (e) => problems.push(`page error: ${e.stack ?? e.message}`));
        page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
        page.on('response', (r) => {
          if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
        });
        await page.goto(`http://127.0.0.1:${port}/`, { timeout: 15_000 });
        result = await within(
          page.evaluate(() => (globalThis as unknown as { macslotResult?: Promise<BrowserResult> }).macslotResult),
          RESULT_TIMEOUT_MS,
          'the page result',
        );
      } finally {
        await browser?.close();
        await new Promise((done) => server.close(done));
      }

      const report = `browser result: ${JSON.stringify(result, null, 2)}\nconsole and page problems:\n${problems.join('\n') || '(none)'}`;
      expect(result, report).toBeDefined();
      const r = result!;
      expect(r.errors, report).toEqual([]);
      expect(problems, report).toEqual([]);
      expect(r.isolated, report).toBe(true);
      expect(r.workerIsolated, report).toBe(true);
      expect(r.shared, report).toBe(true);
      expect(r.workerShared, report).toBe(true);
      // Lane 0 belongs to the creating thread; the worker must have claimed one of its own.
      expect(r.workerLane, report).toBeGreaterThan(0);
      expect(r.frames, report).toBeGreaterThanOrEqual(1000);
      expect(r.mismatches, report).toBe(0);
      expect(r.mainMismatches, report).toBe(0);
      // The frames must have reached every rule the setup provokes, or a zero mismatch count proves little.
      for (const rule of [
        'broadcast',
        'multicast-exact',
        'multicast-hash',
        'unicast-exact',
        'software',
        'promiscuous',
        'drop-unknown',
        'drop-multicast',
        'drop-runt',
        'drop-oversize',
      ]) {
        expect(r.rules[rule] ?? 0, `${rule} never occurred\n${report}`).toBeGreaterThan(0);
      }
      expect(r.ring.expected, report).toBeGreaterThan(0);
      expect(r.ring.frames, report).toBe(r.ring.expected);
      expect(r.ring.mismatches, report).toBe(0);
      expect(r.ring.ringDrops, report).toBe(0);
      expect(r.ring.woke, report).toBe(true);
      // The worker sleeps on the ring for at most 20 s: a wait that lasted that long ended by its limit, not by a doorbell.
      expect(r.ring.waitedMs, report).toBeLessThan(20_000);
      expect(r.ok, report).toBe(true);
    },
  );
});
