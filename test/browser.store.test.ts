// Browser store: the built package's MAC manager over IndexedDB and localStorage in headless Chromium: persistence across page loads, two
// tabs at once, and failing closed on corrupt data.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPresent, chromiumRequired, launchChromium, requireChromium } from './support/browser.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

interface Result {
  error?: string;
  backend?: string;
  location?: string;
  leases?: { mac: string; restored: boolean; policy: string }[];
  records?: number;
  code?: string;
  message?: string;
}

/** Serves `/dist/*` from the build and everything else from test/browser. */
function serve(): Promise<Server> {
  const dist = resolve(root, 'dist');
  const pages = resolve(root, 'test/browser');
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const [base, rest] = path.startsWith('/dist/') ? [dist, path.slice('/dist/'.length)] : [pages, path.slice(1)];
    const file = resolve(base, rest);
    if (!file.startsWith(base + sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    readFile(file).then(
      (body) =>
        res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' }).end(body),
      () => res.writeHead(404).end(`not found: ${path}`),
    );
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok(server));
  });
}

describe.skipIf(!chromiumPresent && !chromiumRequired)('browser store', () => {
  let server: Server;
  let browser: Browser;
  let context: BrowserContext;
  let base: string;
  const problems: string[] = [];

  beforeAll(async () => {
    requireChromium();
    if (!existsSync(resolve(root, 'dist/index.js'))) throw new Error('dist/index.js is missing; run npm run build first');
    server = await serve();
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    // One context for every page: its origin storage outlives each page, as a browser profile's does.
    context = await browser.newContext();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => server?.close(done));
  });

  async function load(query: string): Promise<Result> {
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
    });
    try {
      await page.goto(`${base}/store.html?${query}`, { timeout: 15_000 });
      return (await page.evaluate(() => (globalThis as unknown as { macslotStoreResult: Promise<Result> }).macslotStoreResult)) ?? {};
    } finally {
      await page.close();
    }
  }

  it.each(['indexeddb', 'localstorage'])('%s: a guest gets the same MACs back on the next page load', async (backend) => {
    const first = await load(`backend=${backend}&name=persist-${backend}&tag=vm&count=5&policy=random`);
    expect(first.error, JSON.stringify(first)).toBeUndefined();
    expect(first.backend).toBe(backend);
    expect(first.leases!.map((l) => l.restored)).toEqual([false, false, false, false, false]);
    const second = await load(`backend=${backend}&name=persist-${backend}&tag=vm&count=5&policy=random`);
    expect(second.leases!.map((l) => l.mac)).toEqual(first.leases!.map((l) => l.mac));
    expect(second.leases!.every((l) => l.restored && l.policy === 'random')).toBe(true);
    expect(second.records).toBe(5);
    expect(problems).toEqual([]);
  });

  it('indexeddb: two pages allocating from one block at once get no duplicates', async () => {
    const [a, b] = await Promise.all([load('name=race&tag=a&count=60'), load('name=race&tag=b&count=60')]);
    expect(a.error ?? b.error).toBeUndefined();
    const macs = [...a.leases!, ...b.leases!].map((l) => l.mac);
    expect(macs).toHaveLength(120);
    expect(new Set(macs).size).toBe(120);
    expect(problems).toEqual([]);
  });

  it.each(['indexeddb', 'localstorage'])('%s: corrupt data fails closed with STORE_CORRUPT naming the store', async (backend) => {
    const r = await load(`mode=corrupt&backend=${backend}&name=bad-${backend}`);
    expect(r.code, JSON.stringify(r)).toBe('STORE_CORRUPT');
    expect(r.message).toContain(`${backend}:macslot:bad-${backend}`);
  });
});
