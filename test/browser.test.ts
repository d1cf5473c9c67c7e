// The package in headless Chromium: a cross-origin-isolated page runs the data plane in a Web Worker over shared memory.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const REQUIRED = process.env.MACSLOT_REQUIRE_BROWSER === '1';
const present = existsSync(CHROMIUM);
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.map': 'application/json' };

let server: Server;
let origin = '';

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (path === '/favicon.ico') return void res.writeHead(204).end();
    const allowed = path.startsWith('/dist/') || path.startsWith('/test/browser/');
    try {
      if (!allowed) throw new Error('not served');
      const body = await readFile(join(ROOT, path));
      // COOP + COEP make the page cross-origin isolated, the condition for SharedArrayBuffer.
      res.writeHead(200, {
        'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream',
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp',
      });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('in Chromium', () => {
  it('has a browser to run in when CI requires one', () => {
    // A missing browser may skip the test below locally, never in CI.
    expect(present || !REQUIRED, `MACSLOT_REQUIRE_BROWSER=1 but no Chromium at ${CHROMIUM}`).toBe(true);
  });

  it.skipIf(!present)('classifies in a Web Worker exactly as the reference filter does', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const errors: string[] = [];
    try {
      const page = await browser.newPage();
      page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
      page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
      await page.goto(`${origin}/test/browser/index.html`);
      await page.waitForFunction(() => (globalThis as { __result?: unknown }).__result !== undefined, null, { timeout: 30_000 });
      const result = await page.evaluate(() => (globalThis as unknown as { __result: Record<string, unknown> }).__result);
      expect({ result, errors }).toMatchObject({ result: { ok: true, mismatches: 0, isolated: true, shared: true }, errors: [] });
      expect(result.frames).toBeGreaterThanOrEqual(1000);
    } finally {
      await browser.close();
    }
  });
});
