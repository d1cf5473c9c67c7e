// The PostgreSQL store across processes ("hosts"): eight allocating from one block at once, and hosts killed with
// SIGKILL in the middle of their transactions. Needs dist (npm run build) and a server (see test/support/pg.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { MacManager, Nic } from 'macslot';
import { PostgresStore } from 'macslot/postgres';
import { spawnTracked } from './support/processes.js';
import { dropSchemas, freshSchema, pgAvailable, sql, useServer } from './support/pg.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = join(root, 'test/fixtures/pg-allocator.mjs');
const server = pgAvailable() ? useServer() : undefined;
const schemas: string[] = [];
afterAll(async () => {
  // A private cluster goes whole; on a shared server, the test's schemas go.
  if (server !== undefined && process.env.MACSLOT_PG_URL) await dropSchemas(server.url, schemas);
});

function schemaFor(): string {
  if (!existsSync(join(root, 'dist/postgres/store.js'))) throw new Error('dist/postgres/store.js is missing; run npm run build first');
  const s = freshSchema();
  schemas.push(s);
  return s;
}

interface Outcome {
  acked: [mac: string, id: string][];
  conflicts: number;
  signal: string | null;
}

/** Runs one host; with `killAfterMs`, SIGKILLs it that long after its first acknowledged MAC. */
function host(schema: string, tag: string, mode: 'claim' | 'manager', count: number, killAfterMs?: number): Promise<Outcome> {
  return new Promise((ok, fail) => {
    const child = spawnTracked(process.execPath, [fixture, server!.url, schema, tag, mode, String(count)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (killAfterMs !== undefined && timer === undefined && out.includes('\nack '))
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killAfterMs === undefined ? code !== 0 : signal !== 'SIGKILL')
        return fail(new Error(`host ${tag} ended with ${code ?? signal}:\n${err}`));
      // Only whole lines count: a line cut by the kill was never fully acknowledged.
      const lines = out.split('\n').slice(0, -1);
      const acked = lines.filter((l) => l.startsWith('ack ')).map((l) => l.split(' ').slice(1, 3) as [string, string]);
      const done = lines.find((l) => l.startsWith('done '));
      ok({ acked, conflicts: done === undefined ? 0 : Number(done.split(' ')[1]), signal });
    });
  });
}

async function rows(schema: string): Promise<{ mac: string; guest: string; iface: string; holder: string | null }[]> {
  return sql(server!.url, `SELECT mac, guest, iface, holder FROM "${schema}".macslot_records WHERE NOT gone`);
}

describe.skipIf(server === undefined)('hosts sharing one database', () => {
  it('8 hosts × 2,000 claims from one block at once: zero duplicates, every acknowledged claim recorded', async () => {
    const schema = schemaFor();
    // Created once before the hosts start, so their opening does not all wait on one migration.
    await (await PostgresStore.open({ connectionString: server!.url, schema })).close();
    const outs = await Promise.all(Array.from({ length: 8 }, (_, i) => host(schema, String(i), 'claim', 2_000)));
    const acked = outs.flatMap((o) => o.acked.map(([mac]) => mac));
    expect(acked).toHaveLength(16_000);
    expect(new Set(acked).size).toBe(16_000);
    // Random picks from 65,536 MACs: hosts did race for the same MACs, and the constraint settled each race.
    expect(outs.reduce((n, o) => n + o.conflicts, 0)).toBeGreaterThan(0);
    const recorded = await rows(schema);
    expect(recorded).toHaveLength(16_000);
    const byMac = new Map(recorded.map((r) => [r.mac, `${r.guest}/${r.iface}`]));
    for (const o of outs) for (const [mac, id] of o.acked) expect(byMac.get(mac)).toBe(id);
  }, 600_000);

  it('4 hosts × 150 allocations through managers at once: zero duplicates, every lease recorded', async () => {
    const schema = schemaFor();
    await (await PostgresStore.open({ connectionString: server!.url, schema })).close();
    const outs = await Promise.all(Array.from({ length: 4 }, (_, i) => host(schema, String(i), 'manager', 150)));
    const acked = outs.flatMap((o) => o.acked);
    expect(acked).toHaveLength(600);
    expect(new Set(acked.map(([mac]) => mac)).size).toBe(600);
    const byMac = new Map((await rows(schema)).map((r) => [r.mac, `${r.guest}/${r.iface}`]));
    for (const [mac, id] of acked) expect(byMac.get(mac)).toBe(id);
  }, 600_000);

  it('100 hosts killed with SIGKILL mid-transaction: no acknowledged MAC lost, none held twice, no lock left behind', async () => {
    const schema = schemaFor();
    await (await PostgresStore.open({ connectionString: server!.url, schema })).close();
    const KILLS = 100;
    // Two cores: four hosts at a time keep the domain contended at every kill.
    const PARALLEL = 4;
    const acked: [string, string][] = [];
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < KILLS) {
        const i = next++;
        // Alternate whole-store (manager) and record-level (claim) hosts, killed 0–30 ms after their first MAC.
        const o = await host(schema, String(i), i % 2 === 0 ? 'manager' : 'claim', 0, Math.random() * 30);
        acked.push(...o.acked);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, lane));
    expect(acked.length).toBeGreaterThanOrEqual(KILLS);
    // The dead hosts' transactions ended with their connections: no backend stays in a transaction, no lock is held.
    const stuck = async (): Promise<number> =>
      Number(
        (
          await sql<{ n: string }>(
            server!.url,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
          )
        )[0]!.n,
      );
    const deadline = Date.now() + 60_000;
    while ((await stuck()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await stuck()).toBe(0);
    // A whole-store transaction takes the domain lock at once, and a manager can still allocate.
    const store = await PostgresStore.open({ connectionString: server!.url, schema, timeoutMs: 10_000 });
    const m = new MacManager({ nics: { eth0: new Nic({ primary: '00:14:4f:00:00:00' }) }, store, block: '02:08:20:00/32' });
    const lease = await m.allocate({ guest: 'after', policy: 'block' });
    const recorded = await rows(schema);
    expect(recorded.map((r) => r.mac)).toContain(lease.mac.toString());
    await m.close();
    await store.close();
    const byMac = new Map(recorded.map((r) => [r.mac, `${r.guest}/${r.iface}`]));
    expect(acked.filter(([mac, id]) => byMac.get(mac) !== id)).toEqual([]);
    expect(new Set(acked.map(([mac]) => mac)).size).toBe(acked.length);
    // No identity holds two MACs.
    const ids = recorded.map((r) => `${r.guest}/${r.iface}`);
    expect(new Set(ids).size).toBe(ids.length);
  }, 600_000);
});
