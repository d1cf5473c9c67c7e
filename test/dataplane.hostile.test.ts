// Hostile input to the data plane: malformed descriptors, bad burst counts and corrupt or full rings are counted drops, never a
// trap, a stray write or a stuck data plane; and the table stays exact through heavy add/remove churn.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { DataPlane, Mac, Nic, RULES, type Rule } from 'macslot';

const PRIMARY = '00:14:4f:00:00:00';
const MA = '02:00:00:00:00:0a';
const MB = '02:00:00:00:00:0b';
const BCAST = 'ff:ff:ff:ff:ff:ff';
const POOL = 65536;
const MAX_FRAME = 1514;
const RING = 16384;

const frameTo = (dst: string, length = 60, fill = 0x5a): Uint8Array => {
  const f = new Uint8Array(length).fill(fill);
  Mac.parse(dst).writeTo(f, 0);
  return f;
};

async function setup(ringBytes = RING, lanes = 1) {
  const nic = new Nic({ primary: PRIMARY, unicastEntries: 4, maxFrameLength: MAX_FRAME, maxClients: 8 });
  const dp = await DataPlane.create(nic, { ringBytes, burst: 64, poolBytes: POOL, lanes, seed: 11 });
  const a = nic.openClient('a');
  const b = nic.openClient('b');
  a.addressAdd(MA);
  b.addressAdd(MB);
  const p = nic.primaryClient;
  return { nic, dp, a, b, p, rings: { p: dp.ring(p.id), a: dp.ring(a.id), b: dp.ring(b.id) } };
}

type Setup = Awaited<ReturnType<typeof setup>>;

const ruleTotal = (dp: DataPlane): number => Object.values(dp.counters().rules).reduce((x, y) => x + y, 0);

/** A broadcast after the hostile input still reaches every receiver: nothing was left stuck. */
function stillWorks({ dp, rings }: Setup): void {
  const f = frameTo(BCAST, 64, 0x77);
  expect(dp.receive(f).rule).toBe('broadcast');
  for (const ring of [rings.p, rings.a, rings.b]) expect(ring.drain()).toEqual([f]);
}

// ---- descriptors --------------------------------------------------------------------------------------------------

const RUNTS = Array.from({ length: 14 }, (_, n) => ({ name: `length ${n}`, offset: 0, length: n, rule: 'drop-runt' as Rule }));
const DESCRIPTORS: { name: string; offset: number; length: number; rule: Rule }[] = [
  ...RUNTS,
  { name: 'length 0 exactly at the pool end', offset: POOL, length: 0, rule: 'drop-runt' },
  { name: 'length maxFrameLength + 1', offset: 0, length: MAX_FRAME + 1, rule: 'drop-oversize' },
  { name: 'the whole pool as one frame', offset: 0, length: POOL, rule: 'drop-oversize' },
  { name: 'offset exactly at the pool end', offset: POOL, length: 60, rule: 'drop-bad-descriptor' },
  { name: 'offset past the pool', offset: POOL + 8, length: 60, rule: 'drop-bad-descriptor' },
  { name: 'offset + length one past the pool end', offset: POOL - 59, length: 60, rule: 'drop-bad-descriptor' },
  { name: 'runt past the pool', offset: POOL + 1, length: 5, rule: 'drop-bad-descriptor' },
  { name: 'offset + length wraps around 2^32 (0xfffffff0 + 0x20)', offset: 0xffff_fff0, length: 0x20, rule: 'drop-bad-descriptor' },
  { name: 'offset 0xffffffff, length 1', offset: 0xffff_ffff, length: 1, rule: 'drop-bad-descriptor' },
  { name: 'length 0xffffffff', offset: 0, length: 0xffff_ffff, rule: 'drop-bad-descriptor' },
  { name: 'length 0xffffffff at offset 1', offset: 1, length: 0xffff_ffff, rule: 'drop-bad-descriptor' },
  { name: 'length one more than the pool', offset: 0, length: POOL + 1, rule: 'drop-bad-descriptor' },
];

// The bounds are tight: the largest legal windows still go through.
const ACCEPTED: { name: string; offset: number; length: number }[] = [
  { name: 'shortest frame flush against the pool end', offset: POOL - 14, length: 14 },
  { name: 'frame of exactly maxFrameLength', offset: 0, length: MAX_FRAME },
  { name: 'largest frame flush against the pool end', offset: POOL - MAX_FRAME, length: MAX_FRAME },
];

describe('malformed descriptors', () => {
  it.each(DESCRIPTORS)('$name → $rule, counted, nothing delivered', async ({ offset, length, rule }) => {
    const s = await setup();
    const { dp, a, b, rings } = s;
    // Bytes addressed to a wherever a bad window could land, so a drop is never just an unknown destination.
    dp.pool.set(frameTo(MA, 2048), 0);
    dp.pool.set(frameTo(MB, 60, 0x11), 4096);
    dp.pool.set(frameTo(MA, 60, 0x22), POOL - 60);
    dp.descriptors.set([4096, 60, offset, length, POOL - 60, 60]);
    const sentinel = 0xdead_beef;
    dp.verdicts.fill(sentinel, 0, 3);

    expect(dp.classifyBurst(3)).toBe(3);
    const classified = Array.from(dp.verdicts.subarray(0, 3));
    expect(dp.rxBurst(3)).toBe(3);
    expect(Array.from(dp.verdicts.subarray(0, 3))).toEqual(classified);
    expect(dp.decode(dp.verdicts[1]!)).toEqual({ deliver: [], rule, path: 'hardware' });
    // Its neighbours in the same burst are untouched by it.
    expect(dp.decode(dp.verdicts[0]!)).toEqual({ deliver: [b.id], rule: 'unicast-exact', path: 'hardware' });
    expect(dp.decode(dp.verdicts[2]!)).toEqual({ deliver: [a.id], rule: 'unicast-exact', path: 'hardware' });

    const c = dp.counters();
    expect(c.rules[rule]).toBe(2);
    expect(c.rules['unicast-exact']).toBe(4);
    expect(RULES.reduce((n, r) => n + c.rules[r], 0)).toBe(6);
    expect({ deliveries: c.deliveries, ringFull: c.ringFull, ringCorrupt: c.ringCorrupt }).toEqual({
      deliveries: 2,
      ringFull: 0,
      ringCorrupt: 0,
    });
    expect(rings.a.drain()).toEqual([frameTo(MA, 60, 0x22)]);
    expect(rings.b.drain()).toEqual([frameTo(MB, 60, 0x11)]);
    expect(rings.p.drain()).toEqual([]);
    expect(dp.clientCounters(a.id)).toEqual({ frames: 1, bytes: 60, broadcast: 0, multicast: 0, ringDrops: 0, poolDrops: 0 });
    stillWorks(s);
  });

  it.each(ACCEPTED)('$name is delivered', async ({ offset, length }) => {
    const s = await setup();
    const f = frameTo(MA, length, 0x33);
    s.dp.pool.set(f, offset);
    s.dp.descriptors.set([offset, length]);
    expect(s.dp.rxBurst(1)).toBe(1);
    expect(s.dp.decode(s.dp.verdicts[0]!)).toEqual({ deliver: [s.a.id], rule: 'unicast-exact', path: 'hardware' });
    expect(s.rings.a.drain()).toEqual([f]);
  });

  it('survives random descriptors over random pool bytes', async () => {
    const s = await setup();
    const { dp } = s;
    let x = 99;
    const rnd = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 64; i++) dp.pool[rnd() % POOL] = rnd() & 0xff;
      // Mostly windows near or past the pool's end, some anywhere in 32 bits.
      for (let i = 0; i < dp.burst; i++) {
        dp.descriptors[2 * i] = rnd() % 3 === 0 ? rnd() : rnd() % (POOL + 64);
        dp.descriptors[2 * i + 1] = rnd() % 3 === 0 ? rnd() : rnd() % (MAX_FRAME + 64);
      }
      expect(dp.rxBurst(dp.burst)).toBe(dp.burst);
      for (const ring of Object.values(s.rings)) for (const f of ring.drain()) expect(f.length).toBeGreaterThanOrEqual(14);
    }
    expect(ruleTotal(dp)).toBe(200 * dp.burst);
    expect(dp.counters().ringCorrupt).toBe(0);
    stillWorks(s);
  });
});

// ---- burst counts --------------------------------------------------------------------------------------------------

/** The raw exports, reached the way a worker would: the module instantiated over the same memory. */
interface Raw {
  attach(): number;
  claimLane(lane: number): number;
  classifyBurst(lane: number, count: number): number;
  classifyKeys(lane: number, count: number): number;
  rxBurst(lane: number, count: number, exclude: number): number;
}

const COUNTS: { name: string; count: (burst: number) => number }[] = [
  { name: 'burst + 1', count: (n) => n + 1 },
  { name: '2 × burst', count: (n) => 2 * n },
  { name: '2^31', count: () => 2 ** 31 },
  { name: '2^32 - 1', count: () => 2 ** 32 - 1 },
];

describe('burst counts above the burst size', () => {
  it.each(COUNTS)('$name: TypeScript throws INVALID_ARGUMENT, Wasm returns 0 without trapping or writing', async ({ count }) => {
    const s = await setup(RING, 2);
    const { dp } = s;
    const n = count(dp.burst);
    dp.pool.set(frameTo(MA), 0);
    for (let i = 0; i < dp.burst; i++) dp.descriptors.set([0, 60], 2 * i);
    dp.verdicts.fill(0xdead_beef);
    expect(() => dp.classifyBurst(n)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => dp.rxBurst(n)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));

    const raw = new WebAssembly.Instance(dp.module, { env: { memory: dp.memory } }).exports as unknown as Raw;
    expect(raw.attach()).toBe(1);
    // A thread runs bursts only on a lane it claimed: on the creator's lane even a legal burst is refused.
    expect(raw.classifyBurst(dp.lane, dp.burst)).toBe(0);
    expect(raw.claimLane(1)).not.toBe(0);
    expect(raw.classifyBurst(1, n)).toBe(0);
    expect(raw.rxBurst(1, n, 0xffff_ffff)).toBe(0);
    expect(raw.classifyKeys(1, n)).toBe(0);

    expect(Array.from(new Set(dp.verdicts))).toEqual([0xdead_beef]);
    expect(ruleTotal(dp)).toBe(0);
    expect(s.rings.a.drain()).toEqual([]);
    // The same raw instance runs a legal burst, so the zeros above were refusals, not a broken instance.
    // Its lane's descriptors are all zero: every frame is a runt.
    expect(raw.classifyBurst(1, dp.burst)).toBe(dp.burst);
    expect(dp.counters().rules['drop-runt']).toBe(dp.burst);
    stillWorks(s);
  });

  it.each([
    { name: 'negative', count: -1 },
    { name: 'fractional', count: 1.5 },
    { name: 'NaN', count: Number.NaN },
  ])('$name count: INVALID_ARGUMENT', async ({ count }) => {
    const { dp } = await setup();
    expect(() => dp.classifyBurst(count)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => dp.rxBurst(count)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(ruleTotal(dp)).toBe(0);
  });
});

// ---- rings ---------------------------------------------------------------------------------------------------------

/**
 * Producer index at ring+0 (word 0), consumer take index at ring+64 (word 16) and release index at ring+72 (word 18), as
 * free-running slot counts (src/dataplane/ring.ts).
 */
function indices(dp: DataPlane, ringOffset: number): Int32Array {
  return new Int32Array(dp.memory.buffer, ringOffset, 32);
}
const HEAD = 0;
const TAIL = 16;
const RELEASED = 18;
/** Descriptor slots of a RING-byte ring (16 bytes each). */
const SLOTS = RING / 16;

const CORRUPT: { name: string; head: (h: number) => number; released: (h: number) => number }[] = [
  { name: 'released ahead of head', head: (h) => h, released: (h) => h + 4 },
  { name: 'released one slot ahead of head', head: (h) => h, released: (h) => h + 1 },
  { name: 'head one slot beyond a full ring', head: (h) => h + SLOTS + 1, released: (h) => h },
  { name: 'huge difference (2^28 slots in use)', head: (h) => h + 0x1000_0000, released: (h) => h },
  { name: 'garbage in both words', head: () => 0xdead_beef, released: () => 0x1234_5677 },
];

describe('corrupt ring indices', () => {
  it.each(CORRUPT)('$name: that client drops and counts ringCorrupt, others still receive', async ({ head, released }) => {
    const s = await setup();
    const { dp, a, b, p, rings } = s;
    dp.receiveBurst([frameTo(MA), frameTo(MB)]);
    rings.a.drain();
    rings.b.drain();
    const idx = indices(dp, rings.a.byteOffset);
    const h = idx[HEAD]!;
    idx[HEAD] = head(h) | 0;
    idx[TAIL] = idx[HEAD]!;
    idx[RELEASED] = released(h) | 0;
    const corrupt = [idx[HEAD], idx[TAIL], idx[RELEASED]];
    const data = new Uint8Array(dp.memory.buffer, rings.a.byteOffset + 128, RING);
    const before = data.slice();

    const toB = frameTo(MB, 80, 0x44);
    const bcast = frameTo(BCAST, 70, 0x55);
    dp.receiveBurst([frameTo(MA), toB, bcast]);
    const c = dp.counters();
    expect({ ringCorrupt: c.ringCorrupt, ringFull: c.ringFull }).toEqual({ ringCorrupt: 2, ringFull: 0 });
    expect(dp.clientCounters(a.id)).toEqual({ frames: 1, bytes: 60, broadcast: 0, multicast: 0, ringDrops: 2, poolDrops: 0 });
    expect(dp.clientCounters(b.id)).toEqual({ frames: 3, bytes: 60 + 80 + 70, broadcast: 1, multicast: 0, ringDrops: 0, poolDrops: 0 });
    expect(rings.b.drain()).toEqual([toB, bcast]);
    expect(rings.p.drain()).toEqual([bcast]);
    expect(dp.clientCounters(p.id).ringDrops).toBe(0);
    // The producer wrote nothing into the corrupt ring: not its slots, not its indices.
    expect([idx[HEAD], idx[TAIL], idx[RELEASED]]).toEqual(corrupt);
    expect(Buffer.compare(data, before)).toBe(0);

    // Once the consumer's indices are sane again, delivery resumes.
    idx[HEAD] = h;
    idx[TAIL] = h;
    idx[RELEASED] = h;
    const again = frameTo(MA, 90, 0x66);
    dp.receive(again);
    expect(rings.a.drain()).toEqual([again]);
    expect(dp.clientCounters(a.id)).toMatchObject({ frames: 2, ringDrops: 2 });
  });

  it('indices running past 2^32 are no corruption', async () => {
    const s = await setup();
    const { dp, rings } = s;
    const idx = indices(dp, rings.a.byteOffset);
    // Empty, two slots before the counters wrap: the next frames straddle 2^32.
    for (const i of [HEAD, TAIL, RELEASED]) idx[i] = 0xffff_fffe | 0;
    const frames = [frameTo(MA, 60, 1), frameTo(MA, 61, 2), frameTo(MA, 62, 3)];
    dp.receiveBurst(frames);
    expect(dp.counters().ringCorrupt).toBe(0);
    expect(rings.a.drain()).toEqual(frames);
    expect(idx[HEAD]).toBe(1);
    expect([idx[TAIL], idx[RELEASED]]).toEqual([1, 1]);
  });
});

/** The ring's slots (after the 128-byte header). */
const ringData = (dp: DataPlane, ringOffset: number): DataView => new DataView(dp.memory.buffer, ringOffset + 128, RING);

/** Writes slot `i` (a free-running index) as a producer never would: offset, length, verdict 0, state word. */
function writeSlot(d: DataView, i: number, offset: number, length: number, state: number): void {
  const at = (i & (SLOTS - 1)) * 16;
  d.setUint32(at, offset, true);
  d.setUint32(at + 4, length, true);
  d.setUint32(at + 8, 4, true);
  d.setUint32(at + 12, state, true);
}

// What a consumer finds: indices or slots no producer writes. `good` frames precede the damage. Once the consumer reset
// the ring its indices agree again, so delivery resumes.
const CONSUMER_CORRUPT: { name: string; good: number; damage: (idx: Int32Array, data: DataView) => void }[] = [
  { name: 'tail 2^31 slots behind head', good: 0, damage: (idx) => void (idx[TAIL] = (idx[HEAD]! - 0x8000_0000) | 0) },
  { name: 'tail ahead of head', good: 0, damage: (idx) => void (idx[TAIL] = (idx[HEAD]! + 4) | 0) },
  { name: 'released ahead of tail', good: 0, damage: (idx) => void (idx[RELEASED] = (idx[TAIL]! + 1) | 0) },
  { name: 'head beyond a full ring', good: 0, damage: (idx) => void (idx[HEAD] = (idx[HEAD]! + SLOTS + 1) | 0) },
  {
    name: 'garbage in both words',
    good: 0,
    damage: (idx) => {
      idx[HEAD] = 0xdead_beef | 0;
      idx[TAIL] = 0x1234_5677;
    },
  },
  ...[
    { what: 'a length over maxFrameLength', offset: 0, length: MAX_FRAME + 1, state: 0 },
    { what: 'a runt length', offset: 0, length: 4, state: 0 },
    { what: 'a frame running past the pool', offset: POOL - 30, length: 60, state: 0 },
    { what: 'an offset of 2^32 - 1', offset: 0xffff_ffff, length: 60, state: 0 },
    { what: 'a lane that does not exist', offset: 0, length: 60, state: 5 },
    { what: 'a state no producer writes', offset: 0, length: 60, state: 0x400 },
    { what: 'a taken state before the consumer took it', offset: 0, length: 60, state: 0x100 },
  ].map(({ what, offset, length, state }) => ({
    name: `a slot with ${what}`,
    good: 0,
    damage: (idx: Int32Array, d: DataView) => {
      writeSlot(d, idx[HEAD]!, offset, length, state);
      idx[HEAD] = (idx[HEAD]! + 1) | 0;
    },
  })),
  {
    name: 'a slot of length 2^32 - 2 after two good frames',
    good: 2,
    damage: (idx, d) => {
      writeSlot(d, idx[HEAD]!, 0, 0xffff_fffe, 0);
      idx[HEAD] = (idx[HEAD]! + 1) | 0;
    },
  },
];

describe('a consumer polling a corrupt ring', () => {
  it.each(CONSUMER_CORRUPT)(
    '$name: poll reads the good frames, counts ringCorrupt once, empties the ring and returns',
    async ({ good, damage }) => {
      const s = await setup();
      const { dp, a, rings } = s;
      dp.receiveBurst([frameTo(MA), frameTo(MB)]);
      for (const ring of [rings.a, rings.b, rings.p]) ring.drain();
      const goodFrames = Array.from({ length: good }, (_, i) => frameTo(MA, 60 + i, 0x30 + i));
      dp.receiveBurst(goodFrames);
      const idx = indices(dp, rings.a.byteOffset);
      damage(idx, ringData(dp, rings.a.byteOffset));
      const before = dp.counters().ringCorrupt;

      const read: Uint8Array[] = [];
      // A bound far above any sane ring: a poll that walks garbage stops here instead of running for minutes.
      expect(rings.a.poll((f) => read.push(f.slice()), 100_000)).toBe(good);
      expect(read).toEqual(goodFrames);
      expect(dp.counters().ringCorrupt).toBe(before + 1);
      expect(rings.a.pending).toBe(0);
      // Polling again finds an empty ring: nothing more is counted.
      expect(rings.a.poll(() => undefined, 100_000)).toBe(0);
      expect(dp.counters().ringCorrupt).toBe(before + 1);

      const next = frameTo(MA, 72, 0x21);
      dp.receive(next);
      expect(rings.a.drain()).toEqual([next]);
      expect(dp.clientCounters(a.id).ringDrops).toBe(0);
      stillWorksExcept(s, true);
    },
  );
});

/** Broadcast still reaches the other receivers (and `a` when its ring works again). */
function stillWorksExcept({ dp, rings }: Setup, aWorks: boolean): void {
  const f = frameTo(BCAST, 64, 0x77);
  expect(dp.receive(f).rule).toBe('broadcast');
  for (const ring of [rings.p, rings.b]) expect(ring.drain()).toEqual([f]);
  expect(rings.a.drain()).toEqual(aWorks ? [f] : []);
}

describe('full rings', () => {
  it("a full ring drops for its client only, counted as ringFull and that client's ringDrops", async () => {
    const s = await setup(2048);
    const { dp, a, b, p, rings } = s;
    // 2048 bytes hold 128 descriptors.
    const kept = 2048 / 16;
    const order: Uint8Array[] = [];
    let atB = 0;
    let atP = 0;
    for (let i = 0; i < 100; i++) {
      const toA = frameTo(MA, 200, i);
      const bcast = frameTo(BCAST, 200, 0x80 + i);
      order.push(toA, bcast);
      dp.receiveBurst([toA, frameTo(MB), bcast]);
      atB += rings.b.drain().length;
      atP += rings.p.drain().length;
    }
    expect(dp.clientCounters(a.id)).toMatchObject({ frames: kept, ringDrops: 200 - kept, poolDrops: 0 });
    expect(dp.counters()).toMatchObject({ ringFull: 200 - kept, ringCorrupt: 0 });
    expect({ b: dp.clientCounters(b.id).ringDrops, p: dp.clientCounters(p.id).ringDrops, atB, atP }).toEqual({
      b: 0,
      p: 0,
      atB: 200,
      atP: 100,
    });
    // a kept the oldest frames, whole and in order: the pool lines under them were never handed out again.
    expect(rings.a.drain()).toEqual(order.slice(0, kept));
    const next = frameTo(MA, 100, 0x99);
    dp.receive(next);
    expect(rings.a.drain()).toEqual([next]);
  });

  it.each([
    { name: 'as many frames as slots all fit', count: 128, fits: 128 },
    { name: 'one more and the last one drops', count: 129, fits: 128 },
  ])('$name', async ({ count, fits }) => {
    const { dp, a, rings } = await setup(2048);
    dp.receiveBurst(Array.from({ length: count }, (_, i) => frameTo(MA, 60, i)));
    expect(dp.clientCounters(a.id)).toMatchObject({ frames: fits, ringDrops: count - fits });
    expect(dp.counters().ringFull).toBe(count - fits);
    expect(rings.a.drain().map((f) => f[59])).toEqual(Array.from({ length: fits }, (_, i) => i));
  });
});

// ---- table churn ---------------------------------------------------------------------------------------------------

describe('table churn', () => {
  it('finds every present MAC and no removed one through 100,000 adds and removes in random order', async () => {
    // 255 addresses over a 512-slot table: half full, so removals keep shifting long probe runs.
    const nic = new Nic({ primary: PRIMARY, unicastEntries: 255, multicastEntries: 0, maxAddresses: 255, maxClients: 2 });
    const dp = await DataPlane.create(nic, { maxGroups: 1, burst: 256, lanes: 1, seed: 0x5eed });
    const c = nic.openClient('churn');
    let x = 7;
    const rnd = (n: number): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n;
    // MAC-48 and EUI-64 keys, including EUI-64s whose 64-bit table key equals a MAC-48's.
    const universe: Mac[] = [];
    for (let i = 0; i < 400; i++) universe.push(Mac.fromNumber(0x0200_0000_0000 + i * 0x1_0001));
    for (let i = 0; i < 100; i++) {
      const b = new Uint8Array(8);
      universe[i]!.writeTo(b, 0);
      universe.push(Mac.fromBytes(b));
      universe.push(Mac.parse(`02:00:00:ff:fe:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`));
    }
    const present = new Map<number, number>(); // universe index → slot
    const check = (): void => {
      const verdicts = dp.classifyKeys(universe);
      const wrong = universe
        .map((m, i) => ({ mac: m.toString(), present: present.has(i), rule: verdicts[i]!.rule, deliver: verdicts[i]!.deliver }))
        .filter((v) => (v.present ? v.rule !== 'unicast-exact' || v.deliver.join() !== String(c.id) : v.rule !== 'drop-unknown'));
      expect(wrong).toEqual([]);
    };
    let ops = 0;
    while (ops < 100_000) {
      const i = rnd(universe.length);
      const slot = present.get(i);
      if (slot !== undefined) {
        c.addressRemove(slot);
        present.delete(i);
        ops++;
        // Often the very MAC just removed comes straight back.
        if (rnd(3) === 0) {
          present.set(i, c.addressAdd(universe[i]!).slot);
          ops++;
        }
      } else if (present.size < 254) {
        present.set(i, c.addressAdd(universe[i]!).slot);
        ops++;
      }
      if (ops % 2_000 < 2) check();
    }
    check();
    expect(present.size).toBeGreaterThan(200);
    // Frames agree with the keys.
    const mac48 = universe.filter((m) => m.kind === 'mac48');
    const rules = mac48.map((m) => dp.classify(frameTo(m.toString())).rule);
    expect(rules).toEqual(mac48.map((m) => (present.has(universe.indexOf(m)) ? 'unicast-exact' : 'drop-unknown')));
  });
});
