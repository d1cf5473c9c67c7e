// The published package as a user installs it: packed, installed into an empty project, imported through
// its exports map (`macslot`, `macslot/node`) and run through its `macslot` bin, with the .wasm inside.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root } from './support/readme.js';

const dir = mkdtempSync(join(tmpdir(), 'macslot-consumer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the packed package', () => {
  it('installs into an empty project and works through its exports map and bin', () => {
    // dist is built by `npm test` before the tests run; packing must not rebuild it.
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: root, stdio: 'pipe' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    expect(tarball).toMatch(/^macslot-\d+\.\d+\.\d+\.tgz$/);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    const install = spawnSync('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', `./${tarball}`], { cwd: dir, encoding: 'utf8' });
    expect(install.status, install.stderr).toBe(0);
    writeFileSync(
      join(dir, 'use.mjs'),
      `import { Nic, DataPlane, wasmBytes } from 'macslot';
import { FileStore, readCaptureFile } from 'macslot/node';
const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 2 } });
const dp = await DataPlane.create(nic);
const { mac } = nic.openClient('vm').addressReserve();
const frame = new Uint8Array(60);
mac.writeTo(frame, 0);
console.log(JSON.stringify({ verdict: dp.classify(frame), wasm: wasmBytes().length > 0, node: typeof FileStore + typeof readCaptureFile }));
`,
    );
    const run = spawnSync(process.execPath, ['use.mjs'], { cwd: dir, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ verdict: { deliver: [1], rule: 'unicast-exact', path: 'hardware' }, wasm: true, node: 'functionfunction' });
    const bin = spawnSync(join(dir, 'node_modules', '.bin', 'macslot'), ['inspect', '--help'], { encoding: 'utf8' });
    expect(bin.status, bin.stderr).toBe(0);
    expect(bin.stdout).toMatch(/^usage: macslot inspect/);
    // Browsers load the core: nothing 'macslot' imports, however indirectly, may be a Node builtin or a Node-only package.
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
  }, 60_000);
});
