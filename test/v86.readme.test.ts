// README: the v86 example under "Use macslot with your emulator" runs as written against the built package and prints what it promises.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { example, root } from './support/readme.js';
import { HAVE_GUEST, REQUIRED } from './fixtures/v86.js';

(HAVE_GUEST || REQUIRED ? describe : describe.skip)('README', () => {
  it('the v86 example boots two guests whose MACs become slot MACs, and each hears the other', () => {
    expect(existsSync(join(root, 'dist/index.js'))).toBe(true);
    const code = example('### v86').replace(/from 'macslot'/g, `from '${pathToFileURL(join(root, 'dist/index.js')).href}'`);
    // Inside the project's node_modules, so `v86` resolves as it would for a user who installed it.
    const cache = join(root, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    const dir = mkdtempSync(join(cache, 'macslot-readme-v86-'));
    try {
      writeFileSync(join(dir, 'example.mjs'), code);
      const run = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 40_000 });
      expect(run.status, run.stderr).toBe(0);
      const lines = run.stdout.trim().split('\n').map((l) => l.split(' '));
      const macs = lines.filter((l) => l[1] === 'is').sort((a, b) => a[0]!.localeCompare(b[0]!));
      expect(macs.map((l) => [l[0], l[2]!.slice(0, 8), l[5]])).toEqual([
        ['vm-a', '00:22:15', '1'],
        ['vm-b', '00:22:15', '2'],
      ]);
      expect(macs[0]![2]).not.toBe(macs[1]![2]);
      const counts = lines.filter((l) => l[1] === 'sent');
      expect(counts.map((l) => l[0])).toEqual(['vm-a', 'vm-b']);
      for (const l of counts) {
        expect(Number(l[2])).toBeGreaterThan(0);
        expect(Number(l[4])).toBeGreaterThan(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
