// Test support: a PostgreSQL server for the store tests. MACSLOT_PG_URL names a running one (what .ci/run starts);
// otherwise a private throwaway cluster is started with scripts/pg-cluster.sh when PostgreSQL's binaries are here.
// Without either the tests skip, except under CI=true, where they fail.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { binariesHere, startCluster, type Cluster } from './pg-cluster.js';

export { binariesHere, startCluster, type Cluster } from './pg-cluster.js';

/** Whether the PostgreSQL tests can run: MACSLOT_PG_URL is set or the binaries are here. Under CI=true, neither is an error. */
export function pgAvailable(): boolean {
  if (process.env.MACSLOT_PG_URL || binariesHere()) return true;
  if (process.env.CI === 'true') throw new Error('no PostgreSQL: set MACSLOT_PG_URL or install the postgresql package (CI=true needs it)');
  return false;
}

/**
 * The server a test file uses, set up in its beforeAll: MACSLOT_PG_URL's, else a private cluster removed in afterAll
 * (and at exit). Read `url` inside tests only.
 */
export function useServer(): { readonly url: string } {
  let cluster: Cluster | undefined;
  let url: string | undefined;
  beforeAll(() => {
    const shared = process.env.MACSLOT_PG_URL;
    if (shared !== undefined && shared.length > 0) url = shared;
    else {
      cluster = startCluster();
      url = cluster.url;
    }
  }, 180_000);
  afterAll(() => cluster?.remove());
  return {
    get url(): string {
      if (url === undefined) throw new Error('no PostgreSQL server was set up');
      return url;
    },
  };
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
