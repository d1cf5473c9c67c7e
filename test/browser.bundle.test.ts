// Browser, as the README's "In the browser" section tells a user: its page, worker and Vite config, bundled with Vite
// and with esbuild, run in headless Chromium with and without cross-origin isolation and under two Content Security
// Policies; each page must show what the README says it shows.
import { execFileSync } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import type { Browser } from 'playwright-core';
import { wasmBytes } from 'macslot';
import { debugWasmBytes } from 'macslot/debug';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPresent, chromiumRequired, launchChromium, requireChromium } from './support/browser.js';
import { blocks, root, type Block } from './support/readme.js';

const PAGE_TIMEOUT_MS = 30_000;
const SECTION = '## In the browser';
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

const section = blocks().filter((b) => b.heading === SECTION);

function named(file: string): Block {
  const b = section.find((x) => x.file === file);
  expect(b, `README "${SECTION}" has no block starting // ${file}`).toBeDefined();
  return b!;
}

/** The lines of the first ```text block of the section whose first line starts with `start`. */
function shown(start: string): string[] {
  const b = section.find((x) => x.lang === 'text' && x.code.startsWith(start));
  expect(b, `README "${SECTION}" shows no output starting "${start}"`).toBeDefined();
  return b!.code.trimEnd().split('\n');
}

/** The header a ```text block of the section gives, e.g. `Content-Security-Policy`. */
function header(name: string): string {
  const line = section.flatMap((x) => (x.lang === 'text' ? x.code.split('\n') : [])).find((l) => l.startsWith(`${name}: `));
  expect(line, `README "${SECTION}" gives no ${name} header`).toBeDefined();
  return line!.slice(name.length + 2);
}

interface Scenario {
  name: string;
  headers: Record<string, string>;
  /** What the page must show, line by line; a RegExp matches a line. */
  expected: () => readonly (string | RegExp)[];
}

// Every situation the README describes, with the output it says the page shows.
const SCENARIOS: readonly Scenario[] = [
  { name: 'isolated', headers: ISOLATION, expected: () => named('worker.js').next!.next!.code.trimEnd().split('\n') },
  { name: 'not-isolated', headers: {}, expected: () => shown('main thread: unicast-exact, ordinary memory') },
  {
    name: 'csp-without-wasm',
    headers: { ...ISOLATION, 'Content-Security-Policy': "default-src 'self'; script-src 'self'" },
    expected: () => [
      /^NOT_SUPPORTED: the Content Security Policy forbids compiling WebAssembly; add 'wasm-unsafe-eval' to its script-src \(/,
    ],
  },
  {
    name: 'csp-as-documented',
    headers: { ...ISOLATION, 'Content-Security-Policy': header('Content-Security-Policy') },
    expected: () => named('worker.js').next!.next!.code.trimEnd().split('\n'),
  },
];

const dir = mkdtempSync(join(root, '.browser-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Serves the folder `base` at the root of its own origin, every response with `headers`. */
function serve(base: string, headers: Record<string, string>): Promise<Server> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    const file = resolve(base, path === '/' ? 'index.html' : path.slice(1));
    const all = { ...headers, 'Cache-Control': 'no-store' };
    // A path that resolves outside its folder is refused, so the server never exposes the rest of the disk.
    if (!file.startsWith(base + sep)) {
      res.writeHead(404, { ...all, 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { ...all, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404, { ...all, 'Content-Type': 'text/plain' }).end('not found'),
    );
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok(server));
  });
}

/** Writes the README's page, worker, HTML and Vite config into a project whose `macslot` is this package. */
function project(): string {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'node_modules'), { recursive: true });
  symlinkSync(root, join(src, 'node_modules', 'macslot'), 'dir');
  for (const file of ['page.js', 'worker.js', 'vite.config.js']) writeFileSync(join(src, file), named(file).code);
  const html = section.find((b) => b.lang === 'html');
  expect(html, `README "${SECTION}" has no html block`).toBeDefined();
  writeFileSync(join(src, 'index.html'), html!.code);
  return src;
}

const BUNDLERS: readonly { name: string; build: (src: string, out: string) => void }[] = [
  {
    name: 'vite',
    build: (src, out) => {
      execFileSync(
        process.execPath,
        [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--outDir', out, '--emptyOutDir', '--logLevel', 'error'],
        { cwd: src, stdio: 'pipe' },
      );
    },
  },
  {
    name: 'esbuild',
    build: (src, out) => {
      // The command the README gives, with the output folder this test serves.
      execFileSync(
        join(root, 'node_modules', '.bin', 'esbuild'),
        ['page.js', 'worker.js', '--bundle', '--format=esm', `--outdir=${out}`, '--log-level=error'],
        { cwd: src, stdio: 'pipe' },
      );
      copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
    },
  },
];

(chromiumPresent || chromiumRequired ? describe : describe.skip)('the README browser page, bundled', () => {
  let browser: Browser | undefined;

  beforeAll(async () => {
    requireChromium();
    expect(existsSync(join(root, 'dist/index.js')), 'run npm run build first').toBe(true);
    const src = project();
    for (const b of BUNDLERS) b.build(src, join(dir, b.name));
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  it.each(BUNDLERS.map((b) => b.name))(
    '%s: the bundle carries the release Wasm, so nothing else is fetched, and not the debug build',
    (name) => {
      const files = readdirSync(join(dir, name), { recursive: true }).map(String);
      expect(files.filter((f) => f.endsWith('.wasm'))).toEqual([]);
      const scripts = files.filter((f) => f.endsWith('.js'));
      expect(scripts.length).toBeGreaterThanOrEqual(2);
      const text = scripts.map((f) => readFileSync(join(dir, name, f), 'utf8')).join('\n');
      // A stretch of each build's base64 text, from its middle, where the builds differ.
      const stretch = (bytes: Uint8Array): string => {
        const b64 = Buffer.from(bytes).toString('base64');
        return b64.slice(Math.floor(b64.length / 8) * 4, Math.floor(b64.length / 8) * 4 + 64);
      };
      expect(text.includes(stretch(wasmBytes('release'))), 'the release build is in the bundle').toBe(true);
      expect(text.includes(stretch(debugWasmBytes())), 'the debug build (macslot/debug) is in the bundle').toBe(false);
    },
  );

  const cases = BUNDLERS.flatMap((b) => SCENARIOS.map((s) => [`${b.name}, ${s.name}`, b.name, s] as const));
  it.each(cases)(
    '%s: the page shows what the README says',
    async (_, bundle, scenario) => {
      const server = await serve(join(dir, bundle), scenario.headers);
      const page = await browser!.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.stack ?? e.message}`));
      page.on('console', (m) => {
        // Failed requests are reported below, with their URL. The refusal the CSP scenario provokes is reported on the
        // console too; anything else is a problem.
        const expectedRefusal = scenario.name === 'csp-without-wasm' && /Content Security Policy|wasm-unsafe-eval/.test(m.text());
        if (m.type() === 'error' && !expectedRefusal && !m.text().startsWith('Failed to load resource'))
          problems.push(`console.error: ${m.text()}`);
      });
      page.on('response', (r) => {
        // The browser asks for a favicon the README's page does not have.
        if (r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico') problems.push(`HTTP ${r.status()}: ${r.url()}`);
      });
      try {
        const { port } = server.address() as AddressInfo;
        await page.goto(`http://127.0.0.1:${port}/`, { timeout: 15_000 });
        const expected = scenario.expected();
        // The page is done when it shows as many lines as expected (or a page error ends it early).
        // Functions, not strings: a string would be evaluated in the page, which the CSP scenarios forbid. The page's
        // DOM types are not loaded in this project, hence the cast.
        type Page = { document: { body: { innerText: string } } };
        await page
          .waitForFunction((n) => (globalThis as unknown as Page).document.body.innerText.trim().split('\n').length >= n, expected.length, {
            timeout: PAGE_TIMEOUT_MS,
          })
          .catch((err: unknown) => {
            problems.push(`waiting for ${expected.length} lines: ${String(err)}`);
          });
        const lines = await page.evaluate(() => (globalThis as unknown as Page).document.body.innerText.trim().split('\n'));
        const report = `page showed:\n${lines.join('\n')}\nproblems:\n${problems.join('\n') || '(none)'}`;
        expect(problems, report).toEqual([]);
        expect(lines.length, report).toBe(expected.length);
        expected.forEach((want, i) =>
          typeof want === 'string' ? expect(lines[i], report).toBe(want) : expect(lines[i], report).toMatch(want),
        );
      } finally {
        await page.close();
        await new Promise((done) => server.close(done));
      }
    },
    PAGE_TIMEOUT_MS + 20_000,
  );
});
