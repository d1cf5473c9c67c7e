// The switch and its ports in one process: bridge-mode delivery, anti-spoof, leases, the tap, the tracer and the fault injector.
import { describe, expect, it } from 'vitest';
import { DataPlane, Nic, PcapngTap, Switch, bindClient, bindUplink, faultPort, isMacslotError, memoryPortPair, tapPort, tracePort, type FramePort } from 'macslot';
import { tagOf, tagged } from './support/frames.js';

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
    const sw = await Switch.create({ nic, clients: [{ name: 'a', address: A }, { name: 'b', address: B }], log: (l) => logs.push(l) });
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
    f.close();
    await new Promise((r) => setTimeout(r, 250));
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
    const sw = await Switch.create({ nic, clients: [{ name: 'fixed', address: B }, { name: 'guest', address: 'learn' }], allocation: 'none' });
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
    await expect(Switch.create({ nic, allocation: 'learning' as never })).rejects.toThrow(/allocation must be random, factory, auto, learn or none, got "learning"/);
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
    const tap = new PcapngTap((b) => blocks.push(b), { clock: () => 1_700_000_000_123_456_789 });
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const sw = await Switch.create({ nic, clients: [{ name: 'a', address: A }, { name: 'b', address: B }] });
    const [na, fa] = memoryPortPair('a', 'fa');
    const [nb, fb] = memoryPortPair('b', 'fb');
    await sw.attach(tapPort(na, tap, 'vm-a'));
    await sw.attach(tapPort(nb, tap, 'vm-b'));
    peer(fb);
    fa.send(tagged(B, A, 21));
    const bytes = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
    let o = 0;
    for (const b of blocks) (bytes.set(b, o), (o += b.length));
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
        expect(v.getUint32(p + 12, true) * 2 ** 32 + v.getUint32(p + 16, true)).toBe(1_700_000_000_123_456_789);
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
