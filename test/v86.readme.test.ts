// README: the v86 example under "Use macslot with your emulator" runs as written against the built package and prints
// what the README's sample output shows, up to the MACs v86 picks at random.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { killTracked, spawnTracked } from './support/processes.js';
import { blocks, root } from './support/readme.js';
import { HAVE_GUEST, REQUIRED } from './fixtures/v86.js';

/** The lines the example prints, each reduced to what does not vary from run to run. */
const LINES: readonly { kind: string; pattern: RegExp }[] = [
  { kind: 'mac', pattern: /^(vm-[ab]) is 00:22:15(?::[0-9a-f]{2}){3} in slot ([12])$/ },
  { kind: 'counts', pattern: /^(vm-[ab]) sent (\d+) received (\d+)$/ },
];

/** Returns each line as [kind, ...the parts that do not vary]; a line of no known shape comes back as ['?', line]. */
function shape(lines: readonly string[]): string[][] {
  return lines.map((line) => {
    for (const { kind, pattern } of LINES) {
      const m = pattern.exec(line);
      if (m !== null) return kind === 'mac' ? [kind, m[1]!, m[2]!] : [kind, m[1]!];
    }
    return ['?', line];
  });
}

const sorted = (rows: string[][]): string[][] => [...rows].sort((a, b) => a.join(' ').localeCompare(b.join(' ')));

(HAVE_GUEST || REQUIRED ? describe : describe.skip)('README', () => {
  it(
    'the v86 example boots two guests whose MACs become slot MACs, each hears the other, and the output is as shown',
    async () => {
      expect(existsSync(join(root, 'dist/index.js'))).toBe(true);
      const code = blocks().find((b) => b.heading === '### v86' && b.lang === 'ts');
      expect(code, 'README has no ts block under "### v86"').toBeDefined();
      const shown = code!.next;
      expect(shown?.lang, 'the sample output follows the example as a text block').toBe('text');
      // Inside the project, so `macslot` resolves to this package and `v86` to the installed one, as for a user.
      const dir = mkdtempSync(join(root, '.readme-v86-'));
      try {
        writeFileSync(join(dir, 'example.ts'), code!.code);
        // The example waits for the guests' broadcasts (at most a minute) after compiling itself and booting two guests:
        // seconds on a quiet machine, minutes on a busy one. Its own process group, so whatever it starts dies with it.
        const run = await runExample(dir, RUN_DEADLINE_MS);
        expect(run.signal, run.stderr).toBeNull();
        expect(run.status, run.stderr).toBe(0);
        const printed = run.stdout.trimEnd().split('\n');
        const sample = shown!.code.trimEnd().split('\n');
        // The cards announce their MACs in either order; the counts come in the order of the guests.
        expect(sorted(shape(printed).slice(0, 2))).toEqual(sorted(shape(sample).slice(0, 2)));
        expect(shape(printed).slice(2)).toEqual(shape(sample).slice(2));
        expect(printed.length).toBe(sample.length);
        const macs = printed.slice(0, 2).map((l) => l.split(' ')[2]);
        expect(macs[0]).not.toBe(macs[1]);
        // Each guest sent its DHCPDISCOVER and heard the other's; the sample shows what a run really prints.
        for (const lines of [printed, sample]) {
          for (const l of lines.slice(2)) {
            const [, , sent, received] = LINES[1]!.pattern.exec(l)!;
            expect(Number(sent)).toBeGreaterThan(0);
            expect(Number(received)).toBeGreaterThan(0);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    RUN_DEADLINE_MS + 30_000,
  );
});

const RUN_DEADLINE_MS = 240_000;

/** Runs the example to its end (or kills its process group at the deadline); resolves with what it printed and how it ended. */
async function runExample(
  dir: string,
  ms: number,
): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', 'example.ts'], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => void killTracked('test'), ms);
  try {
    const [status, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, sig) => resolve([code, sig]));
    });
    return { status, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}
