// Test support: `macslot serve` from the build, started as a tracked process, its URL read from its JSON line.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnTracked, waitForLine } from './processes.js';

const ROOT = new URL('../..', import.meta.url).pathname;
/** The built CLI. */
export const CLI = join(ROOT, 'dist/cli/main.js');
/** The bundled page the CLI serves. */
export const WEB = join(ROOT, 'dist/web');
const START_MS = 20_000;

/** A running `macslot serve`. */
export interface Served {
  readonly child: ChildProcess;
  readonly url: string;
}

/** Throws, saying how to build it, when the CLI or the page is missing. */
export function requireBuild(): void {
  if (!existsSync(CLI) || !existsSync(join(WEB, 'index.html'))) throw new Error('dist/cli or dist/web is missing; run npm run build first');
}

/** Starts `macslot serve --json` with `args` and resolves once it prints its URL. */
export async function startServe(args: readonly string[] = []): Promise<Served> {
  requireBuild();
  const child = spawnTracked(process.execPath, [CLI, 'serve', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await waitForLine(child, (l) => l.startsWith('{'), START_MS);
  const { url } = JSON.parse(line) as { url: string };
  return { child, url };
}

/** Sends `signal` and resolves with how the process ended. */
export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGINT'): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      done({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, sig) => done({ code, signal: sig }));
    child.kill(signal);
  });
}
