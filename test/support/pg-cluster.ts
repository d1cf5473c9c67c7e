// Test and benchmark support: a private, throwaway PostgreSQL cluster through scripts/pg-cluster.sh (no test runner
// needed, so the store benchmark uses it too).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/pg-cluster.sh', import.meta.url));

/** A private cluster: its connection string, and how to stop it for a while, start it again, and remove it. */
export interface Cluster {
  readonly url: string;
  pause(): void;
  resume(): void;
  remove(): void;
}

/** True when PostgreSQL's server binaries are here (what scripts/pg-cluster.sh looks for). */
export function binariesHere(): boolean {
  if (process.env.PG_BIN !== undefined) return existsSync(join(process.env.PG_BIN, 'pg_ctl'));
  const lib = '/usr/lib/postgresql';
  if (existsSync(lib) && readdirSync(lib).some((v) => existsSync(join(lib, v, 'bin/pg_ctl')))) return true;
  return (process.env.PATH ?? '').split(':').some((d) => d.length > 0 && existsSync(join(d, 'pg_ctl')));
}

/** Starts a private cluster in a new temporary folder, removed at the latest when this process exits. */
export function startCluster(): Cluster {
  const dir = mkdtempSync(join(tmpdir(), 'macslot-pg-'));
  const run = (cmd: string): string =>
    execFileSync(SCRIPT, [cmd, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    run('stop');
  };
  process.once('exit', remove);
  let url: string;
  try {
    url = run('start').trim();
  } catch (err) {
    remove();
    throw err;
  }
  return { url, pause: () => void run('pause'), resume: () => void run('resume'), remove };
}
