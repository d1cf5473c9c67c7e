// One "host" of the store benchmark. Mode `manager` (what users run): a MacManager over the store allocating for new
// guests from one block, `concurrency` allocations at a time (a host starting many guests). Mode `claim`: bare
// record-level claims of random MACs, one at a time. The floors, on a plain node-postgres connection and no store:
// mode `select` makes one `SELECT 1` round trip per allocation, mode `insert` one durable INSERT of a random MAC into a
// table keyed on it (the least a recorded claim can cost without batching). A process runs `lanes` hosts (default 1),
// each with its own connection. It warms up first (unmeasured: a long-running host has its code
// compiled and its connections open, a fresh process has neither), says `ready`, and on `go` times each allocation for
// as long as told, then prints the count, its CPU time and the latencies (ms) as one JSON line. Loads the built modules
// (npm run bench:store builds them).
import { FileStore } from '../dist/node/file-store.js';
import { PostgresStore } from '../dist/postgres/store.js';
import { MacManager } from '../dist/manager/manager.js';
import { Nic } from '../dist/nic/nic.js';
import pg from 'pg';

const [kind, target, schema, first, msText, mode = 'manager', concurrencyText = '8', rateText = '0', lanesText = '1'] =
  process.argv.slice(2);
// Open loop (rate > 0): allocations start on a fixed schedule of `rate` per second per host, however many are still
// under way.
const rate = Number(rateText);
const concurrency = mode === 'manager' ? Number(concurrencyText) : 1;
const floor = mode === 'select' || mode === 'insert';

/**
 * A plain connection for the floors (a pool of one: it runs their queries one at a time, queued), with the table the
 * `insert` floor writes to, created once under a lock.
 */
async function floorClient() {
  const pool = new pg.Pool({ connectionString: target, max: 1 });
  const table = `${pg.escapeIdentifier(schema)}.floor`;
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock(7305)');
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
    await c.query(`CREATE TABLE IF NOT EXISTS ${table} (mac text PRIMARY KEY, holder text NOT NULL)`);
    await c.query('COMMIT');
  } finally {
    c.release();
  }
  return {
    close: () => pool.end(),
    insert: (mac, holder) => pool.query(`INSERT INTO ${table} VALUES ($1, $2) ON CONFLICT DO NOTHING`, [mac, holder]),
    select: () => pool.query('SELECT 1'),
  };
}

/** The hosts this process runs, numbered from `first`: each has its own store, connection and manager. */
const hosts = await Promise.all(
  Array.from({ length: Number(lanesText) }, async (_, j) => {
    const tag = Number(first) + j;
    const store = floor
      ? await floorClient()
      : kind === 'file'
        ? new FileStore({ path: target, lockTimeoutMs: 60_000 })
        : await PostgresStore.open({ connectionString: target, schema });
    const manager =
      mode === 'manager'
        ? new MacManager({
            nics: { eth0: new Nic({ primary: `00:14:4f:00:${tag.toString(16).padStart(2, '0')}:00`, maxAddresses: 1 << 16 }) },
            store,
            block: '02:5b:00/24',
            session: `host${tag}`,
          })
        : undefined;
    return { tag, store, manager, next: 0 };
  }),
);
let conflicts = 0;
let failed = 0;

/** One allocation by host `h`; resolves false when the store gave the MAC to someone else (bare claims only). */
async function allocateOne(h) {
  const { tag, store, manager } = h;
  const i = h.next++;
  if (manager !== undefined) {
    // 64 guests per host, each with many interfaces: a NIC has at most 1,024 clients.
    await manager.allocate({ guest: `h${tag}-${i % 64}`, iface: String(i), policy: 'block', order: 'random' });
    return true;
  }
  if (mode === 'select') {
    await store.select();
    return true;
  }
  const n = Math.floor(Math.random() * 2 ** 24);
  const mac = `02:5b:${[n >> 16, (n >> 8) & 0xff, n & 0xff, Number(tag) & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  if (mode === 'insert') return (await store.insert(mac, `host${tag}`)).rowCount === 1;
  try {
    await store.claim({ mac, guest: `h${tag}`, nic: 'eth0', iface: String(i), policy: 'block', holder: `host${tag}` });
    return true;
  } catch (err) {
    if (err?.code !== 'MAC_IN_USE') throw err;
    return false;
  }
}

/** Runs `concurrency` loops of allocations by host `h` until `end`, timing each into `lat` when given. */
async function run(h, end, lat) {
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const ok = await allocateOne(h);
      if (lat === undefined) continue;
      if (!ok) conflicts++;
      lat.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}

/**
 * Starts one allocation every 1/rate s until `end`, each timed into `lat` (when given) from its scheduled start, not from
 * when a late timer got to it: time spent queueing counts (no coordinated omission). Resolves once all have settled.
 */
async function runOpen(h, end, lat) {
  const t0 = performance.now();
  const gap = 1000 / rate;
  const started = [];
  for (let k = 0; ; ) {
    const now = performance.now();
    // Every start whose time has come, a late timer's backlog included.
    for (; t0 + k * gap <= now && t0 + k * gap < end; k++) {
      const at = t0 + k * gap;
      started.push(
        allocateOne(h).then(
          (ok) => {
            if (lat === undefined) return;
            if (!ok) conflicts++;
            lat.push(performance.now() - at);
          },
          // Overload shows as failures (STORE_IO once a query waited timeoutMs), counted rather than ending the host.
          () => {
            if (lat !== undefined) failed++;
          },
        ),
      );
    }
    if (t0 + k * gap >= end) break;
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + k * gap - performance.now())));
  }
  await Promise.all(started);
}

const timed = (end, lat) => Promise.all(hosts.map((h) => (rate > 0 ? runOpen : run)(h, end, lat)));
await timed(performance.now() + Number(process.env.BENCH_WARMUP_MS ?? 5_000));
process.stdout.write('ready\n');
await new Promise((r) => process.stdin.once('data', r));
const cpu0 = process.cpuUsage();
const lat = [];
await timed(performance.now() + Number(msText), lat);
const { user, system } = process.cpuUsage(cpu0);
process.stdout.write(`${JSON.stringify({ count: lat.length - conflicts, conflicts, failed, cpuMs: (user + system) / 1000, lat })}\n`);
// Connections stay open until told, so the database's CPU time can be read while its backends still exist.
await new Promise((r) => process.stdin.once('data', r));
await Promise.all(hosts.map((h) => h.store.close?.()));
process.exit(0);
