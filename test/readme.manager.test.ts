// README: the "Many guests, stable MACs" example runs as written against the built package and prints what it promises.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { example, root } from './support/readme.js';

describe('README', () => {
  it('the stable-MAC example gives every guest the same MAC in the second session', () => {
    expect(existsSync(join(root, 'dist/node/index.js'))).toBe(true);
    const code = example('## Many guests, stable MACs')
      .replace(/from 'macslot\/node'/g, `from '${pathToFileURL(join(root, 'dist/node/index.js')).href}'`)
      .replace(/from 'macslot'/g, `from '${pathToFileURL(join(root, 'dist/index.js')).href}'`);
    const dir = mkdtempSync(join(tmpdir(), 'macslot-readme-'));
    try {
      writeFileSync(join(dir, 'example.mjs'), code);
      const run = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
      expect(run.status, run.stderr).toBe(0);
      const lines = run.stdout.trim().split('\n').map((l) => l.split(' '));
      expect(lines).toEqual([
        ['vm-1', '00:14:4f:00:00:01', 'factory', 'new'],
        ['vm-2', '00:14:4f:00:00:02', 'factory', 'new'],
        ['vm-3', '02:08:20:00:00:01', 'block', 'new'],
        ['vm-1', '00:14:4f:00:00:01', 'factory', 'restored'],
        ['vm-2', '00:14:4f:00:00:02', 'factory', 'restored'],
        ['vm-3', '02:08:20:00:00:01', 'block', 'restored'],
      ]);
      // The store it wrote is where the example said, and names all three guests.
      const stored = JSON.parse(readFileSync(join(dir, 'macs.json'), 'utf8')) as { records: Record<string, { guest: string }> };
      expect(Object.values(stored.records).map((r) => r.guest).sort()).toEqual(['vm-1', 'vm-2', 'vm-3']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
