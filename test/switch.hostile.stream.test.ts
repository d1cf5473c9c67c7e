// Hostile stream peers (QEMU -netdev stream over UNIX sockets) against a served switch: closes at every stage, garbage,
// frames never finished, a listener full, peers that never read against one queue budget, and socket paths already in use.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Nic, Switch, isMacslotError } from 'macslot';
import { listenStream, serveSwitch, type ServedSwitch } from 'macslot/node';
import { streamPeer, type StreamPeer } from './support/peer.js';
import { tagOf, tagged, until } from './support/frames.js';
import { deadline } from './support/deadline.js';

const dir = mkdtempSync(join(tmpdir(), 'macslot-hostile-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let served: ServedSwitch | undefined;
const sockets = new Set<Socket>();
const servers = new Set<Server>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all([...servers].map((s) => new Promise<void>((r) => s.close(() => r()))));
  servers.clear();
  await served?.close();
  served = undefined;
});

let seq = 0;
const path = (): string => join(dir, `s${++seq}.sock`);

async function serve(extra: Parameters<typeof serveSwitch>[1] = {}, logs: string[] = []) {
  const nic = new Nic({ primary: '02:6d:73:00:00:01', maxClients: 256 });
  const sw = await Switch.create({ nic, allocation: 'random' });
  served = await serveSwitch(sw, { log: (l) => logs.push(l), ...extra, listen: extra.listen ?? [{ kind: 'unix', path: path() }] });
  return { sw, served, listener: served.listeners[0]!, where: served.addresses[0]!.replace(/^unix:/, '') };
}

/** Connects, sends `bytes`, then half-closes when `end`; resolves once the server closed the connection. */
async function raw(where: string, bytes: readonly number[], end: boolean): Promise<void> {
  const s = connect(where);
  sockets.add(s);
  s.on('error', () => {});
  s.resume();
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await new Promise<void>((r, j) => (s.once('connect', r), s.once('error', j)));
  if (bytes.length > 0) s.write(Uint8Array.from(bytes));
  if (end) s.end();
  await deadline(closed, 20_000, () => s.destroy());
  sockets.delete(s);
}

async function join2(sw: Switch, where: string): Promise<{ peer: StreamPeer; mac: string }> {
  const before = new Set(sw.ports().map((p) => p.id));
  const peer = await streamPeer(where);
  sockets.add(peer.socket);
  await until(() => sw.ports().some((p) => !before.has(p.id)), 10_000, 'the switch to attach a peer');
  return {
    peer,
    mac: sw
      .ports()
      .find((p) => !before.has(p.id))!
      .mac!.toString(),
  };
}

/** A unicast each way between two fresh peers: the switch still serves. */
async function pairWorks(sw: Switch, where: string): Promise<void> {
  const a = await join2(sw, where);
  const b = await join2(sw, where);
  a.peer.send(tagged(b.mac, a.mac, 7));
  b.peer.send(tagged(a.mac, b.mac, 8));
  await until(() => a.peer.got.some((f) => tagOf(f) === 8) && b.peer.got.some((f) => tagOf(f) === 7), 10_000, 'a unicast each way');
  a.peer.socket.destroy();
  b.peer.socket.destroy();
}

const prefix = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/** Connections that leave at every stage of a frame, or send frames no switch can use. */
const STAGES: readonly { what: string; bytes: number[] }[] = [
  { what: 'nothing at all', bytes: [] },
  { what: 'half a length prefix', bytes: [0, 0] },
  { what: 'a prefix and no frame', bytes: prefix(60) },
  { what: 'a frame cut short', bytes: [...prefix(60), ...new Array(30).fill(0xab)] },
  { what: 'a whole runt frame then half a prefix', bytes: [...prefix(5), 1, 2, 3, 4, 5, 0, 0, 0] },
  { what: 'an empty frame', bytes: prefix(0) },
  { what: 'a bogus length', bytes: [0xff, 0xff, 0xff, 0xff, 1] },
  {
    what: 'a frame of invalid UTF-8 and escape sequences',
    bytes: [...prefix(64), ...Array.from({ length: 64 }, (_, i) => [0xff, 0x1b, 0x0a, 0xc0][i % 4]!)],
  },
];

describe('hostile stream peers', () => {
  it('leave at every stage of a frame or send garbage, and the switch keeps serving', async () => {
    const { sw, listener, where } = await serve();
    for (const s of STAGES) await raw(where, s.bytes, s.what !== 'a bogus length');
    await until(() => listener.counters().clients === 0, 10_000, 'every hostile connection to be gone');
    expect(listener.counters().accepted).toBe(STAGES.length);
    await pairWorks(sw, where);
    await until(() => sw.ports().length === 0, 10_000, 'the pair to leave');
  });

  it('close a peer that starts a frame and never finishes it, even one that trickles bytes', async () => {
    const logs: string[] = [];
    const { sw, where } = await serve({ frameTimeoutMs: 300 }, logs);
    // Stalls 30 bytes into a 60-byte frame.
    await raw(where, [...prefix(60), ...new Array(30).fill(1)], false);
    // Sends one byte of a 1000-byte frame every 20 ms: still never a whole frame.
    const s = connect(where);
    sockets.add(s);
    s.on('error', () => {});
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(Uint8Array.from(prefix(1000)));
    const drip = setInterval(() => s.writable && s.write(Uint8Array.of(0x42)), 20);
    try {
      await deadline(closed, 20_000, () => s.destroy());
    } finally {
      clearInterval(drip);
    }
    await until(() => (sw.counters().closed.drops['frame-timeout'] ?? 0) === 2, 10_000, 'two frame-timeout drops');
    expect(logs.filter((l) => l.includes('(frame-timeout)'))).toHaveLength(2);
    // Peers that finish their frames are not touched, however slow the switch or the machine.
    await pairWorks(sw, where);
  });

  it('refuse connections beyond maxClientsPerListener on that listener only', async () => {
    const p1 = path();
    const p2 = path();
    const logs: string[] = [];
    const { sw, served: s } = await serve(
      {
        listen: [
          { kind: 'unix', path: p1 },
          { kind: 'unix', path: p2 },
        ],
        maxClientsPerListener: 2,
      },
      logs,
    );
    const a = await join2(sw, p1);
    const b = await join2(sw, p1);
    await raw(p1, [], false);
    await raw(p1, [], false);
    expect(s.listeners[0]!.counters().refused).toEqual({ limit: 2 });
    expect(logs.filter((l) => l.includes('(limit)'))).toHaveLength(1);
    // The other listener has its own limit.
    await pairWorks(sw, p2);
    expect(s.listeners[1]!.counters().refused).toEqual({});
    a.peer.socket.destroy();
    b.peer.socket.destroy();
    await until(() => s.listeners[0]!.counters().clients === 0, 10_000, 'the first listener to empty');
    await pairWorks(sw, p1);
  });

  it('hold all queues of peers that never read within one budget, dropping only their frames', async () => {
    const budget = 1 << 20;
    const { sw, served: s, where } = await serve({ queueBudgetBytes: budget, maxQueueBytes: 1 << 20 });
    const a = await join2(sw, where);
    const b = await join2(sw, where);
    const slow: { peer: StreamPeer; mac: string }[] = [];
    for (let i = 0; i < 8; i++) {
      const p = await join2(sw, where);
      p.peer.socket.pause();
      slow.push(p);
    }
    const rounds = 700;
    for (let r = 0; r < rounds; r++) {
      for (const p of slow) {
        const f = new Uint8Array(1500);
        f.set(tagged(p.mac, a.mac, r));
        a.peer.send(f);
      }
      a.peer.send(tagged(b.mac, a.mac, r));
      if (r % 50 === 49) await until(() => b.peer.got.length === r + 1, 10_000, `b to receive frame ${r}`);
    }
    await until(() => b.peer.got.length === rounds, 10_000, 'b to receive every frame');
    expect(b.peer.got.map(tagOf)).toEqual(Array.from({ length: rounds }, (_, r) => r));
    const ports = sw.counters().ports;
    const bPort = ports.find((p) => p.mac === b.mac)!;
    expect(bPort.drops).toEqual({});
    for (const p of slow) {
      const c = ports.find((q) => q.mac === p.mac)!;
      expect(c.drops['queue-budget'], p.mac).toBeGreaterThan(0);
      expect(c.tx.frames + (c.drops['queue-budget'] ?? 0) + (c.drops.backpressure ?? 0)).toBe(rounds);
    }
    // 8 × 1 MiB per-peer queues would allow 8 MiB; together they stayed within the budget (plus fair shares below it).
    expect(s.queueBudget.peak).toBeLessThanOrEqual(2 * budget);
    expect(s.queueBudget.used).toBeLessThanOrEqual(2 * budget);
    expect(s.queueBudget.used).toBeGreaterThan(budget / 2);
    for (const p of slow) p.peer.socket.destroy();
    await until(() => sw.ports().length === 2, 10_000, 'the slow peers to go');
    expect(s.queueBudget.used).toBe(0);
    a.peer.socket.destroy();
    b.peer.socket.destroy();
  });

  it('contain a receiver that throws: the peer is refused, counted and logged once, escaped', async () => {
    const logs: string[] = [];
    const where = path();
    const l = await listenStream(
      { path: where },
      () => {
        throw new Error('boom\n\u001b[31mforged: line');
      },
      { log: (x) => logs.push(x) },
    );
    try {
      await raw(where, prefix(60), false);
      await raw(where, [], false);
      expect(l.counters()).toMatchObject({ accepted: 2, clients: 0, refused: { error: 2 } });
      expect(logs).toHaveLength(1);
      expect(logs[0]).toContain('boom\\n\\x1b[31mforged: line');
    } finally {
      await l.close();
    }
  });
});

describe('unix socket paths', () => {
  it('refuse a path a live process serves, and leave it serving', async () => {
    const where = path();
    const live = createServer((c) => {
      c.on('error', () => {});
      c.end('still here');
    });
    servers.add(live);
    await new Promise<void>((r) => live.listen(where, r));
    const err = await serve({ listen: [{ kind: 'unix', path: where }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMacslotError(err, 'ADDRESS_IN_USE'), String(err)).toBe(true);
    expect(String(err)).toContain(where);
    const reply = await new Promise<string>((r, j) => {
      const c = connect(where);
      let got = '';
      c.on('data', (d) => (got += d.toString()));
      c.on('close', () => r(got));
      c.on('error', j);
    });
    expect(reply).toBe('still here');
  });

  it('replace a stale socket file left by a process that died, and refuse a regular file', async () => {
    const where = path();
    const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", where], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((r, j) => {
        child.stdout!.on('data', () => r());
        child.once('exit', () => j(new Error('the helper exited before listening')));
      });
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    // The dead process left its socket file: nobody accepts there, so the switch takes it.
    const { sw, where: w } = await serve({ listen: [{ kind: 'unix', path: where }] });
    expect(w).toBe(where);
    await pairWorks(sw, where);
    await served!.close();
    served = undefined;

    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'data');
    await expect(serve({ listen: [{ kind: 'unix', path: file }] })).rejects.toThrow(/INVALID_ARGUMENT: .*not a socket/);
    expect(readFileSync(file, 'utf8')).toBe('data');
  });
});
