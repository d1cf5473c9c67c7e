// Benchmark processes of `npm run bench:switch`, each forked by bench/switch.ts with an IPC channel:
//   switch <n> <path>   the switch (the built library, as `macslot switch` runs it) with n clients on a UNIX socket;
//   relay <path>        a flooding relay that writes once per connection per event-loop turn, as a tuned relay does;
//   peers <n> <paths…>  n guests on each path; client i sends 64-byte frames to client i + 1 and checks what it gets.
// Every process answers { cmd: 'sample' } with its CPU time and heap; the peers answer { cmd: 'run', target, ms }
// with the frames each target delivered.

import { PerformanceObserver } from 'node:perf_hooks';
import { connect, createServer, type Socket } from 'node:net';
import { Nic, Switch } from '../dist/index.js';
import { serveSwitch } from '../dist/node/index.js';

const FRAME = 64;
const BATCH = 64;
const HIGH_WATER = 64 * 1024;
const PREFIX = 4;
const MAX_FRAME = 4096 + 65536;

/** Client i's MAC (i from 1). */
export const macOf = (i: number): string =>
  `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
const bytes = (m: string): number[] => m.split(':').map((h) => parseInt(h, 16));

let minorGcs = 0;
let majorGcs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind;
    // 1: scavenge (young generation); anything else collects the old generation too.
    if (kind === 1) minorGcs++;
    else majorGcs++;
  }
}).observe({ entryTypes: ['gc'] });

/** This process's CPU time (µs), heap in use and collections so far. */
function sample(): { cpuUs: number; heapUsed: number; minorGcs: number; majorGcs: number } {
  const c = process.cpuUsage();
  return { cpuUs: c.user + c.system, heapUsed: process.memoryUsage().heapUsed, minorGcs, majorGcs };
}

const send = (m: unknown): void => void process.send!(m);

/**
 * Walks a QEMU-framed byte stream without a view or call per frame: `frame(buf, at)` sees each frame's first 12 and last
 * 4 bytes at `buf[at…]` (a scratch copy when the frame was cut across chunks). Frames must be FRAME bytes long.
 */
class FrameWalker {
  readonly #scratch = new Uint8Array(MAX_FRAME + PREFIX);
  #have = 0;
  readonly #frame: (buf: Uint8Array, at: number) => void;
  constructor(frame: (buf: Uint8Array, at: number) => void) {
    this.#frame = frame;
  }
  push(c: Uint8Array): void {
    let i = 0;
    const s = this.#scratch;
    if (this.#have > 0) {
      // Finish the frame cut across chunks in the scratch.
      while (i < c.length && (this.#have < PREFIX || this.#have < PREFIX + this.#len(s, 0))) s[this.#have++] = c[i++]!;
      if (this.#have < PREFIX || this.#have < PREFIX + this.#len(s, 0)) return;
      this.#frame(s, PREFIX);
      this.#have = 0;
    }
    for (;;) {
      if (c.length - i < PREFIX) break;
      const n = this.#len(c, i);
      if (c.length - i - PREFIX < n) break;
      this.#frame(c, i + PREFIX);
      i += PREFIX + n;
    }
    while (i < c.length) s[this.#have++] = c[i++]!;
  }
  #len(b: Uint8Array, i: number): number {
    return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  }
}

/** The frame client `i` (from 1) sends to client `to`: its last 4 bytes are a checksum of the first 12 and `i`. */
function frameOf(i: number, to: number): Uint8Array {
  const f = new Uint8Array(FRAME);
  f.set(bytes(macOf(to)), 0);
  f.set(bytes(macOf(i)), 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  f[14] = i & 0xff;
  const sum = checksum(f, 0);
  f[FRAME - 4] = sum >>> 24;
  f[FRAME - 3] = (sum >>> 16) & 0xff;
  f[FRAME - 2] = (sum >>> 8) & 0xff;
  f[FRAME - 1] = sum & 0xff;
  return f;
}

function checksum(b: Uint8Array, at: number): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < 12; k++) h = Math.imul(h ^ b[at + k]!, 0x01000193);
  return h >>> 0;
}

async function runSwitch(n: number, path: string): Promise<void> {
  const nic = new Nic({ primary: '02:00:00:00:ff:ff', unicastEntries: Math.max(32, n) });
  const clients = Array.from({ length: n }, (_, i) => ({ name: `vm${i + 1}`, address: macOf(i + 1) }));
  const sw = await Switch.create({ nic, clients, allocation: 'none' });
  await serveSwitch(sw, { listen: [{ kind: 'unix', path }] });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'sample') send({ ...sample(), ports: sw.ports().length });
    else if (m.cmd === 'counters') send(sw.counters());
  });
  send({ ready: true });
}

/** A flooding relay: every frame to every other connection, written once per connection per turn of the event loop. */
async function runRelay(path: string): Promise<void> {
  interface Conn {
    s: Socket;
    out: Uint8Array[];
    rest: Uint8Array | undefined;
  }
  const conns = new Set<Conn>();
  const dirty = new Set<Conn>();
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    for (const c of dirty) {
      if (c.out.length === 1) c.s.write(c.out[0]!);
      else c.s.write(Buffer.concat(c.out));
      c.out = [];
    }
    dirty.clear();
  };
  const server = createServer((s) => {
    s.setNoDelay(true);
    const me: Conn = { s, out: [], rest: undefined };
    conns.add(me);
    s.on('data', (chunk: Buffer) => {
      // Forward whole frames only: the bytes up to the last complete frame go to everyone else in one piece.
      let buf: Uint8Array = chunk;
      if (me.rest !== undefined) {
        buf = Buffer.concat([me.rest, chunk]);
        me.rest = undefined;
      }
      let i = 0;
      while (buf.length - i >= PREFIX) {
        const n = ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
        if (buf.length - i - PREFIX < n) break;
        i += PREFIX + n;
      }
      if (i < buf.length) me.rest = buf.slice(i);
      if (i === 0) return;
      const whole = buf.subarray(0, i);
      for (const c of conns) {
        if (c === me || c.s.writableLength >= 1 << 20) continue;
        c.out.push(whole);
        dirty.add(c);
      }
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
    s.on('close', () => {
      conns.delete(me);
      dirty.delete(me);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'sample') send({ ...sample(), ports: conns.size });
  });
  send({ ready: true });
}

/** n guests on each path; one path's guests send at a time. */
async function runPeers(n: number, paths: string[]): Promise<void> {
  interface Guest {
    s: Socket;
    batch: Uint8Array;
  }
  const targets: Guest[][] = [];
  let good = 0;
  let all = 0;
  let bad = 0;
  let sum = 0;
  let lastData = 0;
  for (const path of paths) {
    const guests: Guest[] = [];
    for (let i = 1; i <= n; i++) {
      const s = connect(path);
      s.setNoDelay(true);
      await new Promise<void>((r, j) => {
        s.once('connect', r);
        s.once('error', j);
      });
      const me = bytes(macOf(i));
      const walker = new FrameWalker((b, at) => {
        all++;
        const h = checksum(b, at);
        const tail = at + FRAME - 4;
        const want = ((b[tail]! << 24) | (b[tail + 1]! << 16) | (b[tail + 2]! << 8) | b[tail + 3]!) >>> 0;
        if (h !== want) bad++;
        else if (b[at + 5] === me[5] && b[at + 4] === me[4] && b[at] === me[0]) {
          good++;
          sum = (sum + h) >>> 0;
        }
      });
      s.on('data', (c: Buffer) => {
        lastData = performance.now();
        walker.push(c);
      });
      s.on('error', () => {});
      const one = frameOf(i, (i % n) + 1);
      const batch = new Uint8Array((PREFIX + FRAME) * BATCH);
      for (let k = 0; k < BATCH; k++) {
        batch.set([0, 0, 0, FRAME], k * (PREFIX + FRAME));
        batch.set(one, k * (PREFIX + FRAME) + PREFIX);
      }
      guests.push({ s, batch });
    }
    targets.push(guests);
  }
  let active: Guest[] | undefined;
  const pump = (): void => {
    const g = active;
    if (g === undefined) return;
    for (const x of g) if (x.s.writableLength < HIGH_WATER) x.s.write(x.batch);
    setImmediate(pump);
  };
  process.on('message', async (m: { cmd: string; target?: number; ms?: number; warmMs?: number }) => {
    if (m.cmd === 'sample') return send(sample());
    if (m.cmd !== 'run') return;
    active = targets[m.target!]!;
    pump();
    await new Promise((r) => setTimeout(r, m.warmMs ?? 200));
    good = 0;
    all = 0;
    bad = 0;
    sum = 0;
    send({ phase: 'started' });
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, m.ms!));
    const ms = performance.now() - t0;
    send({ phase: 'ended', good, all, bad, sum, ms });
    active = undefined;
    // What is still in flight (a flood queued in the sockets) drains before the next window starts: quiet for 200 ms.
    const stop = performance.now() + 30_000;
    do await new Promise((r) => setTimeout(r, 50));
    while (performance.now() - lastData < 200 && performance.now() < stop);
    send({ phase: 'idle' });
  });
  send({ ready: true });
}

const [role, ...args] = process.argv.slice(2);
if (role === 'switch') await runSwitch(Number(args[0]), args[1]!);
else if (role === 'relay') await runRelay(args[0]!);
else if (role === 'peers') await runPeers(Number(args[0]), args.slice(1));
else throw new Error(`unknown role ${role}`);
process.on('disconnect', () => process.exit(0));
