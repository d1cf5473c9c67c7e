// The switch and its ports in one process: bridge-mode delivery, anti-spoof, leases, the tap, the tracer and the fault injector.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STORM_CONTROL,
  DataPlane,
  Nic,
  PcapngTap,
  Switch,
  bindClient,
  bindUplink,
  faultPort,
  insertTag,
  isMacslotError,
  memoryPortPair,
  parseVlan,
  stripTag,
  tapPort,
  tracePort,
  type FramePort,
} from 'macslot';
import { macText, tagOf, tagged } from './support/frames.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const GROUP = '01:00:5e:00:00:fb';

/** A peer end: every frame it receives, copied. */
function peer(port: FramePort): Uint8Array[] {
  const got: Uint8Array[] = [];
  port.onFrame((f) => got.push(f.slice()));
  return got;
}

async function threePorts(opts: { leaseTtlMs?: number } = {}) {
  const nic = new Nic({ primary: '02:00:00:00:00:01' });
  const sw = await Switch.create({
    nic,
    clients: [
      { name: 'a', address: A, multicast: [GROUP] },
      { name: 'b', address: B },
      { name: 'c', address: C, multicast: [GROUP] },
    ],
    ...opts,
  });
  const ends = await Promise.all(
    ['a', 'b', 'c'].map(async (name) => {
      const [near, far] = memoryPortPair(`mem:${name}`, `peer:${name}`);
      const sp = await sw.attach(near);
      return { sp, far, got: peer(far) };
    }),
  );
  const [up, upFar] = memoryPortPair('mem:uplink', 'peer:uplink');
  sw.attachUplink(up);
  const upGot = peer(upFar);
  return { nic, sw, ends, upFar, upGot };
}

describe('Switch in bridge mode', () => {
  it('hands out configured clients in arrival order, with their MACs', async () => {
    const { sw, ends } = await threePorts();
    expect(ends.map((e) => [e.sp.client.name, e.sp.mac?.toString()])).toEqual([
      ['a', A],
      ['b', B],
      ['c', C],
    ]);
    await sw.close();
  });

  it('delivers unicast only to its owner, and keeps local unicast off the uplink', async () => {
    const { sw, ends, upGot } = await threePorts();
    const [a, b, c] = ends;
    a!.far.send(tagged(B, A, 1));
    expect(b!.got.map(tagOf)).toEqual([1]);
    expect(c!.got).toHaveLength(0);
    expect(a!.got).toHaveLength(0);
    expect(upGot).toHaveLength(0);
    // Unknown unicast leaves through the wire only.
    a!.far.send(tagged('02:99:00:00:00:01', A, 2));
    expect(upGot.map(tagOf)).toEqual([2]);
    expect(b!.got).toHaveLength(1);
    const counters = sw.counters();
    expect(counters.ports[0]!.rx.frames).toBe(2);
    expect(counters.ports[1]!.tx.frames).toBe(1);
    expect(counters.ports[2]!.tx.frames).toBe(0);
    await sw.close();
  });

  it('floods broadcast to every other client and the uplink, never back to the sender', async () => {
    const { sw, ends, upGot } = await threePorts();
    const [a, b, c] = ends;
    b!.far.send(tagged('ff:ff:ff:ff:ff:ff', B, 3));
    expect(a!.got.map(tagOf)).toEqual([3]);
    expect(c!.got.map(tagOf)).toEqual([3]);
    expect(b!.got).toHaveLength(0);
    expect(upGot.map(tagOf)).toEqual([3]);
    await sw.close();
  });

  it('delivers multicast only to clients that joined the group', async () => {
    const { sw, ends, upFar } = await threePorts();
    const [a, b, c] = ends;
    upFar.send(tagged(GROUP, '02:77:00:00:00:01', 4));
    upFar.send(tagged('01:00:5e:00:00:01', '02:77:00:00:00:01', 5));
    expect(a!.got.map(tagOf)).toEqual([4]);
    expect(c!.got.map(tagOf)).toEqual([4]);
    expect(b!.got).toHaveLength(0);
    expect(sw.counters().uplink!.drops['filter-multicast'] ?? sw.counters().uplink!.drops['no-owner']).toBe(1);
    await sw.close();
  });

  it('drops and counts spoofed frames; a source MAC never moves a MAC to another port', async () => {
    const logs: string[] = [];
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'a', address: A },
        { name: 'b', address: B },
      ],
      log: (l) => logs.push(l),
    });
    const [na, fa] = memoryPortPair();
    const [nb, fb] = memoryPortPair();
    await sw.attach(na);
    await sw.attach(nb);
    const gotA = peer(fa);
    const gotB = peer(fb);
    // b claims a's MAC as its source.
    fb.send(tagged('ff:ff:ff:ff:ff:ff', A, 6));
    expect(gotA).toHaveLength(0);
    // Unicast to A still reaches a's port, not b's.
    fb.send(tagged(A, B, 7));
    expect(gotA.map(tagOf)).toEqual([7]);
    expect(gotB).toHaveLength(0);
    const c = sw.counters();
    expect(c.ports[1]!.drops.spoofed).toBe(1);
    expect(c.spoofed).toBe(1);
    expect(logs.some((l) => l.includes('dropped (spoofed)'))).toBe(true);
    await sw.close();
  });

  it('drops runts and oversized frames by reason without affecting others', async () => {
    const { sw, ends } = await threePorts();
    const [a, b] = ends;
    a!.far.send(new Uint8Array(10));
    a!.far.send(new Uint8Array(4000));
    a!.far.send(tagged(B, A, 8));
    expect(b!.got.map(tagOf)).toEqual([8]);
    expect(sw.counters().ports[0]!.drops).toMatchObject({ runt: 1, oversize: 1 });
    await sw.close();
  });

  it('releases a disconnected client at once by default, and keeps it under a lease when configured', async () => {
    const plain = await threePorts();
    const before = plain.nic.clients().length;
    plain.ends[0]!.far.close();
    await plain.sw.settled();
    expect(plain.nic.clients().length).toBe(before - 1);
    expect(plain.nic.client('a')).toBeUndefined();
    await plain.sw.close();

    const leased = await threePorts({ leaseTtlMs: 150 });
    leased.ends[1]!.far.close();
    await leased.sw.settled();
    expect(leased.nic.client('b')?.open).toBe(true);
    expect(leased.sw.counters().leased).toEqual(['b']);
    // The next anonymous connection takes b back, with the same MAC.
    const [n, f] = memoryPortPair();
    const again = await leased.sw.attach(n);
    expect([again.client.name, again.mac?.toString()]).toEqual(['b', B]);
    // The lease lapses by itself: b's client closes (an event, whenever the 150 ms timer gets to run).
    const lapsed = new Promise<void>((resolve) => {
      const off = leased.nic.on((e) => e.type === 'client-closed' && e.client === 'b' && (off(), resolve()));
    });
    f.close();
    await lapsed;
    await leased.sw.settled();
    expect(leased.nic.client('b')).toBeUndefined();
    await leased.sw.close();
  });

  it('refuses a connection when no client can be handed out, with a counted refusal', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({ nic, clients: [{ name: 'only', address: A }], allocation: 'none' });
    await sw.attach(memoryPortPair()[0]);
    const [extra, extraFar] = memoryPortPair();
    let closed = false;
    extraFar.onClose(() => (closed = true));
    await expect(sw.attach(extra)).rejects.toSatisfy((e: unknown) => isMacslotError(e, 'TOO_MANY_CLIENTS'));
    expect(closed).toBe(true);
    expect(sw.counters().refused).toEqual({ TOO_MANY_CLIENTS: 1 });
    await expect(sw.attach(memoryPortPair()[0], { name: 'only' })).rejects.toSatisfy((e: unknown) => isMacslotError(e, 'NAME_IN_USE'));
    await sw.close();
  });

  it('allocates random MACs through the manager beyond the listed clients', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01', factory: { base: '00:11:22:00:00:01', count: 1 } });
    const sw = await Switch.create({ nic, allocation: 'auto' });
    const p1 = await sw.attach(memoryPortPair()[0]);
    const p2 = await sw.attach(memoryPortPair()[0]);
    // auto: the factory slot first, then a random locally administered MAC.
    expect(p1.mac?.toString()).toBe('00:11:22:00:00:01');
    expect(p2.mac?.isLocal).toBe(true);
    expect(p2.mac?.equals(p1.mac!)).toBe(false);
    await sw.close();
    expect(nic.clients().map((c) => c.name)).toEqual(['primary']);
  });

  it('learn: a port takes the MAC its guest sends from, exclusively, and gives it back on disconnect', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({ nic, allocation: 'learn' });
    const [n1, f1] = memoryPortPair();
    const p1 = await sw.attach(n1);
    const got1 = peer(f1);
    const [up, upFar] = memoryPortPair('mem:uplink', 'peer:uplink');
    sw.attachUplink(up);
    const upGot = peer(upFar);
    expect(p1.mac).toBeUndefined();
    // A multicast or zero source teaches nothing; the frame is dropped for want of an address.
    f1.send(tagged('ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', 1));
    f1.send(tagged('ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00', 2));
    expect(p1.mac).toBeUndefined();
    // The first unicast source becomes the port's MAC, and that frame goes on.
    f1.send(tagged('ff:ff:ff:ff:ff:ff', A, 3));
    expect(p1.mac?.toString()).toBe(A);
    expect(upGot.map(tagOf)).toEqual([3]);
    upFar.send(tagged(A, '02:99:00:00:00:01', 4));
    expect(got1.map(tagOf)).toEqual([4]);
    // Another source from the same guest is now a spoof, not a second MAC.
    f1.send(tagged('ff:ff:ff:ff:ff:ff', B, 5));
    expect(upGot.map(tagOf)).toEqual([3]);
    // A second guest sending from A does not get it while the first holds it.
    const [n2, f2] = memoryPortPair();
    const p2 = await sw.attach(n2);
    f2.send(tagged('ff:ff:ff:ff:ff:ff', A, 6));
    f2.send(tagged('ff:ff:ff:ff:ff:ff', A, 7));
    expect(p2.mac).toBeUndefined();
    expect(upGot.map(tagOf)).toEqual([3]);
    expect(got1).toHaveLength(1);
    expect(sw.counters().ports[1]!.drops['mac-in-use']).toBe(2);
    expect(sw.counters().ports[0]!.drops).toMatchObject({ 'no-address': 2, spoofed: 1 });
    // Once the first disconnects, A is free and the second takes it with its next frame.
    f1.close();
    await sw.settled();
    f2.send(tagged('ff:ff:ff:ff:ff:ff', A, 8));
    expect(p2.mac?.toString()).toBe(A);
    expect(upGot.map(tagOf)).toEqual([3, 8]);
    await sw.close();
    expect(nic.clients().map((c) => c.name)).toEqual(['primary']);
  });

  it('learn as a listed client: a named client takes its MAC from its guest, others keep theirs', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'fixed', address: B },
        { name: 'guest', address: 'learn' },
      ],
      allocation: 'none',
    });
    const fixed = await sw.attach(memoryPortPair()[0]);
    const [n, f] = memoryPortPair();
    const guest = await sw.attach(n);
    expect([fixed.mac?.toString(), guest.client.name, guest.mac]).toEqual([B, 'guest', undefined]);
    // B is the fixed client's: the guest cannot learn it.
    f.send(tagged('ff:ff:ff:ff:ff:ff', B, 1));
    expect(guest.mac).toBeUndefined();
    f.send(tagged('ff:ff:ff:ff:ff:ff', C, 2));
    expect(guest.mac?.toString()).toBe(C);
    await sw.close();
  });

  it('rejects bad options with INVALID_ARGUMENT naming the value', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    await expect(Switch.create({ nic, leaseTtlMs: -1 })).rejects.toThrow(/leaseTtlMs.*-1/);
    await expect(Switch.create({ nic, clients: [{ name: 'x', address: 'bogus' }] })).rejects.toThrow(/"bogus"/);
    await expect(Switch.create({ nic, clients: [{ name: 'x' }, { name: 'x' }] })).rejects.toThrow(/"x" appears twice/);
    await expect(Switch.create({ nic, allocation: 'learning' as never })).rejects.toThrow(
      /allocation must be random, factory, auto, learn or none, got "learning"/,
    );
  });
});

/** A port whose peer reads only when told: at most `capacity` frames wait, beyond that `send` refuses (a full socket). */
class SlowReader implements FramePort {
  readonly name: string;
  readonly queue: Uint8Array[] = [];
  refused = 0;
  #receiver: ((f: Uint8Array) => void) | undefined;
  constructor(
    name: string,
    readonly capacity: number,
  ) {
    this.name = name;
  }
  send(frame: Uint8Array): boolean {
    if (this.queue.length >= this.capacity) {
      this.refused++;
      return false;
    }
    this.queue.push(frame.slice());
    return true;
  }
  onFrame(r: (f: Uint8Array) => void): void {
    this.#receiver = r;
  }
  onClose(): void {}
  close(): void {}
  drops(): Record<string, number> {
    return this.refused > 0 ? { backpressure: this.refused } : {};
  }
  /** The peer sends `frame` to the switch. */
  fromPeer(frame: Uint8Array): void {
    this.#receiver?.(frame);
  }
}

describe('Switch abuse resistance', () => {
  const ROUTER = '02:52:00:00:00:01';
  const FACTORY = '02:fa:00:00:00:01';
  const NEIGHBOUR = '02:4e:00:00:00:01';

  /** Cases where a `learn` guest sends first from a MAC that belongs to someone else. */
  const PROTECTED = [
    { name: "the NIC's primary MAC", mac: '02:00:00:00:00:01', why: /primary MAC/, reason: 'mac-in-use|mac-protected' },
    { name: 'a factory MAC of the NIC, unreserved', mac: FACTORY, why: /factory MAC/, reason: 'mac-protected' },
    { name: 'a MAC seen as a source from the uplink (the router)', mac: ROUTER, why: /seen from the uplink/, reason: 'mac-protected' },
    { name: 'a configured neighbour', mac: NEIGHBOUR, why: /neighbour/, reason: 'mac-protected' },
    {
      name: "a listed client's fixed MAC, while that client is not connected",
      mac: B,
      why: /reserved for client "fixed"/,
      reason: 'mac-protected',
    },
  ] as const;

  it.each(PROTECTED)('learn never takes $name: the frame is a counted, logged drop', async ({ mac, why, reason }) => {
    const logs: string[] = [];
    const nic = new Nic({ primary: '02:00:00:00:00:01', factory: [FACTORY] });
    const sw = await Switch.create({
      nic,
      allocation: 'learn',
      clients: [{ name: 'fixed', address: B }],
      neighbours: [NEIGHBOUR],
      log: (l) => logs.push(l),
    });
    const [up, upFar] = memoryPortPair('mem:uplink', 'peer:uplink');
    sw.attachUplink(up);
    const upGot = peer(upFar);
    // The router speaks first, as it does on a real network (an advertisement, an ARP).
    upFar.send(tagged('ff:ff:ff:ff:ff:ff', ROUTER, 1));
    // "fixed" is listed, so the first connection gets it; the guest is the second.
    await sw.attach(memoryPortPair()[0]);
    const [n, f] = memoryPortPair('mem:guest', 'peer:guest');
    const guest = await sw.attach(n);
    const guestGot = peer(f);
    f.send(tagged('ff:ff:ff:ff:ff:ff', mac, 2));
    f.send(tagged('ff:ff:ff:ff:ff:ff', mac, 3));
    expect(guest.mac).toBeUndefined();
    expect(upGot).toHaveLength(0);
    const drops = sw.counters().ports.find((p) => p.client === guest.client.name)!.drops;
    const counted = Object.entries(drops).filter(([k]) => new RegExp(`^(${reason})$`).test(k));
    expect(counted.reduce((n, [, v]) => n + v, 0)).toBe(2);
    expect(logs.filter((l) => l.includes(`refused to learn ${mac}`))).toHaveLength(1);
    if (reason === 'mac-protected') expect(logs.find((l) => l.includes(`refused to learn ${mac}`))).toMatch(why);
    // Traffic to the protected MAC still goes where it belongs, never to the guest.
    upFar.send(tagged(mac, ROUTER, 4));
    expect(guestGot.map(tagOf)).not.toContain(4);
    // The guest's own MAC is learnt, and logged.
    f.send(tagged('ff:ff:ff:ff:ff:ff', C, 5));
    expect(guest.mac?.toString()).toBe(C);
    expect(logs.some((l) => l === `mem:guest: learnt ${C} for client ${guest.client.name}`)).toBe(true);
    await sw.close();
  });

  it("learn: a guest's own MAC echoed back by the uplink (a hub on the wire side) stays learnable after it reconnects", async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({ nic, allocation: 'learn' });
    const [up, upFar] = memoryPortPair('mem:uplink', 'peer:uplink');
    sw.attachUplink(up);
    const [n1, f1] = memoryPortPair();
    const p1 = await sw.attach(n1);
    f1.send(tagged('ff:ff:ff:ff:ff:ff', A, 1));
    expect(p1.mac?.toString()).toBe(A);
    upFar.send(tagged('ff:ff:ff:ff:ff:ff', A, 1));
    f1.close();
    await sw.settled();
    const [n2, f2] = memoryPortPair();
    const p2 = await sw.attach(n2);
    f2.send(tagged('ff:ff:ff:ff:ff:ff', A, 2));
    expect(p2.mac?.toString()).toBe(A);
    await sw.close();
  });

  it("the switch's own manager does not hand a neighbour's MAC to a client either", async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({ nic, clients: [{ name: 'x', address: NEIGHBOUR }], neighbours: [NEIGHBOUR] });
    await expect(sw.attach(memoryPortPair()[0])).rejects.toMatchObject({ code: 'MAC_IN_USE' });
    expect(sw.counters().refused).toEqual({ MAC_IN_USE: 1 });
    await sw.close();
  });

  it('learn refusals are logged for a bounded number of distinct sources per port, and all counted', async () => {
    const logs: string[] = [];
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const neighbours = Array.from({ length: 40 }, (_, i) => `02:4e:00:00:01:${i.toString(16).padStart(2, '0')}`);
    const sw = await Switch.create({ nic, allocation: 'learn', neighbours, log: (l) => logs.push(l) });
    const [n, f] = memoryPortPair();
    await sw.attach(n);
    for (const m of neighbours) f.send(tagged('ff:ff:ff:ff:ff:ff', m, 1));
    expect(sw.counters().ports[0]!.drops['mac-protected']).toBe(40);
    const lines = logs.filter((l) => l.includes('refused to learn'));
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.length).toBeLessThan(40);
    expect(lines.at(-1)).toMatch(/counted, not logged/);
    await sw.close();
  });

  it('a client pinned to a listener is never handed to a connection from elsewhere, even one that arrives first', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'vm-a', address: A },
        { name: 'vm-b', address: B },
      ],
      allocation: 'none',
    });
    sw.pinName('vm-a', 'unix:/a.sock');
    expect(() => sw.pinName('vm-a', 'unix:/other.sock')).toThrow(/already pinned/);
    // An anonymous connection from another listener arrives first: it gets vm-b, not vm-a.
    const first = await sw.attach(memoryPortPair()[0], { listener: 'tcp:0.0.0.0:1' });
    expect(first.client.name).toBe('vm-b');
    // Asking for vm-a by name from another listener is refused.
    await expect(sw.attach(memoryPortPair()[0], { name: 'vm-a', listener: 'ws://0.0.0.0:1' })).rejects.toMatchObject({
      code: 'NOT_PERMITTED',
    });
    await expect(sw.attach(memoryPortPair()[0], { name: 'vm-a' })).rejects.toMatchObject({ code: 'NOT_PERMITTED' });
    // No anonymous connection gets it either.
    await expect(sw.attach(memoryPortPair()[0])).rejects.toMatchObject({ code: 'TOO_MANY_CLIENTS' });
    const pinned = await sw.attach(memoryPortPair()[0], { name: 'vm-a', listener: 'unix:/a.sock' });
    expect([pinned.client.name, pinned.mac?.toString()]).toEqual(['vm-a', A]);
    expect(sw.counters().refused).toEqual({ NOT_PERMITTED: 2, TOO_MANY_CLIENTS: 1 });
    await sw.close();
  });

  /** What a peer presents for a secret-protected name. */
  const SECRETS = [
    { name: 'no secret', secret: undefined, ok: false },
    { name: 'an empty secret', secret: '', ok: false },
    { name: 'a wrong secret of the same length', secret: 's3cret-vm-A', ok: false },
    { name: 'a prefix of the secret', secret: 's3cret', ok: false },
    { name: 'the secret and more', secret: 's3cret-vm-aa', ok: false },
    { name: 'the secret', secret: 's3cret-vm-a', ok: true },
  ] as const;

  it.each(SECRETS)('a name with a secret: $name', async ({ secret, ok }) => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({ nic, clients: [{ name: 'vm-a', address: A }], secrets: { 'vm-a': 's3cret-vm-a' } });
    const attempt = sw.attach(memoryPortPair()[0], { name: 'vm-a', ...(secret === undefined ? {} : { secret }) });
    if (ok) expect((await attempt).mac?.toString()).toBe(A);
    else {
      await expect(attempt).rejects.toMatchObject({ code: 'NOT_PERMITTED' });
      // Refused before the client was taken: nothing was set up for it.
      expect(nic.client('vm-a')).toBeUndefined();
    }
    // A secret-protected client is never handed out in arrival order.
    const anon = await sw.attach(memoryPortPair()[0]);
    expect(anon.client.name).not.toBe('vm-a');
    await sw.close();
  });

  it('rejects secrets that are too short', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    await expect(Switch.create({ nic, secrets: { x: 'short' } })).rejects.toThrow(/secret of "x" must be a string of 8 to 1024/);
  });

  it("storm control: one port's broadcast flood does not cut another pair's unicast", async () => {
    const run = async (stormControl: { rate: number; burst: number } | false) => {
      const nic = new Nic({ primary: '02:00:00:00:00:01' });
      const sw = await Switch.create({
        nic,
        clients: [
          { name: 'a', address: A },
          { name: 'b', address: B },
          { name: 'c', address: C },
        ],
        stormControl,
      });
      const ports = [new SlowReader('a', 512), new SlowReader('b', 512), new SlowReader('c', 512)];
      for (const p of ports) await sw.attach(p);
      const [a, b, c] = ports;
      // c floods broadcast and multicast while a sends b 100 unicast frames; b reads only at the end.
      for (let i = 0; i < 4000; i++) {
        c!.fromPeer(tagged(i % 2 === 0 ? 'ff:ff:ff:ff:ff:ff' : GROUP, C, 0));
        if (i % 40 === 0) a!.fromPeer(tagged(B, A, 1 + i / 40));
      }
      const unicast = b!.queue.filter((f) => tagOf(f)! > 0).length;
      const storm = sw.counters().ports.find((p) => p.client === 'c')!.drops.storm ?? 0;
      await sw.close();
      return { unicast, storm };
    };
    // Without a limit, the flood fills b's queue and most of a's unicast is lost.
    const open = await run(false);
    expect(open.unicast).toBeLessThan(100);
    expect(open.storm).toBe(0);
    // With one, the flood is cut at c's port and every unicast frame reaches b.
    const limited = await run({ rate: 100, burst: 100 });
    expect(limited.unicast).toBe(100);
    expect(limited.storm).toBeGreaterThan(3000);
  });

  it('storm control is on by default, never limits unicast, and refuses a bad rate', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'a', address: A },
        { name: 'b', address: B },
      ],
    });
    expect(sw.stormControl).toEqual(DEFAULT_STORM_CONTROL);
    const [na, fa] = memoryPortPair();
    await sw.attach(na);
    const [nb, fb] = memoryPortPair();
    await sw.attach(nb);
    const gotB = peer(fb);
    const n = DEFAULT_STORM_CONTROL.burst * 3;
    for (let i = 0; i < n; i++) fa.send(tagged('ff:ff:ff:ff:ff:ff', A, 1));
    for (let i = 0; i < n; i++) fa.send(tagged(B, A, 2));
    const drops = sw.counters().ports[0]!.drops;
    expect(drops.storm).toBeGreaterThan(0);
    expect(gotB.filter((f) => tagOf(f) === 2)).toHaveLength(n);
    expect(gotB.filter((f) => tagOf(f) === 1).length + drops.storm!).toBe(n);
    await sw.close();
    await expect(Switch.create({ nic, stormControl: { rate: 0 } })).rejects.toThrow(/rate must be .* > 0, got 0/);
    await expect(Switch.create({ nic, stormControl: { rate: 10, burst: 0.5 } })).rejects.toThrow(/burst must be a number ≥ 1, got 0.5/);
  });

  it('counters give "mac": null for a port that has no MAC yet', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({ nic, allocation: 'learn' });
    const [n, f] = memoryPortPair();
    await sw.attach(n);
    expect(JSON.parse(JSON.stringify(sw.counters())).ports[0].mac).toBeNull();
    f.send(tagged('ff:ff:ff:ff:ff:ff', A, 1));
    expect(sw.counters().ports[0]!.mac).toBe(A);
    await sw.close();
  });

  it('antiSpoof false sends a foreign source as the port’s own MAC; a port never sends as another', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'a', address: A },
        { name: 'b', address: B },
      ],
      antiSpoof: false,
    });
    const [na, fa] = memoryPortPair();
    await sw.attach(na);
    const [nb, fb] = memoryPortPair();
    await sw.attach(nb);
    const gotA = peer(fa);
    fb.send(tagged(A, C, 1));
    fb.send(tagged(A, A, 2));
    expect(gotA.map(tagOf)).toEqual([1, 2]);
    expect(gotA.map((f) => macText(f, 6))).toEqual([B, B]);
    expect(sw.counters().ports[1]!.drops.spoofed ?? 0).toBe(0);
    await sw.close();
  });
});

describe('bindClient and bindUplink', () => {
  it('copies at the boundary: a producer reusing its buffer does not change delivered frames', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const dp = await DataPlane.create(nic);
    const a = nic.openClient('a');
    a.addressAdd(A);
    const b = nic.openClient('b');
    b.addressAdd(B);
    const got: Uint8Array[] = [];
    let rx: ((f: Uint8Array) => void) | undefined;
    // A producer that hands over a view of one buffer and rewrites it afterwards, like v86's NE2000.
    const shared = new Uint8Array(60);
    const producer: FramePort = { name: 'reuse', send: () => true, onFrame: (r) => (rx = r), onClose: () => {}, close: () => {} };
    const [nb, fb] = memoryPortPair();
    fb.onFrame((f) => got.push(f));
    bindClient(dp, a, producer);
    bindClient(dp, b, nb);
    shared.set(tagged(B, A, 11));
    rx!(shared);
    shared.set(tagged(B, A, 12));
    rx!(shared);
    expect(got.map(tagOf)).toEqual([11, 12]);
    expect(() => bindClient(dp, a, memoryPortPair()[0])).toThrow(/already bound/);
    expect(() => bindUplink(dp, memoryPortPair()[0])).not.toThrow();
    expect(() => bindUplink(dp, memoryPortPair()[0])).toThrow(/already has an uplink/);
    dp.close();
  });
});

describe('middleware', () => {
  it('the pcapng tap writes one interface per port and records both directions', async () => {
    const blocks: Uint8Array[] = [];
    const tap = new PcapngTap((b) => blocks.push(b), { clock: () => 1_700_000_000_123_456_800 });
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'a', address: A },
        { name: 'b', address: B },
      ],
    });
    const [na, fa] = memoryPortPair('a', 'fa');
    const [nb, fb] = memoryPortPair('b', 'fb');
    await sw.attach(tapPort(na, tap, 'vm-a'));
    await sw.attach(tapPort(nb, tap, 'vm-b'));
    peer(fb);
    fa.send(tagged(B, A, 21));
    const bytes = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
    let o = 0;
    for (const b of blocks) bytes.set(b, o), (o += b.length);
    const v = new DataView(bytes.buffer);
    const seen: { type: number; iface?: number; flags?: number; name?: string }[] = [];
    for (let p = 0; p < bytes.length; ) {
      const type = v.getUint32(p, true);
      const len = v.getUint32(p + 4, true);
      expect(v.getUint32(p + len - 4, true)).toBe(len);
      if (type === 1) seen.push({ type, name: new TextDecoder().decode(bytes.subarray(p + 20, p + 20 + v.getUint16(p + 18, true))) });
      if (type === 6) {
        const cap = v.getUint32(p + 20, true);
        seen.push({ type, iface: v.getUint32(p + 8, true), flags: v.getUint32(p + 28 + ((cap + 3) & ~3) + 4, true) });
        expect(v.getUint32(p + 12, true) * 2 ** 32 + v.getUint32(p + 16, true)).toBe(1_700_000_000_123_456_800);
      }
      p += len;
    }
    expect(seen).toEqual([
      { type: 1, name: 'vm-a' },
      { type: 1, name: 'vm-b' },
      { type: 6, iface: 0, flags: 1 },
      { type: 6, iface: 1, flags: 2 },
    ]);
    await sw.close();
  });

  it('a failed tap sink turns the tap off, not the switch: a later port is served unrecorded; the failure told once, counted', async () => {
    const written: Uint8Array[] = [];
    const full = new Error('ENOSPC: no space left on device, write');
    const errors: unknown[] = [];
    // Header and a's interface go through; the first frame's block fails, as on a full disk or a closed pipe.
    const tap = new PcapngTap(
      (b) => {
        if (written.length === 2) throw full;
        written.push(b);
      },
      { onError: (e) => errors.push(e) },
    );
    const sw = await Switch.create({
      nic: new Nic({ primary: '02:00:00:00:00:01' }),
      clients: [
        { name: 'a', address: A },
        { name: 'b', address: B },
      ],
    });
    const [na, fa] = memoryPortPair('a', 'fa');
    await sw.attach(tapPort(na, tap, 'vm-a'));
    fa.send(tagged(B, A, 1));
    expect([tap.failed, tap.error, errors, tap.frames, tap.lost]).toEqual([true, full, [full], 0, 1]);
    // The peer that connects after the failure: wrapped without a throw, attached, and switched to.
    const [nb, fb] = memoryPortPair('b', 'fb');
    const late = tapPort(nb, tap, 'vm-b');
    await sw.attach(late);
    const atB = peer(fb);
    const atA = peer(fa);
    fa.send(tagged(B, A, 2));
    fb.send(tagged(A, B, 3));
    expect([atB.map(tagOf), atA.map(tagOf)]).toEqual([[2], [3]]);
    expect(sw.counters().ports.map((p) => p.client)).toEqual(['a', 'b']);
    // Told once, counted, nothing more written.
    expect([errors.length, tap.lost, written.length]).toEqual([1, 5, 2]);
    // close() is the owner's act: only then does a new interface throw.
    tap.close();
    expect(() => tapPort(memoryPortPair()[0], tap)).toThrow(expect.objectContaining({ code: 'PORT_CLOSED' }));
    await sw.close();
  });

  it('the tracer describes each frame in each direction', () => {
    const lines: string[] = [];
    const [n, f] = memoryPortPair('n', 'f');
    const t = tracePort(n, (l) => lines.push(l));
    t.onFrame(() => {});
    f.onFrame(() => {});
    f.send(tagged(B, A, 1));
    t.send(tagged(A, B, 2));
    expect(lines).toEqual([`n in  60 B ${B} < ${A} type 0x88b5`, `n out 60 B ${A} < ${B} type 0x88b5`]);
  });

  it('the fault injector is seeded: same seed, same faults; rates near their targets', () => {
    const run = (seed: number) => {
      const [n, f] = memoryPortPair();
      const got: number[] = [];
      const lens: number[] = [];
      f.onFrame((x) => {
        got.push(tagOf(x) ?? -1);
        lens.push(x.length);
      });
      const fp = faultPort(n, { drop: 0.1, duplicate: 0.1, reorder: 0.1, truncate: 0.1, seed, direction: 'send' });
      for (let i = 0; i < 2000; i++) fp.send(tagged(B, A, i));
      return { got, lens, faults: { ...fp.faults } };
    };
    const x = run(7);
    expect(run(7)).toEqual(x);
    expect(run(8).got).not.toEqual(x.got);
    for (const k of ['dropped', 'duplicated', 'reordered', 'truncated'] as const) expect(x.faults[k]).toBeGreaterThan(100);
    // Every truncated frame arrives (once, or twice when also duplicated); nothing else is short.
    const short = x.lens.filter((l) => l < 60).length;
    expect(short).toBeGreaterThanOrEqual(x.faults.truncated);
    expect(short).toBeLessThanOrEqual(2 * x.faults.truncated);
    expect(x.got.length).toBe(2000 - x.faults.dropped + x.faults.duplicated);
    expect(() => faultPort(n0(), { drop: 2 })).toThrow(/fault rate drop must be in 0..1, got 2/);
  });
});

function n0(): FramePort {
  return memoryPortPair()[0];
}

describe('Switch with VLANs', () => {
  const ALL = 'ff:ff:ff:ff:ff:ff';
  const vidOf = (f: Uint8Array): number | undefined => {
    const h = parseVlan(f);
    return h.kind === 'tagged' ? h.tags[0]!.vid : undefined;
  };

  it('keeps each VLAN to itself, tags frames for the uplink trunk and strips them for access ports', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'a', address: A, vlans: { access: 10 } },
        { name: 'b', address: B, vlans: { access: 20 } },
        // No VLANs given: VLAN 1, which the uplink does not carry.
        { name: 'c', address: C },
      ],
      vlans: { uplink: { trunk: [10, 20] } },
      allocation: 'none',
    });
    try {
      const ends = await Promise.all(
        ['a', 'b', 'c'].map(async (name) => {
          const [near, far] = memoryPortPair(`mem:${name}`, `peer:${name}`);
          await sw.attach(near);
          return { far, got: peer(far) };
        }),
      );
      const [a, b, c] = ends;
      const [up, upFar] = memoryPortPair('mem:uplink', 'peer:uplink');
      const uplink = sw.attachUplink(up);
      const upGot = peer(upFar);

      a!.far.send(tagged(ALL, A, 1));
      expect([b!.got.length, c!.got.length]).toEqual([0, 0]);
      expect(upGot.map((f) => [vidOf(f), tagOf(stripTag(f))])).toEqual([[10, 1]]);

      upFar.send(insertTag(tagged(ALL, '02:99:00:00:00:01', 2), 20));
      expect(b!.got.map((f) => [vidOf(f), tagOf(f)])).toEqual([[undefined, 2]]);
      expect([a!.got.length, c!.got.length]).toEqual([0, 0]);

      // VLAN 1 reaches no other port; unicast across VLANs does not reach its owner.
      c!.far.send(tagged(ALL, C, 3));
      a!.far.send(tagged(B, A, 4));
      expect([a!.got.length, b!.got.length, c!.got.length]).toEqual([0, 1, 0]);
      expect(upGot.map((f) => [vidOf(f), tagOf(stripTag(f))])).toEqual([
        [10, 1],
        [10, 4],
      ]);
      // The uplink counts what it does not carry, both ways: c's frame of VLAN 1 and an untagged frame (no native VLAN).
      upFar.send(tagged(ALL, '02:99:00:00:00:01', 5));
      expect(uplink.counters().drops.vlan).toBe(2);
    } finally {
      await sw.close();
    }
  });

  it('refuses a bad VLAN membership before building anything', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    await expect(Switch.create({ nic, vlans: { uplink: { access: 0 } } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      Switch.create({ nic, clients: [{ name: 'a', vlans: { trunk: [10], native: 20 } }], vlans: { uplink: { trunk: [10] } } }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
