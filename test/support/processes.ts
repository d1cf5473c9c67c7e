// Test support: every child process a test starts through here is tracked and killed when the test ends, fails or
// times out (afterEach), when its file ends (afterAll), and when the test process itself exits.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeEach } from 'vitest';

const REGISTRY = Symbol.for('macslot.test.children');

interface Tracked {
  readonly child: ChildProcess;
  /** Started inside a test (killed after it) rather than in a beforeAll (killed when the file ends). */
  readonly inTest: boolean;
  /** Spawned detached, as the leader of its own process group: the whole group is killed. */
  readonly group: boolean;
}

// One registry per process, shared by every test file's copy of this module, so one exit handler covers them all.
const registry = globalThis as { [REGISTRY]?: Set<Tracked> };
const REGISTRY_NEW = registry[REGISTRY] === undefined;
const live: Set<Tracked> = (registry[REGISTRY] ??= new Set());
let inTest = false;

function running(c: ChildProcess): boolean {
  return c.pid !== undefined && c.exitCode === null && c.signalCode === null;
}

function killNow(t: Tracked): void {
  try {
    if (t.group && t.child.pid !== undefined) process.kill(-t.child.pid, 'SIGKILL');
    else t.child.kill('SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Starts a child like `spawn` and tracks it. With `detached: true` it leads its own process group, and the group is killed. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return track(spawn(command, args, options), options.detached === true);
}

/** Tracks a child started elsewhere; `group` when it leads its own process group. Returns the child. */
export function track<T extends ChildProcess>(child: T, group = false): T {
  const t: Tracked = { child, inTest, group };
  live.add(t);
  // A group leader's exit does not end its group: the group is killed at cleanup all the same.
  const done = (): void => {
    if (!group) live.delete(t);
  };
  child.once('exit', done);
  child.once('error', done);
  return child;
}

/** Kills every tracked child (or only those a test started) and resolves once each has exited. */
export async function killTracked(which: 'test' | 'all' = 'all'): Promise<void> {
  const chosen = [...live].filter((t) => which === 'all' || t.inTest);
  await Promise.all(
    chosen.map(
      (t) =>
        new Promise<void>((resolve) => {
          live.delete(t);
          const alive = running(t.child);
          if (alive) t.child.once('exit', () => resolve());
          killNow(t);
          if (!alive) resolve();
        }),
    ),
  );
}

/** Resolves with the next line of `child`'s stdout that `match` accepts; rejects when the child exits first or after `ms`. */
export function waitForLine(child: ChildProcess, match: (line: string) => boolean, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer | string): void => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      const hit = lines.find(match);
      if (hit !== undefined) finish(() => resolve(hit));
    };
    const onExit = (code: number | null, signal: string | null): void =>
      finish(() => reject(new Error(`the child exited (${code ?? signal}) before the line came`)));
    const timer = setTimeout(() => finish(() => reject(new Error(`no matching line within ${ms} ms`))), ms);
    const finish = (then: () => void): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      then();
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

beforeEach(() => {
  inTest = true;
});
afterEach(async () => {
  inTest = false;
  await killTracked('test');
});
afterAll(() => killTracked('all'));
// Last resort (the worker is exiting, e.g. after a timeout): kill synchronously, nothing can be awaited here.
if (REGISTRY_NEW) {
  process.once('exit', () => {
    for (const t of live) killNow(t);
  });
}

/** True while process `pid` runs (a zombie, killed but not yet reaped, counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
