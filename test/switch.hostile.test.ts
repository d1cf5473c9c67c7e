// Hostile stream peers against a switch on a real UNIX socket: each misbehaviour is logged and counted, nobody else is affected, nothing
// leaks.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Nic, Switch } from 'macslot';
import { serveSwitch, type ServedSwitch } from 'macslot/node';
import { streamPeer, type StreamPeer } from './support/peer.js';
import { tagOf, tagged, until } from './support/frames.js';

const dir = mkdtempSync(join(tmpdir(), 'macslot-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fds = (): number => readdirSync('/proc/self/fd').length;

async function raw(path: string, bytes: Uint8Array, end: boolean): Promise<{ closedByServer: Promise<void> }> {
  const s = connect(path);
  await new Promise<void>((r, j) => (s.once('connect', r), s.once('error', j)));
  s.on('error', () => {});
  const closedByServer = new Promise<void>((r) => s.once('close', () => r()));
  s.write(bytes);
  if (end) s.end();
  return { closedByServer };
}

describe('hostile stream peers', () => {
  it('survive bogus lengths, truncation, a peer that stops reading and a connection storm, with fds and slots back to ' +
    'baseline', async () => {
    const logs: string[] = [];
    const nic = new Nic({ primary: '02:00:00:00:00:01', maxClients: 4096 });
    // Storm control off: this test floods broadcast on purpose, to fill a slow reader's queue.
    const sw = await Switch.create({ nic, allocation: 'random', stormControl: false });
    const path = join(dir, 'sw.sock');
    const served: ServedSwitch = await serveSwitch(sw, {
      listen: [{ kind: 'unix', path }],
      maxQueueBytes: 256 * 1024,
      log: (l) => logs.push(l),
    });

    const join1 = async (): Promise<{ peer: StreamPeer; mac: string }> => {
      const before = sw.ports().length;
      const peer = await streamPeer(path);
      await until(() => sw.ports().length > before, 20_000, 'the switch to attach a peer');
      return { peer, mac: sw.ports().at(-1)!.mac!.toString() };
    };

    // Warm up once so lazily opened descriptors are in the baseline.
    const warm = await join1();
    warm.peer.socket.destroy();
    await until(() => sw.ports().length === 0, 20_000, 'the warm-up port to go');
    await sw.settled();
    const baseFds = fds();
    const baseClients = nic.clients().length;
    const baseSlots = nic.slots().length;

    const a = await join1();
    const b = await join1();

    // 1. A length prefix above QEMU's 69632: the peer is closed, logged and counted.
    const bogus = await raw(path, Uint8Array.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]), false);
    await bogus.closedByServer;
    await until(() => sw.counters().closed.drops['invalid-length'] === 1, 20_000, 'the invalid-length drop');
    expect(logs.some((l) => /bogus length 4294967280 \(maximum 69632\)/.test(l))).toBe(true);

    // 2. A frame cut short by the peer leaving.
    await raw(path, Uint8Array.from([0, 0, 0, 60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), true);
    await until(() => sw.counters().closed.drops.truncated === 1, 20_000, 'the truncated drop');
    expect(logs.some((l) => /dropped \(truncated\): the peer went away 14 bytes into a frame/.test(l))).toBe(true);

    // 3. A peer that stops reading: its queue fills and drops, while b keeps receiving everything a broadcasts.
    const slow = await join1();
    slow.peer.socket.pause();
    const total = 2000;
    for (let i = 0; i < total; i += 50) {
      for (let k = i; k < i + 50; k++) {
        const f = new Uint8Array(1500);
        f.set(tagged('ff:ff:ff:ff:ff:ff', a.mac, k));
        a.peer.send(f);
      }
      await until(() => b.peer.got.length >= i + 50, 20_000, `b to receive broadcast ${i + 49}`);
    }
    expect(b.peer.got.map(tagOf)).toEqual(Array.from({ length: total }, (_, k) => k));
    const slowPort = sw.counters().ports.find((p) => p.mac === slow.mac)!;
    expect(slowPort.drops.backpressure).toBeGreaterThan(0);
    expect(slowPort.tx.frames + slowPort.drops.backpressure!).toBe(total);
    expect(logs.some((l) => l.includes('dropped (backpressure)'))).toBe(true);
    slow.peer.socket.destroy();

    // 4. Thousands of connections, each leaving mid-frame.
    const storm = 2000;
    for (let i = 0; i < storm; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, () => raw(path, Uint8Array.from([0, 0, 0, 60, 1, 2, 3, 4, 5, 6]), true).then((r) => r.closedByServer)),
      );
    }
    const settled = (): boolean => {
      const c = sw.counters();
      return (c.closed.drops.truncated ?? 0) - 1 + (c.refused.PORT_CLOSED ?? 0) === storm && sw.ports().length === 2;
    };
    await until(settled, 20000, 'every storm connection to be accounted for');
    // a and b were never disturbed: a unicast still goes through.
    a.peer.send(tagged(b.mac, a.mac, 99999));
    await until(() => b.peer.got.length === total + 1, 20_000, 'the unicast after the storm');
    expect(a.peer.got).toHaveLength(0);

    a.peer.socket.destroy();
    b.peer.socket.destroy();
    await until(() => sw.ports().length === 0, 20_000, 'every port to close');
    await sw.settled();
    expect(nic.clients().length).toBe(baseClients);
    expect(nic.slots().length).toBe(baseSlots);
    await until(() => fds() <= baseFds, 20_000, `descriptors back to ${baseFds} (now ${fds()})`);
    expect(fds()).toBe(baseFds);
    await served.close();
  }, 60_000);
});
