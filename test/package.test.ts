// The published package as a user installs it: packed, installed into an empty project, imported through
// its exports map (`macslot`, `macslot/node`, `macslot/postgres` with pg, the schema), required from CommonJS, compiled against by a
// Node-only TypeScript project, and run through its `macslot` bin, with the .wasm inside.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTracked, waitForLine } from './support/processes.js';
import { root } from './support/readme.js';

const dir = mkdtempSync(join(tmpdir(), 'macslot-consumer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Manifest {
  version: string;
  dependencies?: Record<string, string>;
}

function manifest(name: string): Manifest {
  return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as Manifest;
}

/** Packs `name` and everything it depends on from the project's node_modules into `dir`; returns the tarballs. */
function packInstalled(names: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const before = new Set(readdirSync(dir));
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, join(root, 'node_modules', name)], {
      cwd: dir,
      stdio: 'pipe',
    });
    out.push(...readdirSync(dir).filter((f) => f.endsWith('.tgz') && !before.has(f)));
    for (const dep of Object.keys(manifest(name).dependencies ?? {})) visit(dep);
  };
  for (const name of names) visit(name);
  return out;
}

function run(file: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' });
}

const USE_ESM = `import { Nic, DataPlane, wasmBytes } from 'macslot';
import { FileStore, readCaptureFile } from 'macslot/node';
import { compileDebugDataPlane } from 'macslot/debug';
import { PostgresStore } from 'macslot/postgres';
const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 2 } });
const dp = await DataPlane.create(nic);
const { mac } = nic.openClient('vm').addressReserve();
const frame = new Uint8Array(60);
mac.writeTo(frame, 0);
const debug = await DataPlane.create(nic, { module: await compileDebugDataPlane() });
const verdict = dp.classify(frame);
const node = typeof FileStore + typeof readCaptureFile + typeof PostgresStore.open;
console.log(JSON.stringify({ verdict, debug: debug.classify(frame).rule, wasm: wasmBytes().length > 0, node }));
`;

const USE_CJS = `const { Nic, Mac } = require('macslot');
const { FileStore } = require('macslot/node');
const { debugWasmBytes } = require('macslot/debug');
const schema = require('macslot/schema/config.schema.json');
const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 2 } });
const { mac } = nic.openClient('vm').addressReserve();
const parsed = Mac.parse('0014.4f00.0002').toString();
const debug = debugWasmBytes().length > 0;
console.log(JSON.stringify({ mac: mac.toString(), parsed, store: typeof FileStore, schema: typeof schema.properties, debug }));
`;

// Uses types from both entry points, the data plane's Wasm handle and the browser store's IndexedDB option among them.
const USE_TS = `import { BrowserStore, DataPlane, Nic, type DataPlaneHandle, type MacslotErrorCode } from 'macslot';
import { FileStore, webSocketPort, type WebSocketLike } from 'macslot/node';
import { compileDebugDataPlane } from 'macslot/debug';
const nic = new Nic({ primary: '00:14:4f:00:00:00' });
const dp: DataPlane = await DataPlane.create(nic, { module: await compileDebugDataPlane() });
const handle: DataPlaneHandle = dp.handle();
const code: MacslotErrorCode = 'NOT_OWNER';
const open: typeof BrowserStore.open = BrowserStore.open;
const port: (ws: WebSocketLike) => unknown = webSocketPort;
console.log(handle.maxFrameLength, code, typeof open, typeof port, typeof FileStore);
`;

// A project that runs only on Node: no DOM library, only Node's types, and every declaration file checked.
const TSCONFIG = {
  compilerOptions: {
    target: 'es2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    lib: ['es2022'],
    types: ['node'],
    strict: true,
    skipLibCheck: false,
    noEmit: true,
  },
  files: ['use.ts'],
};

describe('the packed package', () => {
  beforeAll(() => {
    // dist is built by `npm test` before the tests run; packing must not rebuild it.
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: root, stdio: 'pipe' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    expect(tarball).toMatch(/^macslot-\d+\.\d+\.\d+\.tgz$/);
    // Offline, from what `npm ci` installed: the runtime dependencies, Node's types and pg (the optional peer of
    // macslot/postgres) are packed from node_modules and installed in the same command, so npm needs neither the
    // registry nor its cache.
    const own = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
    const deps = packInstalled([...Object.keys(own.dependencies ?? {}), '@types/node', 'pg']);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    const args = ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', ...[tarball!, ...deps].map((t) => `./${t}`)];
    const install = spawnSync('npm', args, { cwd: dir, encoding: 'utf8' });
    expect(install.status, install.stderr).toBe(0);
  }, 120_000);

  it('works through its exports map and bin', () => {
    writeFileSync(join(dir, 'use.mjs'), USE_ESM);
    const esm = run('use.mjs');
    expect(esm.status, esm.stderr).toBe(0);
    expect(JSON.parse(esm.stdout)).toEqual({
      verdict: { deliver: [1], rule: 'unicast-exact', path: 'hardware' },
      debug: 'unicast-exact',
      wasm: true,
      node: 'functionfunctionfunction',
    });
    const bin = spawnSync(join(dir, 'node_modules', '.bin', 'macslot'), ['inspect', '--help'], { encoding: 'utf8' });
    expect(bin.status, bin.stderr).toBe(0);
    expect(bin.stdout).toMatch(/^usage: macslot inspect/);
  });

  it('serves the live page from the install (npx macslot serve)', async () => {
    const child = spawnTracked(join(dir, 'node_modules', '.bin', 'macslot'), ['serve', '--json'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const { url } = JSON.parse(await waitForLine(child, (l) => l.startsWith('{'), 20_000)) as { url: string };
      for (const path of ['', 'page.js', 'worker.js']) {
        const r = await fetch(new URL(path, url));
        expect(r.status, path).toBe(200);
        expect(r.headers.get('cross-origin-embedder-policy'), path).toBe('require-corp');
        expect((await r.text()).length, path).toBeGreaterThan(0);
      }
    } finally {
      child.kill('SIGINT');
    }
  });

  // Node 20.19 and 22.12 on load ES modules with require(); older versions cannot, whatever the exports map says.
  it.skipIf(!process.features.require_module)('loads with require() from CommonJS', () => {
    writeFileSync(join(dir, 'use.cjs'), USE_CJS);
    const cjs = spawnSync(process.execPath, ['--no-warnings', 'use.cjs'], { cwd: dir, encoding: 'utf8' });
    expect(cjs.status, cjs.stderr).toBe(0);
    expect(JSON.parse(cjs.stdout)).toEqual({
      mac: '00:14:4f:00:00:01',
      parsed: '00:14:4f:00:00:02',
      store: 'function',
      schema: 'object',
      debug: true,
    });
  });

  it('compiles in a Node-only TypeScript project with every declaration file checked', () => {
    writeFileSync(join(dir, 'use.ts'), USE_TS);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  }, 60_000);

  it('keeps the core free of Node: nothing `macslot` imports, however indirectly, is a Node builtin or a Node-only package', () => {
    const seen = new Set<string>();
    const outside: string[] = [];
    const walk = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s*['"]([^'"]+)['"]/g)) {
        if (spec!.startsWith('.')) walk(join(dirname(file), spec!));
        else outside.push(spec!);
      }
    };
    walk(join(dir, 'node_modules', 'macslot', 'dist', 'index.js'));
    expect(seen.size).toBeGreaterThan(20);
    expect(outside).toEqual([]);
  });

  it('ships its changelog and security policy, and says where it lives', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules', 'macslot', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.repository).toEqual({ type: 'git', url: expect.stringMatching(/^git\+https:\/\/github\.com\/[\w-]+\/macslot\.git$/) });
    expect(pkg.homepage).toMatch(/^https:\/\/github\.com\/[\w-]+\/macslot/);
    expect(pkg.bugs).toEqual({ url: expect.stringMatching(/^https:\/\/github\.com\/[\w-]+\/macslot\/issues$/) });
    expect((pkg.dependencies as Record<string, string>).ws).toMatch(/^\^\d+\.\d+\.\d+$/);
    const shipped = readdirSync(join(dir, 'node_modules', 'macslot'));
    expect(shipped).toEqual(expect.arrayContaining(['CHANGELOG.md', 'SECURITY.md', 'README.md', 'LICENSE']));
  });
});
