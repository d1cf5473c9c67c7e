// The switch over its other transports: WebSocket (one frame per binary message, with the URL path naming
// the client) and UDP datagrams (QEMU's -netdev dgram: one frame per datagram, clients in arrival order).
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DropCounter, Inlet, Mac, Nic, Switch } from 'macslot';
import { serveSwitch, type ListenSpec, type ServedSwitch } from 'macslot/node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamPeer, type StreamPeer } from './support/peer.js';

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';

function frame(dst: string, src: string, tag: number): Uint8Array {
  const f = new Uint8Array(64);
  Mac.parse(dst).writeTo(f, 0);
  Mac.parse(src).writeTo(f, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  f[20] = tag;
  return f;
}

/** Frames a peer received, by tag, with a way to wait until some arrive. */
class Inbox {
  readonly tags: number[] = [];
  #wake: (() => void) | undefined;
  push(bytes: Uint8Array): void {
    this.tags.push(bytes[20]!);
    this.#wake?.();
  }
  async until(count: number, ms = 3000): Promise<number[]> {
    const end = Date.now() + ms;
    while (this.tags.length < count && Date.now() < end) await new Promise<void>((r) => ((this.#wake = r), setTimeout(r, 20)));
    return this.tags;
  }
}

let served: ServedSwitch | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await served?.close();
  served = undefined;
});

async function serve(
  listen: readonly ListenSpec[],
  clients = [
    { name: 'vm-a', address: A },
    { name: 'vm-b', address: B },
    { name: 'vm-c', address: C },
  ],
) {
  const nic = new Nic({ primary: '02:6d:73:00:00:01', unicastEntries: 8 });
  const sw = await Switch.create({ nic, clients, allocation: 'none' });
  served = await serveSwitch(sw, { listen });
  return { sw, address: served.addresses[0]! };
}

async function connectWs(url: string): Promise<{ ws: WebSocket; inbox: Inbox }> {
  const ws = new WebSocket(url);
  ws.binaryType = 'nodebuffer';
  const inbox = new Inbox();
  ws.on('message', (data: Buffer) => inbox.push(new Uint8Array(data)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  closers.push(() => ws.terminate());
  return { ws, inbox };
}

describe('WebSocket', () => {
  it('gives each URL path its client, delivers unicast to its owner only and broadcast to all but the sender', async () => {
    const { sw, address } = await serve([{ kind: 'ws', host: '127.0.0.1', port: 0 }]);
    expect(address).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const b = await connectWs(`${address}/vm-b`);
    const a = await connectWs(`${address}/vm-a`);
    const c = await connectWs(`${address}/vm-c`);
    while (sw.ports().length < 3) await new Promise((r) => setTimeout(r, 5));
    expect(
      sw
        .ports()
        .map((p) => [p.client.name, p.mac?.toString()])
        .sort(),
    ).toEqual([
      ['vm-a', A],
      ['vm-b', B],
      ['vm-c', C],
    ]);

    a.ws.send(frame(B, A, 1)); // unicast to vm-b
    a.ws.send(frame('ff:ff:ff:ff:ff:ff', A, 2)); // broadcast
    a.ws.send(frame(C, B, 3)); // spoofed: vm-a sending as vm-b
    b.ws.send(frame('02:99:00:00:00:01', B, 4)); // unknown unicast: nobody
    c.ws.send(frame(A, C, 5)); // unicast to vm-a
    expect(await b.inbox.until(2)).toEqual([1, 2]);
    expect(await c.inbox.until(1)).toEqual([2]);
    expect(await a.inbox.until(1)).toEqual([5]);
    // Nothing else arrives late: not the spoofed frame, not an echo of the broadcast. Each sender's frames are switched
    // in order and each peer's queue is first in, first out, so a last frame from the same sender to each peer closes the
    // window: anything the earlier frames were to deliver there would have come before it.
    a.ws.send(frame(B, A, 6));
    a.ws.send(frame(C, A, 7));
    b.ws.send(frame(A, B, 8));
    expect(await b.inbox.until(3)).toEqual([1, 2, 6]);
    expect(await c.inbox.until(2)).toEqual([2, 7]);
    expect(await a.inbox.until(2)).toEqual([5, 8]);
    expect([a.inbox.tags, b.inbox.tags, c.inbox.tags]).toEqual([
      [5, 8],
      [1, 2, 6],
      [2, 7],
    ]);
    const counters = sw.counters();
    expect(counters.spoofed).toBe(1);
  });
});

describe('named clients', () => {
  async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  it('a client pinned to a UNIX listener goes to no other listener, even to a connection that arrives first', async () => {
    const d = mkdtempSync(join(tmpdir(), 'macslot-pin-'));
    closers.push(() => rmSync(d, { recursive: true, force: true }));
    const nic = new Nic({ primary: '02:6d:73:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'vm-a', address: A },
        { name: 'vm-b', address: B },
      ],
      allocation: 'none',
    });
    served = await serveSwitch(sw, {
      listen: [
        { kind: 'unix', path: join(d, 'a.sock'), name: 'vm-a' },
        { kind: 'unix', path: join(d, 'b.sock') },
        { kind: 'ws', host: '127.0.0.1', port: 0 },
      ],
    });
    // A connection on the anonymous listener comes first: it gets vm-b, never vm-a.
    const early = await streamPeer(join(d, 'b.sock'));
    closers.push(() => early.socket.destroy());
    await until(() => sw.ports().length === 1, 'the first port');
    expect(sw.ports()[0]!.client.name).toBe('vm-b');
    // A WebSocket path naming vm-a is refused.
    await connectWs(`${served.addresses[2]}/vm-a`);
    await until(() => sw.counters().refused.NOT_PERMITTED === 1, 'the WebSocket refusal');
    const pinned = await streamPeer(join(d, 'a.sock'));
    closers.push(() => pinned.socket.destroy());
    await until(() => sw.ports().length === 2, 'the pinned port');
    expect(sw.ports().map((p) => [p.client.name, p.mac?.toString()])).toEqual([
      ['vm-b', B],
      ['vm-a', A],
    ]);
  });

  /** What a WebSocket peer puts after the client's path, and whether it gets the client. */
  const WS_SECRETS = [
    { name: 'no secret', query: '', ok: false },
    { name: 'a wrong secret', query: '?secret=guess-guess', ok: false },
    { name: 'the secret, percent-encoded', query: '?secret=s3cret%20vm-c', ok: true },
  ];

  it.each(WS_SECRETS)('a WebSocket path protected by a secret, with $name', async ({ query, ok }) => {
    const nic = new Nic({ primary: '02:6d:73:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [{ name: 'vm-c', address: C }],
      allocation: 'none',
      secrets: { 'vm-c': 's3cret vm-c' },
    });
    served = await serveSwitch(sw, { listen: [{ kind: 'ws', host: '127.0.0.1', port: 0 }] });
    await connectWs(`${served.addresses[0]}/vm-c${query}`);
    await until(() => sw.ports().length === 1 || (sw.counters().refused.NOT_PERMITTED ?? 0) === 1, 'the switch’s decision');
    expect(sw.ports().map((p) => p.client.name)).toEqual(ok ? ['vm-c'] : []);
  });
});

describe('storm control over real sockets', () => {
  /** c floods broadcast while b is not reading; then a sends b unicast. Returns how many of a's frames reach b. */
  async function flood(stormControl: { rate: number; burst: number } | false): Promise<{ unicast: number; storm: number }> {
    const d = mkdtempSync(join(tmpdir(), 'macslot-storm-'));
    closers.push(() => rmSync(d, { recursive: true, force: true }));
    const nic = new Nic({ primary: '02:6d:73:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'vm-a', address: A },
        { name: 'vm-b', address: B },
        { name: 'vm-c', address: C },
      ],
      allocation: 'none',
      stormControl,
    });
    const sock = join(d, 's.sock');
    served = await serveSwitch(sw, { listen: [{ kind: 'unix', path: sock }] });
    const peers = [];
    for (const name of ['vm-a', 'vm-b', 'vm-c']) {
      const p = await streamPeer(sock);
      closers.push(() => p.socket.destroy());
      peers.push(p);
      const deadline = Date.now() + 10_000;
      while (!sw.ports().some((q) => q.client.name === name)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${name}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const [a, b, c] = peers as [StreamPeer, StreamPeer, StreamPeer];
    b.socket.pause();
    const N = 20_000;
    const big = (dst: string, src: string, tag: number): Uint8Array => {
      const f = new Uint8Array(300);
      f.set(frame(dst, src, tag).subarray(0, 21));
      return f;
    };
    for (let i = 0; i < N; i++) c.send(big('ff:ff:ff:ff:ff:ff', C, 0));
    const counted = (name: string, k: 'rx' | 'storm'): number => {
      const p = sw.counters().ports.find((q) => q.client === name)!;
      return k === 'rx' ? p.rx.frames : (p.drops.storm ?? 0);
    };
    const wait = async (cond: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await wait(() => counted('vm-c', 'rx') + counted('vm-c', 'storm') === N, 'the flood to be switched');
    for (let i = 1; i <= 100; i++) a.send(frame(B, A, i));
    await wait(() => counted('vm-a', 'rx') === 100, "a's unicast to be switched");
    const storm = counted('vm-c', 'storm');
    b.socket.resume();
    // b reads everything the switch kept for it: the broadcasts that passed, and whatever of a's unicast fitted.
    const kept = sw.counters().ports.find((q) => q.client === 'vm-b')!.tx.frames;
    await wait(() => b.got.length >= kept, 'b to read its queue');
    await new Promise((r) => setImmediate(r));
    return { unicast: b.got.filter((f) => f.length === 64 && f[20]! > 0).length, storm };
  }

  it("one port's broadcast flood does not cut another pair's unicast", async () => {
    const open = await flood(false);
    expect(open.storm).toBe(0);
    expect(open.unicast).toBeLessThan(100);
    await served?.close();
    served = undefined;
    const limited = await flood({ rate: 100, burst: 500 });
    expect(limited.storm).toBeGreaterThan(15_000);
    expect(limited.unicast).toBe(100);
  }, 90_000);
});

describe('UDP datagrams (QEMU -netdev dgram)', () => {
  it('takes clients in arrival order and filters between them', async () => {
    const { sw, address } = await serve([{ kind: 'udp', host: '127.0.0.1', port: 0 }]);
    const port = Number(/:(\d+)$/.exec(address)![1]);
    expect(port).toBeGreaterThan(0);
    const peers: { sock: Socket; inbox: Inbox }[] = [];
    for (let i = 0; i < 2; i++) {
      const sock = createSocket('udp4');
      const inbox = new Inbox();
      sock.on('message', (m) => inbox.push(new Uint8Array(m)));
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      closers.push(() => sock.close());
      peers.push({ sock, inbox });
    }
    const send = (i: number, f: Uint8Array): Promise<void> => new Promise((r) => peers[i]!.sock.send(f, port, '127.0.0.1', () => r()));
    // The first datagram of each peer makes it a client: vm-a first, then vm-b.
    await send(0, frame('ff:ff:ff:ff:ff:ff', A, 1));
    while (sw.ports().length < 1) await new Promise((r) => setTimeout(r, 5));
    await send(1, frame('ff:ff:ff:ff:ff:ff', B, 2));
    while (sw.ports().length < 2) await new Promise((r) => setTimeout(r, 5));
    expect(sw.ports().map((p) => p.client.name)).toEqual(['vm-a', 'vm-b']);
    await send(0, frame(B, A, 3));
    await send(1, frame(A, B, 4));
    await send(1, frame(C, B, 5)); // vm-c is not connected: dropped
    expect(await peers[0]!.inbox.until(2)).toEqual([2, 4]);
    expect(await peers[1]!.inbox.until(1)).toEqual([3]);
    // Nothing arrives late (the frame to vm-c above, an echo): a last frame from each sender closes the window.
    await send(1, frame(A, B, 6));
    await send(0, frame(B, A, 7));
    expect(await peers[0]!.inbox.until(3)).toEqual([2, 4, 6]);
    expect(await peers[1]!.inbox.until(2)).toEqual([3, 7]);
    expect([peers[0]!.inbox.tags, peers[1]!.inbox.tags]).toEqual([
      [2, 4, 6],
      [3, 7],
    ]);
  });
});

describe('Inlet', () => {
  it('holds frames that arrive before a receiver as copies, in order, and counts those beyond its limit', () => {
    const drops = new DropCounter('test');
    const inlet = new Inlet(drops, 2);
    const buf = new Uint8Array([1]);
    inlet.push(buf);
    buf[0] = 2; // the producer reuses its buffer
    inlet.push(buf);
    inlet.push(buf);
    const got: number[] = [];
    inlet.set((f) => got.push(f[0]!));
    expect(got).toEqual([1, 2]);
    expect(drops.snapshot()).toEqual({ 'no-receiver': 1 });
    inlet.push(Uint8Array.of(9));
    expect(got).toEqual([1, 2, 9]);
    inlet.clear();
    inlet.push(Uint8Array.of(7));
    expect(got).toEqual([1, 2, 9]);
  });
});
