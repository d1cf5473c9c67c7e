// Benchmark: frames per second through `macslot switch` over UNIX stream sockets (QEMU framing), next to a plain
// flooding relay, in one run.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameDecoder, Nic, QEMU_FRAMING, Switch, encodeFrame } from '../src/index.js';
import { serveSwitch } from '../src/node/index.js';
import { machineNow, saveFigures, type Figure, type FigureName } from './figures.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const UPLINKS_ONLY = process.env.BENCH_UPLINKS_ONLY === '1';
const FRAME = 64;
const BATCH = 64;
const HIGH_WATER = 64 * 1024;

const mac = (i: number): string =>
  `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
const bytes = (m: string): number[] => m.split(':').map((h) => parseInt(h, 16));

/**
 * A flooding relay, as most emulator relays are: every frame goes to every other connection. It
 * batches its writes per turn of the event loop exactly as the switch's ports do, so the comparison
 * measures flooding against filtering, not syscall counts.
 */
async function floodingRelay(path: string): Promise<Server> {
  const conns = new Set<Socket>();
  const corked = new Set<Socket>();
  const server = createServer((s) => {
    conns.add(s);
    s.setNoDelay(true);
    const dec = new FrameDecoder(QEMU_FRAMING, (f) => {
      const out = encodeFrame(QEMU_FRAMING, f);
      for (const c of conns) {
        if (c === s || c.writableLength >= 1 << 20) continue;
        if (!corked.has(c)) {
          corked.add(c);
          c.cork();
          process.nextTick(() => {
            corked.delete(c);
            c.uncork();
          });
        }
        c.write(out);
      }
    });
    s.on('data', (c) => dec.push(c));
    s.on('close', () => conns.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return server;
}

/**
 * Connects `n` clients; client i sends to client (i+1) mod n. Returns frames that reached their destination per second,
 * and all deliveries per second.
 */
async function drive(path: string, n: number, attached: (count: number) => Promise<void>): Promise<{ fps: number; deliveries: number }> {
  const socks: Socket[] = [];
  let good = 0;
  let all = 0;
  let counting = false;
  for (let i = 0; i < n; i++) {
    const s = connect(path);
    await new Promise<void>((r) => s.once('connect', r));
    const me = bytes(mac(i + 1));
    const dec = new FrameDecoder(QEMU_FRAMING, (f) => {
      if (!counting) return;
      all++;
      if (f[0] === me[0] && f[5] === me[5] && f[4] === me[4]) good++;
    });
    s.on('data', (c) => dec.push(c));
    s.on('error', () => {});
    socks.push(s);
    await attached(i + 1);
  }
  const batches = socks.map((_, i) => {
    const f = new Uint8Array(FRAME);
    f.set(bytes(mac(((i + 1) % n) + 1)), 0);
    f.set(bytes(mac(i + 1)), 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    const one = encodeFrame(QEMU_FRAMING, f);
    const b = new Uint8Array(one.length * BATCH);
    for (let k = 0; k < BATCH; k++) b.set(one, k * one.length);
    return b;
  });
  let running = true;
  const pump = (): void => {
    if (!running) return;
    socks.forEach((s, i) => {
      if (s.writableLength < HIGH_WATER) s.write(batches[i]!);
    });
    setImmediate(pump);
  };
  pump();
  await new Promise((r) => setTimeout(r, 300));
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const dt = (performance.now() - t0) / 1000;
  counting = false;
  running = false;
  const out = { fps: good / dt, deliveries: all / dt };
  for (const s of socks) s.destroy();
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'macslot-bench-switch-'));
const rows: string[] = [];
const machine = machineNow();
const figures: Partial<Record<FigureName, Figure>> = {};
try {
  // BENCH_UPLINKS_ONLY=1 runs the per-guest uplinks case alone (and records no figures).
  for (const n of UPLINKS_ONLY ? [] : [2, 16]) {
    const nic = new Nic({ primary: '02:00:00:00:ff:ff', unicastEntries: 32 });
    const clients = Array.from({ length: n }, (_, i) => ({ name: `vm${i + 1}`, address: mac(i + 1) }));
    const sw = await Switch.create({ nic, clients, allocation: 'none' });
    const sp = join(dir, `sw${n}.sock`);
    const served = await serveSwitch(sw, { listen: [{ kind: 'unix', path: sp }] });
    const s = await drive(sp, n, async (count) => {
      while (sw.ports().length < count) await new Promise((r) => setTimeout(r, 1));
    });
    await served.close();

    const rp = join(dir, `relay${n}.sock`);
    const relay = await floodingRelay(rp);
    const r = await drive(rp, n, async () => new Promise((res) => setTimeout(res, 5)));
    await new Promise<void>((res) => relay.close(() => res()));
    const k = (x: number): string => (x / 1000).toFixed(0) + ' k';
    if (n === 2 || n === 16) figures[`switch_vs_relay.${n}clients`] = { value: s.fps / r.fps, unit: '×' };
    rows.push(`| ${n} | ${k(s.fps)} | ${k(s.deliveries)} | ${k(r.fps)} | ${k(r.deliveries)} | ${(s.fps / r.fps).toFixed(2)}× |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `Frames of ${FRAME} B, client i → client i+1, over UNIX stream sockets (QEMU framing), ${SECONDS} s per cell, ` +
    'clients in the same process.',
);
console.log(
  '"to destination": frames that reached the client they were addressed to; "all deliveries": every frame written to any client.\n',
);
console.log(
  '| clients | switch: to destination /s | switch: all deliveries /s | flooding relay: to destination /s | ' +
    'flooding relay: all deliveries /s | switch / relay |',
);
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
if (!UPLINKS_ONLY) saveFigures('switch', machine, SECONDS < 2, figures);
if (process.env.BENCH_UPLINKS !== '0') await perGuestUplinks(16);
console.log(`\ncommand: npm run bench:switch   (BENCH_SECONDS=${SECONDS}, Node ${process.version})`);

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
