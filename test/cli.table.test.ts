// The command line's tables escape their cells: a name with escape sequences or a newline (from a configuration, or from a
// peer through the switch's live table) shows as visible escapes and cannot move the cursor or forge a row.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = join(new URL('..', import.meta.url).pathname, 'dist/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'macslot-table-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Client names that would recolour, clear or add lines to a terminal if printed as they are. */
const NAMES: readonly { what: string; name: string; shown: string }[] = [
  { what: 'a colour escape and a newline', name: 'vm\u001b[31mred\nforged row', shown: 'vm\\x1b[31mred\\nforged row' },
  { what: 'a clear-screen sequence', name: '\u001b[2Jvm', shown: '\\x1b[2Jvm' },
  { what: 'a right-to-left override', name: 'vm\u202etxt', shown: 'vm\\u202etxt' },
  { what: 'a backslash, kept unambiguous', name: 'vm\\x41', shown: 'vm\\\\x41' },
];

describe('tables', () => {
  it.each(NAMES)('escape $what', ({ name, shown }) => {
    const file = join(dir, 'nic.json');
    writeFileSync(file, JSON.stringify({ nic: { primary: '02:00:00:00:00:01' }, clients: [{ name, address: '52:54:00:00:00:02' }] }));
    const r = spawnSync(process.execPath, [CLI, 'inspect', '--config', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(shown);
    expect(r.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f\u202e]/);
    expect(r.stdout.split('\n').some((l) => l.startsWith('forged row'))).toBe(false);
  });
});
