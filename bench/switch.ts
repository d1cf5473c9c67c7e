// Benchmark: frames per second through the switch over UNIX stream sockets (QEMU framing), against a flooding relay,
// measured the way they run: the switch, the relay and the peers each in a process of its own (bench/switch-child.ts).
// Windows of the switch and the relay are interleaved (A B, B A, …); a ratio is the median of per-round ratios. The
// switch's own CPU time per frame, its heap growth and its young-generation collections come from the switch's process.
// Then 16 guests behind per-guest passt uplinks (in this process). Figures go to bench/results/switch.json.
// Usage: npm run bench:switch   (BENCH_SECONDS per window, default 2; BENCH_ROUNDS, default 5; BENCH_UPLINKS=0 skips the
//        uplinks case, BENCH_UPLINKS_ONLY=1 runs it alone)
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Nic, QEMU_FRAMING, Switch, encodeFrame } from '../src/index.js';
import { serveSwitch } from '../src/node/index.js';
import { machineNow, roundStats, saveFigures, type Figure, type FigureName } from './figures.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const UPLINKS_ONLY = process.env.BENCH_UPLINKS_ONLY === '1';
const FRAME = 64;
const BATCH = 64;
const HIGH_WATER = 64 * 1024;
const CHILD = join(import.meta.dirname, 'switch-child.ts');

const mac = (i: number): string =>
  `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
const bytes = (m: string): number[] => m.split(':').map((h) => parseInt(h, 16));

interface Sample {
  cpuUs: number;
  heapUsed: number;
  minorGcs: number;
  majorGcs: number;
  ports?: number;
}
interface Window {
  good: number;
  all: number;
  bad: number;
  sum: number;
  ms: number;
}

/** Forks one benchmark process and resolves once it says it is ready. */
async function spawnChild(args: string[]): Promise<ChildProcess> {
  const c = fork(CHILD, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await nextMessage(c, (m) => m.ready === true);
  return c;
}

/** The next message of `c` that `want` accepts. */
function nextMessage(c: ChildProcess, want: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const on = (m: Record<string, unknown>): void => {
      if (!want(m)) return;
      c.off('message', on);
      c.off('exit', gone);
      resolve(m);
    };
    const gone = (code: number | null): void => reject(new Error(`a benchmark process exited (${code})`));
    c.on('message', on);
    c.once('exit', gone);
  });
}

async function sampleOf(c: ChildProcess): Promise<Sample> {
  const p = nextMessage(c, (m) => typeof m.cpuUs === 'number');
  c.send({ cmd: 'sample' });
  return (await p) as unknown as Sample;
}

interface Measured extends Window {
  cpuUs: number;
  heapGrowth: number;
  minorGcs: number;
  majorGcs: number;
}

/** One window: the peers send to `target` (0: the switch, 1: the relay); `proc` is that target's process. */
async function measure(peers: ChildProcess, target: number, proc: ChildProcess, ms: number): Promise<Measured> {
  const started = nextMessage(peers, (m) => m.phase === 'started');
  const ended = nextMessage(peers, (m) => m.phase === 'ended');
  const idle = nextMessage(peers, (m) => m.phase === 'idle');
  peers.send({ cmd: 'run', target, ms, warmMs: 200 });
  await started;
  const s0 = await sampleOf(proc);
  const w = (await ended) as unknown as Window;
  const s1 = await sampleOf(proc);
  await idle;
  return {
    ...w,
    cpuUs: s1.cpuUs - s0.cpuUs,
    heapGrowth: s1.heapUsed - s0.heapUsed,
    minorGcs: s1.minorGcs - s0.minorGcs,
    majorGcs: s1.majorGcs - s0.majorGcs,
  };
}

interface Row {
  clients: number;
  rounds: { switch: Measured; relay: Measured; ratio: number }[];
}

async function runCase(dir: string, n: number): Promise<Row> {
  const sp = join(dir, `sw${n}.sock`);
  const rp = join(dir, `relay${n}.sock`);
  const sw = await spawnChild(['switch', String(n), sp]);
  const relay = await spawnChild(['relay', rp]);
  let peers: ChildProcess | undefined;
  try {
    peers = await spawnChild(['peers', String(n), sp, rp]);
    for (let t = Date.now(); (await sampleOf(sw)).ports !== n; ) {
      if (Date.now() - t > 10_000) throw new Error(`the switch did not attach ${n} ports`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // One unrecorded window of each, then interleaved rounds, each starting with the other variant.
    await measure(peers, 0, sw, 500);
    await measure(peers, 1, relay, 500);
    const rounds: Row['rounds'] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? [0, 1] : [1, 0];
      const got: Measured[] = [];
      for (const t of order) got[t] = await measure(peers, t, t === 0 ? sw : relay, SECONDS * 1000);
      const [s, x] = [got[0]!, got[1]!];
      if (s.bad > 0 || x.bad > 0) throw new Error(`${n} clients: frames failed their checksum (switch ${s.bad}, relay ${x.bad})`);
      rounds.push({ switch: s, relay: x, ratio: s.good / s.ms / (x.good / x.ms) });
      process.stderr.write(
        `[bench:switch] ${n} clients, round ${r + 1}: switch ${k(s.good / s.ms)} fps, relay ${k(x.good / x.ms)} fps, ` +
          `${(s.good / s.ms / (x.good / x.ms)).toFixed(2)}×, switch ${(s.cpuUs / Math.max(1, s.good)).toFixed(3)} µs CPU/frame\n`,
      );
    }
    return { clients: n, rounds };
  } finally {
    for (const c of [peers, sw, relay]) c?.kill();
  }
}

const k = (perMs: number): string => `${((perMs * 1000) / 1000).toFixed(0)} k`;
const med = (xs: number[]): number => roundStats(xs, '').value;

const dir = mkdtempSync(join(tmpdir(), 'macslot-bench-switch-'));
const machine = machineNow();
const figures: Partial<Record<FigureName, Figure>> = {};
const rows: Row[] = [];
try {
  for (const n of UPLINKS_ONLY ? [] : [2, 16]) rows.push(await runCase(dir, n));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (!UPLINKS_ONLY) {
  console.log(
    `Frames of ${FRAME} B, client i → client i+1, over UNIX stream sockets (QEMU framing); the switch, the relay and the ` +
      `peers each in its own process; ${ROUNDS} interleaved rounds of ${SECONDS} s per variant.`,
  );
  console.log('"to destination": frames that reached the client they were addressed to; medians of the rounds.\n');
  console.log(
    '| clients | switch: to destination /s | relay: to destination /s | relay: all deliveries /s | switch / relay ' +
      '(median of rounds, lowest–highest) | switch CPU µs/frame | relay CPU µs/frame | switch heap growth, young GCs per M frames |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const n = row.clients;
    const sw = row.rounds.map((r) => r.switch);
    const rl = row.rounds.map((r) => r.relay);
    const ratio = roundStats(
      row.rounds.map((r) => r.ratio),
      '×',
    );
    const cpu = roundStats(
      sw.map((s) => s.cpuUs / Math.max(1, s.good)),
      'µs',
    );
    const gcs = roundStats(
      sw.map((s) => (s.minorGcs * 1e6) / Math.max(1, s.good)),
      'per M frames',
    );
    const heap = roundStats(
      sw.map((s) => s.heapGrowth),
      'B',
    );
    if (n === 2 || n === 16) {
      figures[`switch_vs_relay.${n}clients`] = ratio;
      figures[`switch_cpu_us_per_frame.${n}clients`] = cpu;
      figures[`switch_young_gcs_per_mframe.${n}clients`] = gcs;
      figures[`switch_heap_growth_bytes.${n}clients`] = heap;
    }
    console.log(
      `| ${n} | ${k(med(sw.map((s) => s.good / s.ms)))} | ${k(med(rl.map((s) => s.good / s.ms)))} | ` +
        `${k(med(rl.map((s) => s.all / s.ms)))} | ${ratio.value.toFixed(2)}× (${ratio.lo!.toFixed(2)}–${ratio.hi!.toFixed(2)}) | ` +
        `${cpu.value.toFixed(3)} | ${med(rl.map((s) => s.cpuUs / Math.max(1, s.good))).toFixed(3)} | ` +
        `${(heap.value / 1024).toFixed(0)} KiB, ${gcs.value.toFixed(1)} |`,
    );
  }
  // Every frame a peer received was checked against the checksum its sender put in it; the run stops on a failure.
  const checks = rows.map((r) => ({
    clients: r.clients,
    framesChecked: r.rounds.reduce((t, x) => t + x.switch.all + x.relay.all, 0),
    checksumFailures: r.rounds.reduce((t, x) => t + x.switch.bad + x.relay.bad, 0),
    switchToOthers: r.rounds.map((x) => x.switch.all - x.switch.good),
  }));
  saveFigures('switch', machine, SECONDS < 2, figures, { seconds: SECONDS, rounds: ROUNDS, cases: rows, checks });
}
if (process.env.BENCH_UPLINKS !== '0') await perGuestUplinks(16);
console.log(`\ncommand: npm run bench:switch   (BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, Node ${process.version})`);

/** An IPv4/UDP frame from guest `i` (its address `ip`) to the gateway's discard port, with a correct header checksum. */
function udpToGateway(src: string, ip: string, gatewayMac: string): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + 18);
  f.set(bytes(gatewayMac), 0);
  f.set(bytes(src), 6);
  f[12] = 0x08;
  const h = f.subarray(14, 34);
  h.set([0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0], 0);
  h.set(ip.split('.').map(Number), 12);
  h.set([10, 0, 2, 2], 16);
  let sum = 0;
  for (let k = 0; k < 20; k += 2) sum += (h[k]! << 8) | h[k + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  h[10] = (~sum >> 8) & 0xff;
  h[11] = ~sum & 0xff;
  f.set([0x9c, 0x40, 0, 9, 0, 26, 0, 0], 34);
  return f;
}

/** Resident memory of process `pid`, in KiB (0 when gone). */
function rssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * `n` guests behind `--uplink passt` (one real passt each), each sending UDP to the gateway as fast as its socket
 * takes it: frames per second given to the guests' own passts, and memory per guest (each passt's resident size, and
 * the switch process's heap and resident growth divided by n).
 */
async function perGuestUplinks(n: number): Promise<void> {
  const d = mkdtempSync(join(tmpdir(), 'macslot-bench-uplinks-'));
  const heap0 = process.memoryUsage();
  const nic = new Nic({ primary: '02:00:00:00:ff:ff', unicastEntries: 32 });
  const clients = Array.from({ length: n }, (_, i) => ({ name: `vm${i + 1}`, address: mac(i + 1) }));
  const sw = await Switch.create({ nic, clients, allocation: 'none', stormControl: false });
  const sp = join(d, 'sw.sock');
  const served = await serveSwitch(sw, { listen: [{ kind: 'unix', path: sp }], uplink: { kind: 'passt' } });
  const socks: Socket[] = [];
  try {
    const up = served.uplinks!;
    for (let i = 0; i < n; i++) {
      const s = connect(sp);
      await new Promise<void>((r) => s.once('connect', r));
      s.on('data', () => {});
      s.on('error', () => {});
      socks.push(s);
      while (sw.ports().length < i + 1) await new Promise((r) => setTimeout(r, 1));
      const address = up.open(mac(i + 1));
      const one = encodeFrame(QEMU_FRAMING, udpToGateway(mac(i + 1), address, '02:6d:73:ff:00:01'));
      const batch = new Uint8Array(one.length * BATCH);
      for (let k = 0; k < BATCH; k++) batch.set(one, k * one.length);
      (s as Socket & { batch?: Uint8Array }).batch = batch;
    }
    const deadline = Date.now() + 30_000;
    while (!up.counters().every((g) => g.state === 'up')) {
      if (Date.now() > deadline) throw new Error(`not every passt started: ${JSON.stringify(up.counters().map((g) => g.state))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    let running = true;
    const pump = (): void => {
      if (!running) return;
      for (const s of socks) if (s.writableLength < HIGH_WATER) s.write((s as Socket & { batch?: Uint8Array }).batch!);
      setImmediate(pump);
    };
    pump();
    await new Promise((r) => setTimeout(r, 300));
    const sum = (): number => up.counters().reduce((t, g) => t + g.toUplink, 0);
    const before = sum();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const fps = (sum() - before) / ((performance.now() - t0) / 1000);
    running = false;
    const pids = up.counters().map((g) => g.pid ?? 0);
    const passtKiB = pids.reduce((t, p) => t + rssKiB(p), 0) / n;
    const heap1 = process.memoryUsage();
    console.log(`\n${n} guests, each with its own passt (--uplink passt), each sending 60-byte UDP frames to the gateway, ${SECONDS} s:`);
    console.log('| guests | frames/s into the uplinks | passt resident per guest | switch heap per guest | switch resident per guest |');
    console.log('|---|---|---|---|---|');
    const kib = (b: number): string => `${(b / 1024).toFixed(0)} KiB`;
    console.log(
      `| ${n} | ${(fps / 1000).toFixed(0)} k | ${passtKiB.toFixed(0)} KiB | ` +
        `${kib((heap1.heapUsed - heap0.heapUsed) / n)} | ${kib((heap1.rss - heap0.rss) / n)} |`,
    );
  } finally {
    for (const s of socks) s.destroy();
    await served.close();
    rmSync(d, { recursive: true, force: true });
  }
}
