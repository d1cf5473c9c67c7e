// Test support: a PostgreSQL server for the store tests. MACSLOT_PG_URL names a running one (what .ci/run starts);
// otherwise a private throwaway cluster is started with scripts/pg-cluster.sh when PostgreSQL's binaries are here.
// Without either the tests skip, except under CI=true, where they fail.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { root } from './readme.js';

const SCRIPT = join(root, 'scripts/pg-cluster.sh');

/** A private cluster: its connection string, and how to stop it for a while, start it again, and remove it. */
export interface Cluster {
  readonly url: string;
  pause(): void;
  resume(): void;
  remove(): void;
}

/** Starts a private cluster in a new temporary folder; returns undefined when PostgreSQL's binaries are missing. */
export function startCluster(): Cluster | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'macslot-pg-'));
  let url: string;
  try {
    url = execFileSync(SCRIPT, ['start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 }).trim();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    if ((err as { status?: number }).status === 3) return undefined;
    throw err;
  }
  const run = (cmd: string): void => {
    execFileSync(SCRIPT, [cmd, dir], { stdio: 'pipe', timeout: 120_000 });
  };
  return { url, pause: () => run('pause'), resume: () => run('resume'), remove: () => run('stop') };
}

/** Why PostgreSQL tests cannot run here, or undefined when they can; under CI=true a missing server is an error instead. */
export function pgMissing(cluster: Cluster | undefined): string | undefined {
  if (cluster !== undefined || process.env.MACSLOT_PG_URL) return undefined;
  const why = 'no PostgreSQL: set MACSLOT_PG_URL or install the postgresql package';
  if (process.env.CI === 'true') throw new Error(`${why} (CI=true needs it)`);
  return why;
}

/** The server to use: MACSLOT_PG_URL's, else a private cluster (removed by `done`), else undefined. */
export function pgServer(): { url: string; cluster: Cluster | undefined } | undefined {
  const shared = process.env.MACSLOT_PG_URL;
  if (shared !== undefined && shared.length > 0) return { url: shared, cluster: undefined };
  const cluster = startCluster();
  pgMissing(cluster);
  return cluster === undefined ? undefined : { url: cluster.url, cluster };
}

/** A fresh schema name, so tests sharing a server never see each other's tables. */
export function freshSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/** Runs SQL on the server outside any store (to set up old schemas or inspect rows). */
export async function sql<R extends Record<string, unknown> = Record<string, unknown>>(
  url: string,
  text: string,
  params: unknown[] = [],
): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** Drops the schemas a test made. */
export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  for (const s of schemas) await sql(url, `DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(s)} CASCADE`);
}
