// Test support: children started through test/support/processes.ts die with the test that started them, group and all.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawnTracked } from './support/processes.js';

// A child that would run for ten minutes, and one that leads a group whose member would too.
const LONG = ['-e', 'setTimeout(() => {}, 600_000)'];
const GROUP = [
  '-e',
  `const c = require('node:child_process').spawn(process.execPath, ${JSON.stringify(LONG)}, { stdio: 'ignore' });
   c.once('spawn', () => process.stdout.write(c.pid + '\\n')); setTimeout(() => {}, 600_000)`,
];

/** True while `pid` runs: a killed process that waits for its parent to reap it (a zombie) does not count. */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

// Linux: the process table is read from /proc.
(process.platform === 'linux' ? describe : describe.skip)('tracked children', () => {
  let plain: ChildProcess | undefined;
  let leader: ChildProcess | undefined;
  let member: number | undefined;

  it('are running while their test runs', async () => {
    plain = spawnTracked(process.execPath, LONG, { stdio: 'ignore' });
    leader = spawnTracked(process.execPath, GROUP, { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    const memberPid = new Promise<number>((resolve) => leader!.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    await new Promise<void>((resolve, reject) => {
      plain!.once('spawn', resolve);
      plain!.once('error', reject);
    });
    expect(alive(plain.pid!)).toBe(true);
    // The group's member: the leader's child, which the leader names once it runs.
    member = await memberPid;
    expect(alive(member)).toBe(true);
  });

  it('are gone once that test has ended, the whole group included', () => {
    expect(plain?.signalCode).toBe('SIGKILL');
    expect(alive(plain!.pid!)).toBe(false);
    expect(alive(member!)).toBe(false);
  });
});
