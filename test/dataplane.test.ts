// The Wasm data plane's interfaces: memory kinds, live reprogramming, rings, fan-out at full capacity, transmit and lanes.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DataPlane, Mac, MacslotError, Nic, classifyFrame } from 'macslot';

const PRIMARY = '00:14:4f:00:00:00';
const frameTo = (dst: string, src = '02:99:00:00:00:01', length = 60): Uint8Array => {
  const f = new Uint8Array(length);
  Mac.parse(dst).writeTo(f, 0);
  Mac.parse(src).writeTo(f, 6);
  f[12] = 0x08;
  f[length - 1] = length & 0xff;
  return f;
};

async function setup(options: Parameters<typeof DataPlane.create>[1] = {}) {
  const nic = new Nic({ primary: PRIMARY, factory: { base: '00:14:4f:00:00:01', count: 4 }, maxClients: 8 });
  const dp = await DataPlane.create(nic, options);
  const a = nic.openClient('a');
  const b = nic.openClient('b');
  const ra = a.addressReserve();
  const rb = b.addressReserve();
  return { nic, dp, a, b, ra, rb };
}

describe('memory', () => {
  it.each([
    { name: 'shared memory', shared: true },
    { name: 'ordinary memory', shared: false },
  ])('classifies over $name', async ({ shared }) => {
    const { nic, dp, ra, a } = await setup({ shared });
    expect(dp.memory.buffer instanceof SharedArrayBuffer).toBe(shared);
    expect(dp.classify(frameTo(ra.mac.toString()))).toEqual({ deliver: [a.id], rule: 'unicast-exact', path: 'hardware' });
    expect(dp.classify(frameTo(ra.mac.toString()))).toEqual(classifyFrame(nic.filterState(), frameTo(ra.mac.toString())));
  });

  it('never grows its memory', async () => {
    const { dp, a } = await setup();
    const bytes = dp.memory.buffer.byteLength;
    for (let i = 0; i < 200; i++) a.addressRemove(a.addressAdd().slot);
    dp.receiveBurst(Array.from({ length: 1000 }, () => frameTo('ff:ff:ff:ff:ff:ff')));
    expect(dp.memory.buffer.byteLength).toBe(bytes);
  });

  it('reports the bytes of its filter: one table and two banks that grow with the address and group capacity', async () => {
    const sized = async (maxAddresses: number, maxGroups: number) => {
      const dp = await DataPlane.create(new Nic({ primary: PRIMARY, maxAddresses, unicastEntries: maxAddresses }), { maxGroups, lanes: 1 });
      dp.close();
      return dp;
    };
    const small = await sized(64, 16);
    const more = await sized(4096, 16);
    const groups = await sized(64, 4096);
    expect(small.filterBytes).toBeGreaterThan(0);
    // Every address needs at least its key (6 bytes) and a control byte in each bank.
    expect(more.filterBytes).toBeGreaterThanOrEqual(4096 * (6 + 2));
    expect(more.filterBytes).toBeGreaterThan(small.filterBytes);
    expect(groups.filterBytes).toBeGreaterThan(small.filterBytes);
    expect(more.filterBytes).toBeLessThan(more.memory.buffer.byteLength);
  });

  // The filter is sized for the NIC's capacity plus the group capacity; the bound is per active MAC at that capacity.
  const PER_MAC = [
    { name: '4,096 MACs, 256 groups, 64 clients (the benchmark NIC)', macs: 4096, extra: 65, maxGroups: 256, maxClients: 64, bound: 18 },
    { name: '4,096 MACs, no spare capacity, 16 groups', macs: 4096, extra: 0, maxGroups: 16, maxClients: 16, bound: 16 },
    { name: '65,536 MACs, 256 groups, 64 clients', macs: 65536, extra: 0, maxGroups: 256, maxClients: 64, bound: 15.5 },
  ];
  it.each(PER_MAC)('$name: at most $bound bytes per active MAC, everything reader safety needs included', async (c) => {
    const nic = new Nic({ primary: PRIMARY, maxAddresses: c.macs + c.extra, unicastEntries: c.macs + c.extra, maxClients: c.maxClients });
    const dp = await DataPlane.create(nic, { maxGroups: c.maxGroups, lanes: 1, burst: 16 });
    dp.close();
    expect(dp.filterBytes / c.macs).toBeLessThanOrEqual(c.bound);
  });

  it('rejects sizes out of range with INVALID_ARGUMENT', async () => {
    const nic = new Nic({ primary: PRIMARY });
    await expect(DataPlane.create(nic, { burst: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(DataPlane.create(nic, { lanes: 17 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  // Products of sizes that each pass alone: the memory they add up to is checked before anything is laid out.
  const OVERSIZED: {
    name: string;
    nic: ConstructorParameters<typeof Nic>[0];
    options: Parameters<typeof DataPlane.create>[1];
    names: string;
  }[] = [
    {
      name: '16 lanes of 300 MB pools (4.8 GB, past 2^32)',
      nic: { primary: PRIMARY },
      options: { lanes: 16, poolBytes: 300e6 },
      names: 'lanes × poolBytes',
    },
    { name: '4 lanes of 1 GiB pools', nic: { primary: PRIMARY }, options: { lanes: 4, poolBytes: 2 ** 30 }, names: 'lanes × poolBytes' },
    {
      name: '2 lanes of 600 MB pools (1.2 GB)',
      nic: { primary: PRIMARY },
      options: { lanes: 2, poolBytes: 600e6 },
      names: 'lanes × poolBytes',
    },
    {
      name: '65,535 clients with 64 KiB rings',
      nic: { primary: PRIMARY, maxClients: 65535 },
      options: { lanes: 1, ringBytes: 65536 },
      names: 'maxClients × ring',
    },
  ];

  it.each(OVERSIZED)('$name: INVALID_ARGUMENT naming the product, before any memory is made', async ({ nic, options, names }) => {
    const err = await DataPlane.create(new Nic(nic), options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MacslotError);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((err as Error).message).toContain(names);
  });
});

// Every method of a closed data plane, with arguments that would be valid before close().
const AFTER_CLOSE: { name: string; call: (dp: DataPlane) => unknown }[] = [
  { name: 'handle', call: (dp) => dp.handle() },
  { name: 'claimDelivery', call: (dp) => dp.claimDelivery() },
  { name: 'releaseDelivery', call: (dp) => dp.releaseDelivery() },
  { name: 'classifyBurst', call: (dp) => dp.classifyBurst(1) },
  { name: 'classifyBurst of 0', call: (dp) => dp.classifyBurst(0) },
  { name: 'rxBurst', call: (dp) => dp.rxBurst(1) },
  { name: 'load', call: (dp) => dp.load([frameTo(PRIMARY)]) },
  { name: 'classify', call: (dp) => dp.classify(frameTo(PRIMARY)) },
  { name: 'receive', call: (dp) => dp.receive(frameTo(PRIMARY)) },
  { name: 'receiveBurst', call: (dp) => dp.receiveBurst([frameTo(PRIMARY)]) },
  { name: 'classifyKeys', call: (dp) => dp.classifyKeys([Mac.parse(PRIMARY)]) },
  { name: 'decode', call: (dp) => dp.decode(4) },
  { name: 'ring', call: (dp) => dp.ring(0) },
  { name: 'clientCounters', call: (dp) => dp.clientCounters(0) },
  { name: 'counters', call: (dp) => dp.counters() },
  { name: 'setUplink', call: (dp) => dp.setUplink(undefined) },
  { name: 'send', call: (dp) => dp.send(0, frameTo('ff:ff:ff:ff:ff:ff')) },
  { name: 'reload', call: (dp) => dp.reload() },
  { name: 'on', call: (dp) => dp.on(() => undefined) },
  { name: 'reclaimLane', call: (dp) => dp.reclaimLane(1) },
];

describe('after close()', () => {
  it.each(AFTER_CLOSE)('$name throws CLIENT_CLOSED', async ({ call }) => {
    const nic = new Nic({ primary: PRIMARY, maxClients: 4 });
    const dp = await DataPlane.create(nic, { lanes: 2 });
    expect(() => call(dp)).not.toThrow();
    dp.close();
    dp.close();
    let err: unknown;
    try {
      call(dp);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MacslotError);
    expect(err).toMatchObject({ code: 'CLIENT_CLOSED' });
  });

  it('an attached lane is closed on its own: the creator and the other lanes go on', async () => {
    const nic = new Nic({ primary: PRIMARY, maxClients: 4 });
    const dp = await DataPlane.create(nic, { lanes: 2 });
    const w = await DataPlane.attach(dp.handle());
    w.close();
    expect(() => w.classify(frameTo(PRIMARY))).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }));
    expect(dp.classify(frameTo(PRIMARY))).toEqual(classifyFrame(nic.filterState(), frameTo(PRIMARY)));
    // Its lane is free for the next attach.
    expect((await DataPlane.attach(dp.handle())).lane).toBe(w.lane);
  });
});

describe('client ids', () => {
  it.each([
    { name: 'negative', id: -1 },
    { name: 'the capacity', id: 8 },
    { name: 'far past the capacity', id: 1e9 },
    { name: 'fractional', id: 1.5 },
    { name: 'NaN', id: Number.NaN },
  ])('clientCounters($name) throws INVALID_ARGUMENT', async ({ id }) => {
    const { dp } = await setup();
    expect(() => dp.clientCounters(id)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => dp.ring(id)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a reused id starts with an empty ring and zero counters', async () => {
    const { nic, dp, a, ra } = await setup();
    const ring = dp.ring(a.id);
    dp.receiveBurst([frameTo(ra.mac.toString()), frameTo('ff:ff:ff:ff:ff:ff')]);
    expect(dp.clientCounters(a.id)).toMatchObject({ frames: 2, broadcast: 1 });
    expect(ring.pending).toBeGreaterThan(0);
    a.close();
    const c = nic.openClient('c');
    expect(c.id).toBe(a.id);
    expect(dp.clientCounters(c.id)).toEqual({ frames: 0, bytes: 0, broadcast: 0, multicast: 0, ringDrops: 0, poolDrops: 0 });
    expect(ring.pending).toBe(0);
    expect(ring.drain()).toEqual([]);
    const rc = c.addressReserve();
    const mine = frameTo(rc.mac.toString());
    dp.receive(mine);
    expect(ring.drain()).toEqual([mine]);
    expect(dp.clientCounters(c.id)).toMatchObject({ frames: 1, bytes: 60 });
  });
});

describe('live reprogramming', () => {
  it('sees every change in the next burst', async () => {
    const { dp, a, b, ra } = await setup();
    const dst = frameTo('02:00:00:00:00:77');
    expect(dp.classify(dst).rule).toBe('drop-unknown');
    const added = b.addressAdd('02:00:00:00:00:77');
    expect(dp.classify(dst).deliver).toEqual([b.id]);
    b.addressModify(added.slot, '02:00:00:00:00:78');
    expect(dp.classify(dst).rule).toBe('drop-unknown');
    expect(dp.classify(frameTo('02:00:00:00:00:78')).deliver).toEqual([b.id]);
    a.multicastJoin('33:33:00:00:00:fb');
    expect(dp.classify(frameTo('33:33:00:00:00:fb')).deliver).toEqual([a.id]);
    a.addressUnreserve(ra.slot);
    expect(dp.classify(frameTo(ra.mac.toString())).rule).toBe('drop-unknown');
    a.close();
    expect(dp.classify(frameTo('33:33:00:00:00:fb')).rule).toBe('drop-multicast');
  });

  it('reload rebuilds the same filter from the NIC, and later changes reach both banks', async () => {
    const nic = new Nic({
      primary: PRIMARY,
      factory: { base: '00:14:4f:00:00:01', count: 4 },
      unicastEntries: 3,
      multicastEntries: 2,
      maxClients: 8,
    });
    const dp = await DataPlane.create(nic);
    const [a, b, c] = ['a', 'b', 'c'].map((n) => nic.openClient(n));
    a!.addressReserve();
    b!.addressAdd('02:00:00:00:00:0b');
    c!.addressAdd('02:00:00:00:00:0c'); // overflows into a borrowed multicast entry
    c!.addressAdd('02:00:00:00:00:0d'); // and then into software: the NIC goes promiscuous
    c!.setPromiscuous(false);
    b!.setBroadcast(false);
    // Join and leave first, so the banks number the groups differently from a fresh rebuild.
    a!.multicastJoin('01:00:5e:00:00:01');
    a!.multicastJoin('01:00:5e:00:00:fb');
    a!.multicastLeave('01:00:5e:00:00:01');
    b!.multicastJoin('01:00:5e:00:00:fb');
    c!.multicastJoin('33:33:00:00:00:01');
    a!.multicastJoin('33:33:00:00:00:02'); // no exact entry left: the hash stage
    const probes = [
      ...nic.slots().map((s) => s.mac.toString()),
      'ff:ff:ff:ff:ff:ff',
      '01:00:5e:00:00:fb',
      '33:33:00:00:00:01',
      '33:33:00:00:00:02',
      '33:33:00:00:00:03',
      '02:00:00:00:00:99',
    ].map((m) => frameTo(m));
    const verdicts = () => probes.map((f) => dp.classify(f));
    const before = verdicts();
    expect(before).toEqual(probes.map((f) => classifyFrame(nic.filterState(), f)));
    expect(new Set(before.map((v) => v.rule)).size).toBeGreaterThanOrEqual(5);
    dp.reload();
    expect(verdicts()).toEqual(before);
    // Two changes flip both banks: each must hold the reloaded filter plus the change.
    c!.multicastJoin('01:00:5e:00:00:fb');
    expect(dp.classify(frameTo('01:00:5e:00:00:fb')).deliver).toEqual([a!.id, b!.id, c!.id]);
    const added = a!.addressAdd('02:00:00:00:00:aa');
    expect(dp.classify(frameTo('02:00:00:00:00:aa')).deliver).toEqual([a!.id]);
    b!.addressRemove(b!.slots().find((s) => nic.addressGet(s).mac.toString() === '02:00:00:00:00:0b')!);
    expect(dp.classify(frameTo('02:00:00:00:00:0b')).rule).not.toBe('unicast-exact');
    expect(dp.classify(frameTo('02:00:00:00:00:aa')).deliver).toEqual([a!.id]);
    expect(dp.classify(frameTo('01:00:5e:00:00:fb')).deliver).toEqual([a!.id, b!.id, c!.id]);
    a!.addressRemove(added.slot);
    expect(dp.classify(frameTo('02:00:00:00:00:aa')).deliver).not.toContain(a!.id);
    dp.reload();
    expect(verdicts()).toEqual(probes.map((f) => classifyFrame(nic.filterState(), f)));
  });

  it('keeps every key through churn at full capacity: freed slots are reused and deleted ones tidied, nothing is held', async () => {
    const CAP = 48;
    const nic = new Nic({ primary: PRIMARY, maxAddresses: CAP, unicastEntries: CAP, multicastEntries: 4, maxClients: 4 });
    const dp = await DataPlane.create(nic, { maxGroups: 4, lanes: 1, burst: 128, seed: 7 });
    const events: string[] = [];
    dp.on((e) => events.push(e.type));
    const a = nic.openClient('a');
    const groups = [1, 2, 3, 4].map((g) => Mac.fromNumber(0x0100_5e00_0000 + g));
    for (const g of groups) a.multicastJoin(g);
    const macOf = (n: number): Mac => Mac.fromNumber(0x025a_0000_0000 + n * 7919);
    // The primary is one of the NIC's addresses: the others fill it to capacity.
    const held = Array.from({ length: CAP - 1 }, (_, n) => ({ slot: a.addressAdd(macOf(n)).slot, mac: macOf(n) }));
    const gone: Mac[] = [];
    const check = (): void => {
      const present = held.map((h) => h.mac);
      const verdicts = dp.classifyKeys([...present, ...groups, ...gone.slice(-64)]);
      expect(verdicts.slice(0, present.length).every((v) => v.rule === 'unicast-exact' && v.deliver[0] === a.id)).toBe(true);
      const groupRules = verdicts.slice(present.length, present.length + groups.length).map((v) => v.rule);
      expect(groupRules).toEqual(groups.map(() => 'multicast-exact'));
      expect(verdicts.slice(present.length + groups.length).every((v) => v.rule === 'drop-unknown')).toBe(true);
    };
    let next = CAP;
    let lcg = 12345;
    for (let i = 0; i < 20_000; i++) {
      lcg = (Math.imul(lcg, 1103515245) + 12345) >>> 0;
      const h = held[(lcg >>> 8) % held.length]!;
      const mac = macOf(next++);
      a.addressModify(h.slot, mac);
      gone.push(h.mac);
      h.mac = mac;
      if (i % 1000 === 0) check();
    }
    check();
    expect(events).toEqual([]);
    expect(dp.held).toBe(false);
    dp.close();
  });

  it('reload refuses on an attached lane and after close', async () => {
    const { dp } = await setup({ lanes: 2 });
    const other = await DataPlane.attach(dp.handle());
    expect(() => other.reload()).toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED' }));
    dp.close();
    expect(() => dp.reload()).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }));
    other.close();
  });
});

describe('rings', () => {
  it('delivers each client its frames, in order, with the verdict word', async () => {
    const { dp, a, b, ra, rb } = await setup();
    const frames = [
      frameTo(ra.mac.toString(), undefined, 60),
      frameTo(rb.mac.toString(), undefined, 61),
      frameTo(ra.mac.toString(), undefined, 1514),
      frameTo('ff:ff:ff:ff:ff:ff', undefined, 99),
    ];
    expect(dp.receiveBurst(frames)).toBe(4);
    const got: [number, string][] = [];
    dp.ring(a.id).poll((f, v) => got.push([f.length, dp.decode(v).rule]));
    expect(got).toEqual([
      [60, 'unicast-exact'],
      [1514, 'unicast-exact'],
      [99, 'broadcast'],
    ]);
    const bFrames = dp.ring(b.id).drain();
    expect(bFrames.map((f) => f.length)).toEqual([61, 99]);
    expect([...bFrames[0]!]).toEqual([...frames[1]!]);
    expect(dp.clientCounters(a.id)).toEqual({ frames: 3, bytes: 60 + 1514 + 99, broadcast: 1, multicast: 0, ringDrops: 0, poolDrops: 0 });
    expect(dp.ring(a.id).read()).toBeUndefined();
  });

  it('discard empties the ring unread and unpins its frames; later frames are read as usual', async () => {
    const { dp, a, ra } = await setup({ ringBytes: 4096 });
    const ring = dp.ring(a.id);
    expect(ring.discard()).toBe(0);
    dp.receiveBurst([frameTo(ra.mac.toString(), undefined, 60), frameTo(ra.mac.toString(), undefined, 100)]);
    expect(ring.pending).toBe(2);
    expect(ring.discard()).toBe(2);
    expect(ring.pending).toBe(0);
    expect(ring.read()).toBeUndefined();
    // The ring fills again after a discard: 4 KiB holds 256 descriptors, far fewer than 600 frames.
    for (let i = 0; i < 600; i++) {
      dp.receive(frameTo(ra.mac.toString(), undefined, 100));
      if (i % 20 === 19) ring.discard();
    }
    expect(dp.clientCounters(a.id)).toMatchObject({ ringDrops: 0, poolDrops: 0 });
    dp.receive(frameTo(ra.mac.toString(), undefined, 77));
    ring.discard();
    dp.receive(frameTo(ra.mac.toString(), undefined, 78));
    expect(ring.drain().map((f) => f.length)).toEqual([78]);
  });

  it('wraps around the ring many times without losing or reordering frames', async () => {
    const { dp, a, ra } = await setup({ ringBytes: 4096 });
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 300; round++) {
      const frames = Array.from({ length: 3 }, () => {
        const f = frameTo(ra.mac.toString(), undefined, 60 + (next % 700));
        new DataView(f.buffer).setUint32(20, next++);
        return f;
      });
      dp.receiveBurst(frames);
      dp.ring(a.id).poll((f) => expect(new DataView(f.buffer, f.byteOffset).getUint32(20)).toBe(expected++));
    }
    expect(expected).toBe(next);
    expect(dp.clientCounters(a.id).ringDrops).toBe(0);
  });

  it('drops for a full ring only, and counts it', async () => {
    const { dp, a, b, ra, rb } = await setup({ ringBytes: 4096 });
    // 4 KiB holds 256 descriptors: a is never read, b after every burst.
    let toB = 0;
    for (let i = 0; i < 300; i++) {
      dp.receiveBurst([frameTo(ra.mac.toString(), undefined, 100), frameTo(rb.mac.toString(), undefined, 60)]);
      toB += dp.ring(b.id).drain().length;
    }
    expect(dp.clientCounters(a.id)).toMatchObject({ frames: 256, ringDrops: 300 - 256, poolDrops: 0 });
    expect(dp.clientCounters(b.id)).toMatchObject({ frames: 300, ringDrops: 0 });
    expect(toB).toBe(300);
    expect(dp.counters().ringFull).toBe(300 - 256);
    expect(dp.ring(a.id).drain()).toHaveLength(256);
  });
});

describe('capacity', () => {
  it('fans broadcast out to 1,024 clients and matches 4,096 active MACs', async () => {
    const nic = new Nic({ primary: PRIMARY, unicastEntries: 4096, maxClients: 1024, maxAddresses: 4097 });
    const dp = await DataPlane.create(nic, { ringBytes: 2048 });
    const clients = Array.from({ length: 1023 }, (_, i) => nic.openClient(`vm${i}`));
    const macs: string[] = [];
    for (let i = 0; i < 4096; i++) macs.push(clients[i % clients.length]!.addressAdd(Mac.fromNumber(0x0200_0000_0000 + i)).mac.toString());
    for (const [i, m] of macs.entries())
      if (i % 97 === 0) expect(dp.classify(frameTo(m)).deliver).toEqual([clients[i % clients.length]!.id]);
    dp.receive(frameTo('ff:ff:ff:ff:ff:ff'));
    const receivers = [nic.primaryClient, ...clients].filter((c) => dp.clientCounters(c.id).broadcast === 1);
    expect(receivers).toHaveLength(1024);
  });
});

describe('transmit', () => {
  it('stamps the source, bridges locally without echo, and passes to the uplink', async () => {
    const { dp, a, b, ra, rb } = await setup();
    const wire: [string, number][] = [];
    dp.setUplink((f, from) => wire.push([Mac.fromBytes(f, 6, 6).toString(), from]));
    expect(dp.send(a.id, frameTo('ff:ff:ff:ff:ff:ff', '02:66:66:66:66:66'))).toBe(true);
    expect(dp.send(a.id, frameTo(rb.mac.toString()))).toBe(true);
    expect(wire).toEqual([
      [ra.mac.toString(), a.id],
      [ra.mac.toString(), a.id],
    ]);
    expect(dp.ring(a.id).drain()).toHaveLength(0);
    const atB = dp.ring(b.id).drain();
    expect(atB).toHaveLength(2);
    expect(Mac.fromBytes(atB[1]!, 6, 6).equals(ra.mac)).toBe(true);
  });

  it('drops and counts spoofed sources with anti-spoof on', async () => {
    const { dp, a, b, ra, rb } = await setup();
    expect(dp.send(a.id, frameTo(rb.mac.toString(), '02:66:66:66:66:66'), { antiSpoof: true })).toBe(false);
    expect(dp.counters().spoofed).toBe(1);
    expect(dp.ring(b.id).drain()).toHaveLength(0);
    expect(dp.send(a.id, frameTo(rb.mac.toString(), ra.mac.toString()), { antiSpoof: true })).toBe(true);
    expect(dp.ring(b.id).drain()).toHaveLength(1);
  });

  it('anti-spoof follows every change of ownership: modify, add, release, another client, reload', async () => {
    const { dp, a, b, ra, rb } = await setup();
    const from = (src: string, id = a.id): boolean => dp.send(id, frameTo(rb.mac.toString(), src), { antiSpoof: true });
    a.addressModify(ra.slot, '02:00:00:00:00:a1');
    expect([from(ra.mac.toString()), from('02:00:00:00:00:a1')]).toEqual([false, true]);
    const added = a.addressAdd('02:00:00:00:00:a2');
    expect(from('02:00:00:00:00:a2')).toBe(true);
    expect(from('02:00:00:00:00:a2', b.id)).toBe(false); // b may not use a's MAC
    a.addressRemove(added.slot);
    expect(from('02:00:00:00:00:a2')).toBe(false);
    b.addressAdd('02:00:00:00:00:a2'); // the freed MAC now belongs to b
    expect([from('02:00:00:00:00:a2'), from('02:00:00:00:00:a2', b.id)]).toEqual([false, true]);
    dp.reload();
    expect([from('02:00:00:00:00:a1'), from(ra.mac.toString()), from(rb.mac.toString(), b.id)]).toEqual([true, false, true]);
    a.addressUnreserve(ra.slot);
    expect(from('02:00:00:00:00:a1')).toBe(false);
    expect(dp.counters().spoofed).toBe(6);
  });
});

describe('lanes', () => {
  it('gives each attached lane its own pool and the ring role to one lane only', async () => {
    const { dp, ra, a } = await setup({ lanes: 2 });
    const other = await DataPlane.attach(dp.handle());
    expect(other.lane).toBe(1);
    expect(other.pool.byteOffset).not.toBe(dp.pool.byteOffset);
    expect(other.classify(frameTo(ra.mac.toString())).deliver).toEqual([a.id]);
    expect(() => other.receive(frameTo(ra.mac.toString()))).toThrow(MacslotError);
    await expect(DataPlane.attach(dp.handle())).rejects.toMatchObject({ code: 'DATA_PLANE' });
    other.close();
    dp.releaseDelivery();
    const again = await DataPlane.attach(dp.handle());
    expect(again.claimDelivery()).toBe(true);
    expect(again.receive(frameTo(ra.mac.toString())).deliver).toEqual([a.id]);
    expect(dp.counters().rules['unicast-exact']).toBe(2);
  });
});

describe('doorbells', () => {
  it('wakes a consumer sleeping in another thread when its ring gets frames', async () => {
    const { dp, a, ra } = await setup();
    const asleep = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL('./fixtures/ring-waiter.mjs', import.meta.url), {
      workerData: { handle: dp.handle(), client: a.id, asleep: asleep.buffer },
    });
    const messages: { ready?: boolean; woke?: boolean; waitedMs?: number; lengths?: number[] }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      worker.on('message', (m) => (messages.push(m), m.ready ? undefined : resolve()));
      worker.once('error', reject);
    });
    // The consumer says when it is about to sleep, so the frame arrives by notify rather than by a first look.
    // (Atomics.waitAsync is in Node 16+, not in this project's ES2022 typings.)
    const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { value: Promise<string> | string } })
      .waitAsync;
    await waitAsync(asleep, 0, 0).value;
    dp.receive(frameTo(ra.mac.toString(), undefined, 77));
    await done;
    await worker.terminate();
    expect(messages[1]).toMatchObject({ woke: true, lengths: [77] });
    expect(messages[1]!.waitedMs!).toBeLessThan(40_000);
  });
});
