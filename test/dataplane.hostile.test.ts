// Hostile input to the data plane: every malformed descriptor and corrupt ring is a counted drop, never a trap or a hang.
import { describe, expect, it } from 'vitest';
import { DataPlane, Mac, Nic, type Rule } from 'macslot';

const frameTo = (dst: string, length = 60): Uint8Array => {
  const f = new Uint8Array(length);
  Mac.parse(dst).writeTo(f, 0);
  return f;
};

async function setup(ringBytes = 16384) {
  const nic = new Nic({ primary: '00:14:4f:00:00:00', maxFrameLength: 1514, maxClients: 8 });
  const dp = await DataPlane.create(nic, { ringBytes, burst: 64, poolBytes: 65536 });
  const a = nic.openClient('a');
  const b = nic.openClient('b');
  const ma = a.addressAdd('02:00:00:00:00:0a').mac.toString();
  const mb = b.addressAdd('02:00:00:00:00:0b').mac.toString();
  return { nic, dp, a, b, ma, mb };
}

const POOL = 65536;
const DESCRIPTORS: { name: string; offset: number; length: number; rule: Rule }[] = [
  { name: 'zero length', offset: 0, length: 0, rule: 'drop-runt' },
  { name: 'one byte', offset: 0, length: 1, rule: 'drop-runt' },
  { name: '13 bytes', offset: 0, length: 13, rule: 'drop-runt' },
  { name: 'one past the maximum frame', offset: 0, length: 1515, rule: 'drop-oversize' },
  { name: 'offset past the pool', offset: POOL + 8, length: 60, rule: 'drop-bad-descriptor' },
  { name: 'ends one byte past the pool', offset: POOL - 59, length: 60, rule: 'drop-bad-descriptor' },
  { name: 'offset plus length wraps around 2^32', offset: 0xffff_fff0, length: 0x20, rule: 'drop-bad-descriptor' },
  { name: 'length 2^32 - 1', offset: 0, length: 0xffff_ffff, rule: 'drop-bad-descriptor' },
  { name: 'length larger than the pool', offset: 0, length: POOL + 1, rule: 'drop-bad-descriptor' },
];

describe('malformed descriptors', () => {
  it.each(DESCRIPTORS)('$name → $rule, counted, nothing delivered', async ({ offset, length, rule }) => {
    const { dp, a, ma } = await setup();
    expect(dp.pool.length).toBe(POOL);
    dp.pool.set(frameTo(ma), 0);
    dp.pool.set(frameTo(ma), POOL - 60);
    dp.descriptors.set([offset, length, POOL - 60, 60]);
    expect(dp.rxBurst(2)).toBe(2);
    expect(dp.decode(dp.verdicts[0]!)).toEqual({ deliver: [], rule, path: 'hardware' });
    expect(dp.counters().rules[rule]).toBe(1);
    // The well-formed frame behind it, flush against the pool's end, still goes through.
    expect(dp.decode(dp.verdicts[1]!).rule).toBe('unicast-exact');
    expect(dp.ring(a.id).drain().map((f) => f.length)).toEqual([60]);
  });

  it('exactly at the pool end is fine', async () => {
    const { dp, ma } = await setup();
    dp.pool.set(frameTo(ma, 14), POOL - 14);
    dp.descriptors.set([POOL - 14, 14]);
    dp.classifyBurst(1);
    expect(dp.decode(dp.verdicts[0]!).rule).toBe('unicast-exact');
  });

  it('refuses a count above the burst size without running it', async () => {
    const { dp } = await setup();
    expect(() => dp.classifyBurst(dp.burst + 1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => dp.rxBurst(-1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(Object.values(dp.counters().rules).reduce((x, y) => x + y, 0)).toBe(0);
  });

  it('survives random descriptors and pool bytes', async () => {
    const { dp } = await setup();
    let s = 99;
    const rnd = () => (s = (s * 1103515245 + 12345) >>> 0);
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < dp.pool.length; i += 4096) dp.pool[i + (rnd() & 4095)] = rnd() & 0xff;
      for (let i = 0; i < dp.burst * 2; i++) dp.descriptors[i] = rnd() % 3 === 0 ? rnd() : rnd() % (POOL + 64);
      expect(dp.rxBurst(dp.burst)).toBe(dp.burst);
      for (let id = 0; id < 3; id++) dp.ring(id).drain();
    }
    expect(Object.values(dp.counters().rules).reduce((x, y) => x + y, 0)).toBe(200 * dp.burst);
  });
});

const RINGS: { name: string; head: (h: number, t: number) => number; tail: (h: number, t: number) => number }[] = [
  { name: 'tail ahead of head', head: (h) => h, tail: (h) => h + 64 },
  { name: 'unaligned tail', head: (h) => h, tail: (_, t) => t + 3 },
  { name: 'unaligned head', head: (h) => h + 5, tail: (_, t) => t },
  { name: 'head far beyond the ring size', head: (h) => h + 0x1000_0000, tail: (_, t) => t },
];

describe('corrupt ring indices', () => {
  it.each(RINGS)('$name: that client drops and counts, others receive', async ({ head, tail }) => {
    const { dp, a, b, ma, mb } = await setup();
    dp.receiveBurst([frameTo(ma), frameTo(mb)]);
    dp.ring(a.id).drain();
    dp.ring(b.id).drain();
    const idx = new Int32Array(dp.memory.buffer, dp.ring(a.id).byteOffset, 32);
    const [h, t] = [idx[0]!, idx[16]!];
    idx[0] = head(h, t) | 0;
    idx[16] = tail(h, t) | 0;
    const before = dp.memory.buffer.slice(0);
    dp.receiveBurst([frameTo(ma), frameTo(mb), frameTo('ff:ff:ff:ff:ff:ff')]);
    expect(dp.counters().ringCorrupt).toBe(2);
    expect(dp.clientCounters(a.id)).toMatchObject({ frames: 1, ringDrops: 2 });
    expect(dp.ring(b.id).drain().map((f) => f.length)).toEqual([60, 60]);
    // Nothing was written into the corrupt ring's records.
    const ringData = dp.ring(a.id).byteOffset + 128;
    expect(new Uint8Array(dp.memory.buffer, ringData, 16384)).toEqual(new Uint8Array(before, ringData, 16384));
  });

  it('a full ring drops for its client only', async () => {
    const { dp, a, b, ma, mb } = await setup(2048);
    let atB = 0;
    for (let i = 0; i < 40; i++) {
      dp.receiveBurst([frameTo(ma, 200), frameTo(mb, 60)]);
      atB += dp.ring(b.id).drain().length;
    }
    const drops = dp.clientCounters(a.id).ringDrops;
    expect(drops).toBeGreaterThan(0);
    expect(dp.counters().ringFull).toBe(drops);
    expect(dp.clientCounters(a.id).frames + drops).toBe(40);
    expect(dp.clientCounters(b.id).ringDrops).toBe(0);
    expect(atB).toBe(40);
  });
});

describe('table churn', () => {
  it('stays exact through 100,000 add/remove cycles', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', unicastEntries: 256, maxAddresses: 300, maxClients: 4 });
    const dp = await DataPlane.create(nic);
    const c = nic.openClient('c');
    const present = new Map<string, number>();
    let s = 7;
    const rnd = () => (s = (s * 1103515245 + 12345) >>> 0);
    const universe = Array.from({ length: 512 }, (_, i) => Mac.fromNumber(0x0200_0000_0000 + i * 0x1_0001).toString());
    for (let i = 0; i < 100_000; i++) {
      const m = universe[rnd() % universe.length]!;
      const slot = present.get(m);
      if (slot !== undefined) {
        c.addressRemove(slot);
        present.delete(m);
      } else if (present.size < 255) present.set(m, c.addressAdd(m).slot);
    }
    const want = universe.map((m) => (present.has(m) ? 'unicast-exact' : 'drop-unknown'));
    expect(universe.map((m) => dp.classify(frameTo(m)).rule)).toEqual(want);
  });
});
