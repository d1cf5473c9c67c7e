// README: the "Many guests, stable MACs" examples run as written against the built package and print what they promise.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { example, root } from './support/readme.js';

const HEADING = '## Many guests, stable MACs';

/** Every ```ts block of the section, in order. */
function sectionBlocks(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${HEADING}\n`);
  expect(at, `README has no "${HEADING}" section`).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', at + HEADING.length + 1);
  return [...readme.slice(at, end < 0 ? undefined : end).matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Runs `code` with `macslot` resolved to the build, in a fresh folder; returns its stdout lines and the folder's store file, if any. */
function run(code: string): { lines: string[]; stored: string | undefined } {
  expect(existsSync(join(root, 'dist/node/index.js'))).toBe(true);
  const module = code
    .replace(/from 'macslot\/node'/g, `from '${pathToFileURL(join(root, 'dist/node/index.js')).href}'`)
    .replace(/from 'macslot'/g, `from '${pathToFileURL(join(root, 'dist/index.js')).href}'`);
  const dir = mkdtempSync(join(tmpdir(), 'macslot-readme-'));
  try {
    writeFileSync(join(dir, 'example.mjs'), module);
    const r = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const store = join(dir, 'macs.json');
    return { lines: r.stdout.trim().split('\n'), stored: existsSync(store) ? readFileSync(store, 'utf8') : undefined };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('README', () => {
  it('the stable-MAC example gives every guest the same MAC in the second session', () => {
    expect(sectionBlocks()[0]).toBe(example(HEADING));
    const out = run(sectionBlocks()[0]!);
    const lines = out.lines.map((l) => l.split(' '));
    expect(lines).toEqual([
      ['vm-1', '00:14:4f:00:00:01', 'factory', 'new'],
      ['vm-2', '00:14:4f:00:00:02', 'factory', 'new'],
      ['vm-3', '02:08:20:00:00:01', 'block', 'new'],
      ['vm-1', '00:14:4f:00:00:01', 'factory', 'restored'],
      ['vm-2', '00:14:4f:00:00:02', 'factory', 'restored'],
      ['vm-3', '02:08:20:00:00:01', 'block', 'restored'],
    ]);
    // The store it wrote is where the example said, and names all three guests.
    const stored = JSON.parse(out.stored ?? '{}') as { records: Record<string, { guest: string }> };
    expect(
      Object.values(stored.records)
        .map((r) => r.guest)
        .sort(),
    ).toEqual(['vm-1', 'vm-2', 'vm-3']);
  });

  it('the migration example moves the guest, its MAC and its group, and ends by itself', () => {
    const code = sectionBlocks()[1];
    expect(code).toContain('migrate(');
    // The process exits (spawnSync returns) with status 0 and prints the line the README shows.
    expect(run(code!).lines).toEqual(['host2 02:08:20:00:00:00 33:33:00:00:00:01 true']);
  });
});
