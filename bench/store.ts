// Benchmark: MAC allocations per second and latency (p50, p99) of the FileStore and the PostgresStore, with 1, 4 and 16
// hosts (processes) allocating at once from one block. Each host runs a MacManager, as users do, with BENCH_CONCURRENCY
// allocations for new guests under way at a time (default 8); BENCH_MODE=claim measures bare claims, one at a time per
// host, instead. These closed loops measure throughput: their latency is, by Little's law, the allocations under way
// divided by the rate. What "n allocations/s at p99 ≤ x ms" means is an open loop: BENCH_RATE allocations/s in all
// (default 5000; several separated by commas; 0 for none), spread evenly over BENCH_OPEN_HOSTS hosts (default 16),
// started on schedule however many are under way, each timed from its scheduled start. PostgreSQL: MACSLOT_PG_URL,
// else a private throwaway cluster. The database's CPU time is the cluster's alone when scripts/pg-cluster.sh laid it
// out (the private one), else that of every process named postgres here. BENCH_SECONDS sets each run's length
// (default 3), BENCH_WARMUP_MS the unmeasured warm-up before it (default 5,000), BENCH_NODE_ARGS the hosts' node options.
// Each open loop runs once per BENCH_HOSTS_PER_PROCESS entry (default "1,8": a process per host, then 8 hosts to a
// process), then once per BENCH_FLOORS entry (default "select,insert"): the same hosts on the same schedule, each
// allocation only a `SELECT 1`, or only a durable INSERT, on a plain connection. The floors show what one round trip, or one
// unbatched durable commit, per allocation costs from those processes on this machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { binariesHere, startCluster, type Cluster } from '../test/support/pg-cluster.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const HOSTS = (process.env.BENCH_HOSTS ?? '1,4,16').split(',').map(Number);
const MODE = process.env.BENCH_MODE === 'claim' ? 'claim' : 'manager';
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const STORES = (process.env.BENCH_STORES ?? 'file,postgres').split(',');
const RATES = (process.env.BENCH_RATE ?? '5000')
  .split(',')
  .map(Number)
  .filter((r) => r > 0);
const OPEN_HOSTS = (process.env.BENCH_OPEN_HOSTS ?? '16').split(',').map(Number);
// Options for each host's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where a host's time goes.
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
// Open loops run once per entry: 1 is a process per host, as users run a fleet; 8 runs the 16 hosts in 2 processes,
// which shows what the store gives when the hosts' own CPU time is not that of 16 processes sharing this machine.
const PER_PROCESS = (process.env.BENCH_HOSTS_PER_PROCESS ?? '1,8').split(',').map((n) => Math.max(1, Number(n)));
// The floors, run open-loop beside the store: what one round trip (`select`) or one durable INSERT (`insert`) per
// allocation costs from the same hosts on the same schedule, with no store at all.
const FLOORS = (process.env.BENCH_FLOORS ?? 'select,insert').split(',').filter((f) => f === 'select' || f === 'insert');
const host = fileURLToPath(new URL('./store-host.mjs', import.meta.url));

interface Result {
  store: string;
  /** What each allocation was: `manager`, `claim`, or a floor (`select`, `insert`). */
  mode: string;
  hosts: number;
  /** The processes the hosts ran in. */
  processes: number;
  /** Allocations/s offered in all (open loop), or 0 for a closed loop. */
  offered: number;
  perSecond: number;
  p50: number;
  p99: number;
  conflicts: number;
  /** Allocations that failed (open loop: STORE_IO when the queue made a query wait longer than its timeout). */
  failed: number;
  /** CPU time the hosts spent per allocation (ms), all hosts together: what the machine's load takes away. */
  hostCpu: number;
  /** CPU time PostgreSQL's processes spent per allocation (ms), when they can be read from /proc. */
  dbCpu: number;
}

/**
 * CPU time (ms) of PostgreSQL, from /proc: of the cluster whose postmaster is `postmaster` (it and its children, and the
 * children it already reaped), else of every process named postgres (other clusters on this machine included); NaN where
 * /proc is missing.
 */
function dbCpuMs(postmaster: number | undefined): number {
  try {
    let ticks = 0;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (!stat.includes('(postgres)')) continue;
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (postmaster !== undefined && Number(pid) !== postmaster && Number(f[1]) !== postmaster) continue;
        ticks += Number(f[11]) + Number(f[12]);
        if (Number(pid) === postmaster) ticks += Number(f[13]) + Number(f[14]);
      } catch {
        // The process ended meanwhile.
      }
    }
    return ticks * 10;
  } catch {
    return NaN;
  }
}

/** The postmaster of a cluster laid out as scripts/pg-cluster.sh does (its data in `data` beside its unix socket), if any. */
function postmasterOf(url: string): number | undefined {
  try {
    const dir = new URL(url).searchParams.get('host');
    if (dir === null || !dir.startsWith('/')) return undefined;
    const pid = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function line(child: ChildProcess): Promise<string> {
  return new Promise((ok, fail) => {
    let buf = '';
    const onData = (s: Buffer): void => {
      buf += s.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) {
        child.stdout!.off('data', onData);
        ok(buf.slice(0, i));
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => fail(new Error(`a host exited with ${code}`)));
  });
}

async function run(
  kind: 'file' | 'postgres',
  target: string,
  schema: string,
  hosts: number,
  { rate = 0, mode = MODE, perProcess = 1 }: { rate?: number; mode?: string; perProcess?: number } = {},
): Promise<Result> {
  const per = Math.min(perProcess, hosts);
  const args = (i: number): string[] => [
    host,
    kind,
    target,
    schema,
    String(i * per),
    String(SECONDS * 1000),
    mode,
    String(CONCURRENCY),
    String(rate / hosts),
    String(Math.min(per, hosts - i * per)),
  ];
  const children = Array.from({ length: Math.ceil(hosts / per) }, (_, i) =>
    spawn(process.execPath, [...NODE_ARGS, ...args(i)], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  try {
    await Promise.all(children.map((c) => line(c)));
    const t0 = performance.now();
    const db0 = dbCpuMs(postmaster);
    const done = children.map((c) => line(c));
    for (const c of children) c.stdin!.write('go\n');
    const outs = (await Promise.all(done)).map(
      (l) => JSON.parse(l) as { count: number; conflicts: number; failed?: number; cpuMs: number; lat: number[] },
    );
    const seconds = (performance.now() - t0) / 1000;
    const db = dbCpuMs(postmaster) - db0;
    // Each host closes its store and exits; one that has not within 10 s is killed below.
    const exited = children.map((c) => new Promise((ok) => (c.exitCode !== null ? ok(null) : c.once('exit', ok))));
    for (const c of children) c.stdin!.write('exit\n');
    await Promise.race([Promise.all(exited), new Promise((ok) => setTimeout(ok, 10_000).unref())]);
    const lat = outs.flatMap((o) => o.lat).sort((a, b) => a - b);
    const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
    const count = outs.reduce((n, o) => n + o.count, 0);
    return {
      store: kind,
      mode,
      hosts,
      processes: children.length,
      offered: rate,
      perSecond: count / seconds,
      p50: q(0.5),
      p99: q(0.99),
      conflicts: outs.reduce((n, o) => n + o.conflicts, 0),
      failed: outs.reduce((n, o) => n + (o.failed ?? 0), 0),
      hostCpu: outs.reduce((n, o) => n + o.cpuMs, 0) / Math.max(1, count),
      dbCpu: kind === 'postgres' ? db / Math.max(1, count) : NaN,
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
  }
}

/** The CPU time (ms, both processes) of one round trip between two processes at `rate` per second (bench/wakeup.mjs). */
function roundTripMs(rate: number, seconds: number): number {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('./wakeup.mjs', import.meta.url)), String(rate), String(seconds)], {
    encoding: 'utf8',
  });
  try {
    const o = JSON.parse(r.stdout) as { senderMs: number; echoMs: number };
    return o.senderMs + o.echoMs;
  } catch {
    return NaN;
  }
}

// What waking a process costs here: every step of an allocation wakes one (a host, its database backend, the host
// again), and a host allocating a few hundred a second finds the other side asleep each time.
const wakeup = { slow: roundTripMs(300, 2), fast: roundTripMs(10_000, 1) };
const results: Result[] = [];
const dir = mkdtempSync(join(tmpdir(), 'macslot-bench-store-'));
let cluster: Cluster | undefined;
let postmaster: number | undefined;
try {
  if (STORES.includes('file')) for (const n of HOSTS) results.push(await run('file', join(dir, `macs-${n}.json`), '', n));
  let url = process.env.MACSLOT_PG_URL;
  if (!STORES.includes('postgres')) url = undefined;
  else if (url === undefined && binariesHere()) {
    cluster = startCluster();
    url = cluster.url;
  }
  postmaster = url === undefined ? undefined : postmasterOf(url);
  const schema = (): string => `b_${randomBytes(6).toString('hex')}`;
  if (url === undefined) console.error('no PostgreSQL (set MACSLOT_PG_URL or install postgresql): PostgresStore skipped');
  else {
    for (const n of HOSTS) results.push(await run('postgres', url, schema(), n));
    for (const rate of RATES)
      for (const n of OPEN_HOSTS) {
        for (const perProcess of PER_PROCESS) results.push(await run('postgres', url, schema(), n, { rate, perProcess }));
        for (const mode of FLOORS) results.push(await run('postgres', url, schema(), n, { rate, mode }));
      }
  }
} finally {
  cluster?.remove();
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${SECONDS} s per run, ` +
    `${MODE === 'manager' ? `manager.allocate, ${CONCURRENCY} at a time per host` : 'bare claims, one at a time per host'}, ` +
    `load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
);
console.log(
  `a round trip between two processes over a unix socket costs ${wakeup.slow.toFixed(3)} ms of CPU at 300/s and ` +
    `${wakeup.fast.toFixed(3)} ms back to back (bench/wakeup.mjs)`,
);
console.log(
  'store     each      hosts  procs  offered/s  alloc/s    p50 ms   p99 ms   conflicts  failed  host CPU ms/alloc  db CPU ms/alloc',
);
for (const r of results) {
  console.log(
    `${r.store.padEnd(9)} ${r.mode.padEnd(8)} ${String(r.hosts).padStart(6)} ${String(r.processes).padStart(6)} ` +
      `${(r.offered > 0 ? r.offered.toFixed(0) : 'closed').padStart(10)} ` +
      `${r.perSecond.toFixed(0).padStart(8)} ` +
      `${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(8)} ` +
      `${String(r.conflicts).padStart(11)} ${String(r.failed).padStart(7)} ` +
      `${r.hostCpu.toFixed(3).padStart(18)} ${r.dbCpu.toFixed(3).padStart(16)}`,
  );
}
console.log(JSON.stringify(results));
// A run that completed nothing is broken, not slow: CI's short run of this benchmark fails on it.
const empty = results.filter((r) => !(r.perSecond > 0));
if (empty.length > 0) {
  console.error(`no allocation completed in ${empty.map((r) => `${r.store} ${r.mode} × ${r.hosts}`).join(', ')}`);
  process.exitCode = 1;
}
