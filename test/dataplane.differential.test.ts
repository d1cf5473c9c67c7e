// Differential test: the Wasm data plane against the reference filter, frame by frame and counter by counter, over random NIC
// states that keep changing between bursts, with destinations drawn the way syzkaller draws them.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DataPlane,
  Mac,
  MacslotError,
  Nic,
  RULES,
  classifyFrame,
  classifyKey,
  type Build,
  type FilterState,
  type NicClient,
  type Rule,
  type Verdict,
} from 'macslot';
import { compileDebugDataPlane } from 'macslot/debug';

const PRIMARY = '00:14:4f:00:00:00';
const LINK_LOCAL = '01:80:c2:00:00:0e';
const EUI64_ADDED = ['02:00:00:ff:fe:00:00:01', '02:00:00:ff:fe:00:00:02'];

// 01:00:5e:00:00:01 and 33:33:00:00:00:01 (and 33:33:ff:00:00:01) share their last two bytes, so one MTA bit under every
// filter type; the EUI-64 groups include one whose 64-bit key equals a MAC-48 group's (01:00:5e:00:00:01 followed by 00:00).
const GROUPS = [
  '01:00:5e:00:00:01',
  '33:33:00:00:00:01',
  '33:33:ff:00:00:01',
  '01:00:5e:00:00:fb',
  '33:33:00:00:00:fb',
  LINK_LOCAL,
  '01:00:5e:7f:ff:fa',
  '33:33:00:01:00:02',
  '03:00:00:00:00:00:00:01',
  '01:00:5e:00:00:01:00:00',
];

// Locally administered, cloned universal, another slot's factory MAC, the primary, EUI-64 (one aliasing a MAC-48 key),
// and two that can never be active: the control plane's refusals are part of the state space.
const ADDRESSES = [
  '02:08:20:00:00:01',
  '02:08:20:00:00:02',
  '00:1b:21:00:00:07',
  '00:14:4f:00:00:02',
  PRIMARY,
  ...EUI64_ADDED,
  '02:08:20:00:00:01:00:00',
  '00:00:00:00:00:00',
  '33:33:00:00:00:01',
];

const CLIENTS: { name: string; options: { allowPromiscuous?: boolean; broadcast?: boolean } }[] = [
  { name: 'a', options: {} },
  { name: 'b', options: {} },
  { name: 'quiet', options: { broadcast: false } },
  { name: 'tap', options: { allowPromiscuous: true } },
  { name: 'sniffer', options: { allowPromiscuous: true, broadcast: false } },
];

type Op = [kind: number, who: number, arg: number];

interface Config {
  factory: number;
  unicast: number;
  multicast: number;
  overflow: 'promiscuous' | 'reject';
  hash: false | 0 | 1 | 2 | 3;
  autoActivate: boolean;
  maxFrame: number;
  burst: number;
  lanes: number;
}

const configArb: fc.Arbitrary<Config> = fc.record({
  factory: fc.integer({ min: 0, max: 6 }),
  unicast: fc.integer({ min: 0, max: 6 }),
  multicast: fc.integer({ min: 0, max: 4 }),
  overflow: fc.constantFrom('promiscuous' as const, 'reject' as const),
  hash: fc.constantFrom(false as const, 0 as const, 1 as const, 2 as const, 3 as const),
  autoActivate: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  maxFrame: fc.constantFrom(1514, 1518, 1522),
  burst: fc.constantFrom(1, 13, 64, 256),
  lanes: fc.integer({ min: 1, max: 2 }),
});
const opArb: fc.Arbitrary<Op> = fc.tuple(fc.integer({ min: 0, max: 11 }), fc.nat({ max: CLIENTS.length }), fc.nat({ max: 1 << 16 }));
const opsArb = fc.array(opArb, { maxLength: 24 });
// Commands before the data plane exists (it loads them), then segments after it (it follows them), traffic after each.
const scriptArb = fc.record({ before: opsArb, segments: fc.array(fc.array(opArb, { maxLength: 10 }), { minLength: 1, maxLength: 5 }) });
const seedArb = fc.integer({ min: 1, max: 2 ** 31 - 1 });

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

interface World {
  nic: Nic;
  handles: NicClient[];
  factory: number;
}

function makeWorld(c: Config, seed: number): World {
  const random = xorshift(seed ^ 0x5bd1e995);
  const nic = new Nic({
    primary: PRIMARY,
    factory: { base: '00:14:4f:00:00:01', count: c.factory },
    unicastEntries: c.unicast,
    multicastEntries: c.multicast,
    overflow: c.overflow,
    multicastHash: c.hash === false ? false : { filterType: c.hash },
    autoActivate: c.autoActivate,
    maxClients: 8,
    maxFrameLength: c.maxFrame,
    random: (out) => {
      for (let i = 0; i < out.length; i++) out[i] = Math.floor(random() * 256);
    },
  });
  return { nic, handles: [nic.primaryClient, ...CLIENTS.map((s) => nic.openClient(s.name, s.options))], factory: c.factory };
}

/** Applies one command; a refusal (MacslotError) is an outcome like any other. */
function apply(w: World, [kind, who, arg]: Op): void {
  const i = who % w.handles.length;
  const c = w.handles[i]!;
  const own = c.slots();
  // Mostly a slot the client holds; sometimes any slot number, someone else's or one that does not exist.
  const slot = own.length > 0 && arg % 5 !== 0 ? own[arg % own.length]! : arg % (w.factory + 4);
  try {
    switch (kind) {
      case 0:
        c.addressReserve();
        break;
      case 1:
        c.addressReserve({ slot: 1 + (arg % (w.factory + 1)) });
        break;
      case 2:
        c.addressAdd(ADDRESSES[arg % ADDRESSES.length]!);
        break;
      case 3:
        c.addressAdd();
        break;
      case 4:
        c.addressModify(slot, arg % 3 === 0 ? ADDRESSES[(arg >> 2) % ADDRESSES.length]! : Mac.fromNumber(0x0200_0000_1000 + (arg % 16)));
        break;
      case 5: {
        // Usually the right release call for the slot's kind; now and then the wrong one.
        const factorySlot = slot >= 1 && slot <= w.factory;
        if (factorySlot !== (arg % 7 === 0)) c.addressUnreserve(slot);
        else c.addressRemove(slot);
        break;
      }
      case 6:
        c.multicastJoin(GROUPS[arg % GROUPS.length]!);
        break;
      case 7:
        c.multicastLeave(GROUPS[arg % GROUPS.length]!);
        break;
      case 8:
        c.setBroadcast(arg % 2 === 0);
        break;
      case 9:
        c.setPromiscuous(arg % 3 !== 0);
        break;
      case 10:
        c.close();
        break;
      case 11: {
        // Reopening reuses the lowest free id, so an id's counters and ring pass to another client.
        const spec = CLIENTS[i - 1];
        if (spec !== undefined && !c.open) w.handles[i] = w.nic.openClient(spec.name, spec.options);
        break;
      }
    }
  } catch (err) {
    if (!(err instanceof MacslotError)) throw err;
  }
}

/** Destination classes, as syzkaller's MAC generator weighs them: programmed addresses and their near misses first. */
interface DrawContext {
  random: () => number;
  slotMacs: Uint8Array[];
  joined: Uint8Array[];
  unjoined: Uint8Array[];
  hashWindow: number;
}
const pick = <T>(random: () => number, xs: readonly T[]): T | undefined =>
  xs.length === 0 ? undefined : xs[Math.floor(random() * xs.length)];
const bytes6 = (mac: string | Mac): Uint8Array => (typeof mac === 'string' ? Mac.parse(mac) : mac).toBytes().subarray(0, 6);
const randomBytes = (random: () => number): Uint8Array => Uint8Array.from({ length: 6 }, () => Math.floor(random() * 256));

const DESTINATIONS: { name: string; weight: number; draw: (c: DrawContext) => Uint8Array | undefined }[] = [
  { name: 'zero', weight: 3, draw: () => new Uint8Array(6) },
  {
    name: 'slot MAC (primary, factory, added; an EUI-64 slot by its first six bytes)',
    weight: 28,
    draw: (c) => pick(c.random, c.slotMacs),
  },
  {
    name: 'one bit off a slot MAC',
    weight: 14,
    draw: (c) => {
      const m = pick(c.random, c.slotMacs);
      if (m === undefined) return undefined;
      const out = m.slice();
      const bit = Math.floor(c.random() * 48);
      out[bit >> 3]! ^= 1 << (bit & 7);
      return out;
    },
  },
  { name: 'broadcast', weight: 8, draw: () => bytes6('ff:ff:ff:ff:ff:ff') },
  {
    name: 'one bit off broadcast',
    weight: 2,
    draw: (c) => {
      const out = bytes6('ff:ff:ff:ff:ff:ff');
      const bit = Math.floor(c.random() * 48);
      out[bit >> 3]! ^= 1 << (bit & 7);
      return out;
    },
  },
  { name: 'joined group', weight: 12, draw: (c) => pick(c.random, c.joined) },
  { name: 'unjoined group', weight: 6, draw: (c) => pick(c.random, c.unjoined) },
  {
    name: 'same MTA bit as a group, different address',
    weight: 10,
    draw: (c) => {
      const g = pick(c.random, [...c.joined, ...c.unjoined]);
      if (g === undefined) return undefined;
      const out = randomBytes(c.random);
      out[0] = out[0]! | 1;
      // Keep the bits of (a5 << 8 | a4) that the filter type hashes; randomise the rest.
      const v = (g[5]! << 8) | g[4]!;
      const w = (v & c.hashWindow) | (Math.floor(c.random() * 0x10000) & ~c.hashWindow);
      out[4] = w & 0xff;
      out[5] = (w >> 8) & 0xff;
      return out;
    },
  },
  { name: 'link-local 01:80:c2:00:00:0e', weight: 3, draw: () => bytes6(LINK_LOCAL) },
  { name: 'random unicast or multicast', weight: 14, draw: (c) => randomBytes(c.random) },
];
const TOTAL_WEIGHT = DESTINATIONS.reduce((s, d) => s + d.weight, 0);

function drawContext(nic: Nic, state: FilterState, random: () => number): DrawContext {
  const slotMacs = nic.slots().map((s) => bytes6(s.mac));
  const joinedKeys = new Set([...state.groups.keys()].map(String));
  const groups = GROUPS.map((g) => Mac.parse(g));
  const shift = [4, 3, 2, 0][state.hashFilterType ?? 0]!;
  return {
    random,
    slotMacs,
    joined: groups.filter((g) => joinedKeys.has(String(g.key))).map(bytes6),
    unjoined: groups.filter((g) => !joinedKeys.has(String(g.key))).map(bytes6),
    hashWindow: (0xfff << shift) & 0xffff,
  };
}

function drawDestination(c: DrawContext, seen: Map<string, number>): Uint8Array {
  for (;;) {
    let r = c.random() * TOTAL_WEIGHT;
    const d = DESTINATIONS.find((x) => (r -= x.weight) < 0) ?? DESTINATIONS[0]!;
    const out = d.draw(c);
    if (out !== undefined) {
      seen.set(d.name, (seen.get(d.name) ?? 0) + 1);
      return out;
    }
  }
}

/** Mostly ordinary frames; some runts, the exact edges, and some oversize. */
function drawLength(random: () => number, maxFrame: number): number {
  const r = random();
  if (r < 0.03) return Math.floor(random() * 14);
  if (r < 0.04) return 14;
  if (r < 0.05) return maxFrame;
  if (r < 0.06) return maxFrame + 1;
  if (r < 0.08) return maxFrame + 2 + Math.floor(random() * 199);
  return 60 + Math.floor(random() * (1514 - 60 + 1));
}

const OVERSIZE_SLACK = 208;
const emptyClient = () => ({ frames: 0, bytes: 0, broadcast: 0, multicast: 0 });
const sameVerdict = (a: Verdict, b: Verdict): boolean =>
  a.rule === b.rule && a.path === b.path && a.deliver.length === b.deliver.length && a.deliver.every((x, i) => x === b.deliver[i]);
const hex = (b: Uint8Array): string => Array.from(b.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(':');

interface Tally {
  frames: number;
  rules: Map<Rule, number>;
  destinations: Map<string, number>;
}

/**
 * Runs one NIC life: commands, a data plane created part-way, more commands with traffic after each segment. Every frame is
 * classified by classifyBurst, then by rxBurst on the same descriptors, and by the reference on the same pool bytes.
 */
async function compare(
  build: Build | 'debug',
  cfg: Config,
  script: { before: Op[]; segments: Op[][] },
  seed: number,
  frameCount: number,
  tally: Tally,
): Promise<void> {
  const world = makeWorld(cfg, seed);
  for (const op of script.before) apply(world, op);
  const { nic } = world;
  // Rings hold a whole burst of the largest frames (plus a wrap's padding), so a drain per burst never drops.
  const ringBytes = cfg.burst * (cfg.maxFrame + 16) + cfg.maxFrame + 16;
  const poolBytes = cfg.burst * (cfg.maxFrame + OVERSIZE_SLACK + 8);
  // The debug build comes from macslot/debug, outside the default entry.
  const which = build === 'debug' ? { module: await compileDebugDataPlane() } : { build };
  const dp = await DataPlane.create(nic, { ...which, burst: cfg.burst, lanes: cfg.lanes, ringBytes, poolBytes, seed });
  try {
    expect(dp.burst).toBe(cfg.burst);
    const random = xorshift(seed);
    const rings = Array.from({ length: nic.maxClients }, (_, id) => dp.ring(id));
    const expectClients = rings.map(emptyClient);
    // A reopened client id starts with zero counters (and an empty ring: every ring is drained after each burst).
    const unsubscribe = nic.on((e) => {
      if (e.type === 'client-opened') expectClients[e.clientId] = emptyClient();
    });
    const offsets = new Uint32Array(cfg.burst);
    const lengths = new Uint32Array(cfg.burst);
    const queues: number[][] = rings.map(() => []);
    let done = 0;

    for (const [s, segment] of script.segments.entries()) {
      for (const op of segment) apply(world, op);
      // Now and then rebuild the whole filter from what the data plane has followed: a rebuild must change no verdict.
      if (random() < 0.3) dp.reload();
      const state = nic.filterState();
      const ctx = drawContext(nic, state, random);
      const decoded = new Map<number, Verdict>();
      const decode = (word: number): Verdict => {
        let v = decoded.get(word);
        if (v === undefined) decoded.set(word, (v = dp.decode(word)));
        return v;
      };
      const before = dp.counters();
      const expectRules = new Map<Rule, number>();
      let expectDeliveries = 0;
      const segmentEnd = s === script.segments.length - 1 ? frameCount : Math.floor((frameCount * (s + 1)) / script.segments.length);

      while (done < segmentEnd) {
        // Mostly full bursts; sometimes a partial or an empty one.
        const r = random();
        const n = Math.min(segmentEnd - done, r < 0.02 ? 0 : r < 0.1 ? Math.floor(random() * cfg.burst) + 1 : cfg.burst);
        let off = Math.floor(random() * 8);
        for (let i = 0; i < n; i++) {
          if (i > 0 && random() < 0.03) {
            // Zero-copy lets two descriptors share bytes: the same frame again, or a prefix of it.
            const j = Math.floor(random() * i);
            offsets[i] = offsets[j]!;
            lengths[i] = random() < 0.5 ? lengths[j]! : Math.floor(random() * (lengths[j]! + 1));
          } else {
            const len = drawLength(random, cfg.maxFrame);
            const dst = drawDestination(ctx, tally.destinations);
            const tag = done + i;
            for (let b = 0; b < 6 && b < len; b++) dp.pool[off + b] = dst[b]!;
            for (let b = 6; b < 14 && b < len; b++) dp.pool[off + b] = (tag >>> ((b & 3) * 8)) & 0xff;
            if (len > 14) dp.pool[off + len - 1] = tag & 0xff;
            offsets[i] = off;
            lengths[i] = len;
            off += len + Math.floor(random() * 8);
          }
          dp.descriptors[2 * i] = offsets[i]!;
          dp.descriptors[2 * i + 1] = lengths[i]!;
        }
        expect(off).toBeLessThanOrEqual(dp.pool.length);

        expect(dp.classifyBurst(n)).toBe(n);
        const viaClassify = dp.verdicts.slice(0, n);
        expect(dp.rxBurst(n)).toBe(n);

        for (let i = 0; i < n; i++) {
          const frame = dp.pool.subarray(offsets[i]!, offsets[i]! + lengths[i]!);
          const ref = classifyFrame(state, frame);
          const word = dp.verdicts[i]!;
          const got = decode(word);
          if (word !== viaClassify[i] || !sameVerdict(got, ref)) {
            expect({ dst: hex(frame), length: frame.length, rxBurst: got, classifyBurst: decode(viaClassify[i]!) }).toEqual({
              dst: hex(frame),
              length: frame.length,
              rxBurst: ref,
              classifyBurst: ref,
            });
          }
          // classifyBurst and rxBurst each count every frame.
          expectRules.set(ref.rule, (expectRules.get(ref.rule) ?? 0) + 2);
          tally.rules.set(ref.rule, (tally.rules.get(ref.rule) ?? 0) + 1);
          expectDeliveries += ref.deliver.length;
          const multicast = ref.rule !== 'broadcast' && frame.length > 0 && (frame[0]! & 1) === 1;
          for (const id of ref.deliver) {
            const e = expectClients[id]!;
            e.frames++;
            e.bytes += frame.length;
            if (ref.rule === 'broadcast') e.broadcast++;
            else if (multicast) e.multicast++;
            queues[id]!.push(i);
          }
        }

        // Each receiver's ring holds exactly its frames, in order, byte for byte, with the burst's verdict word.
        for (let id = 0; id < rings.length; id++) {
          const want = queues[id]!;
          let k = 0;
          rings[id]!.poll((got, verdict) => {
            const i = want[k++];
            const frame = i === undefined ? undefined : dp.pool.subarray(offsets[i]!, offsets[i]! + lengths[i]!);
            if (i === undefined || frame === undefined || verdict !== dp.verdicts[i] || Buffer.compare(got, frame) !== 0) {
              expect({ client: id, record: k - 1, length: got.length, dst: hex(got), verdict }).toEqual({
                client: id,
                record: k - 1,
                length: frame?.length,
                dst: frame && hex(frame),
                verdict: i === undefined ? undefined : dp.verdicts[i],
              });
            }
          });
          if (k !== want.length) expect({ client: id, delivered: k }).toEqual({ client: id, delivered: want.length });
          want.length = 0;
        }
        done += n;
      }

      const after = dp.counters();
      for (const rule of RULES) expect([rule, after.rules[rule] - before.rules[rule]]).toEqual([rule, expectRules.get(rule) ?? 0]);
      expect(after.deliveries - before.deliveries).toBe(expectDeliveries);
      expect({ ringFull: after.ringFull, ringCorrupt: after.ringCorrupt }).toEqual({ ringFull: 0, ringCorrupt: 0 });
      for (let id = 0; id < rings.length; id++)
        expect([id, dp.clientCounters(id)]).toEqual([id, { ...expectClients[id]!, ringDrops: 0, poolDrops: 0 }]);
    }
    tally.frames += done;
    unsubscribe();
  } finally {
    dp.close();
  }
}

const newTally = (): Tally => ({ frames: 0, rules: new Map(), destinations: new Map() });

// The coverage checks below need a reproducible run: a fixed seed by default, any other with MACSLOT_DIFF_SEED.
const SEED = Number(process.env.MACSLOT_DIFF_SEED ?? 20261129);

describe('Wasm data plane against the reference filter', () => {
  it('agrees on 1,000,000 frames over random NIC states (release build)', async () => {
    const tally = newTally();
    await fc.assert(
      fc.asyncProperty(configArb, scriptArb, seedArb, async (cfg, script, seed) => {
        await compare('release', cfg, script, seed, 10_000, tally);
      }),
      { numRuns: 100, seed: SEED },
    );
    expect(tally.frames).toBeGreaterThanOrEqual(1_000_000);
    // The generator must reach every verdict a well-formed descriptor can get without VLANs, and every destination class.
    for (const rule of RULES.filter((r) => r !== 'drop-bad-descriptor' && r !== 'drop-vlan'))
      expect([rule, (tally.rules.get(rule) ?? 0) > 0]).toEqual([rule, true]);
    for (const d of DESTINATIONS) expect([d.name, (tally.destinations.get(d.name) ?? 0) > 0]).toEqual([d.name, true]);
  }, 120_000);

  it('agrees on 100,000 frames with the debug build', async () => {
    const tally = newTally();
    await fc.assert(
      fc.asyncProperty(configArb, scriptArb, seedArb, async (cfg, script, seed) => {
        await compare('debug', cfg, script, seed, 4_000, tally);
      }),
      { numRuns: 25, seed: SEED },
    );
    expect(tally.frames).toBe(100_000);
  }, 120_000);
});

// ---- bare keys (link layers other than Ethernet) -------------------------------------------------------------------

/** Flips one bit of a MAC-48 or EUI-64. */
function flip(mac: Mac, bit: number): Mac {
  const b = mac.toBytes();
  b[(bit >> 3) % b.length]! ^= 1 << (bit & 7);
  return Mac.fromBytes(b);
}

/** The other kind holding the same 64-bit table key: a MAC-48 padded with 00:00, or an EUI-64's first six bytes. */
function alias(mac: Mac): Mac {
  const b = mac.toBytes();
  if (b.length === 8) return Mac.fromBytes(b, 0, 6);
  const out = new Uint8Array(8);
  out.set(b);
  return Mac.fromBytes(out);
}

function keysFor(nic: Nic, random: () => number): Mac[] {
  const slots = nic.slots().map((s) => s.mac);
  const groups = GROUPS.map((g) => Mac.parse(g));
  const keys: Mac[] = [...slots, ...groups];
  for (const m of [...slots, ...groups]) keys.push(alias(m), flip(m, Math.floor(random() * 64)), flip(m, 0));
  keys.push(
    ...[
      'ff:ff:ff:ff:ff:ff',
      'ff:ff:ff:ff:ff:ff:ff:ff',
      'ff:ff:ff:ff:ff:ff:00:00',
      'ff:ff:ff:ff:ff:ff:ff:fe',
      '00:00:00:00:00:00',
      '00:00:00:00:00:00:00:00',
    ].map((m) => Mac.parse(m)),
  );
  for (const g of groups) {
    // Same last two bytes as a group, so the same MTA bit, under either kind.
    const b = g.toBytes();
    for (let i = 0; i < b.length - 2; i++) b[i] = Math.floor(random() * 256);
    b[0] = b[0]! | 1;
    keys.push(Mac.fromBytes(b));
  }
  for (let i = 0; i < 16; i++)
    keys.push(Mac.fromBytes(Uint8Array.from({ length: random() < 0.5 ? 6 : 8 }, () => Math.floor(random() * 256))));
  return keys;
}

// Receivers by name: the primary client (its address makes it a broadcast receiver), a, and b.
type Who = 'primary' | 'a' | 'b';
const KEY_CASES: { name: string; key: string; rule: Rule; deliver: Who[] }[] = [
  { name: 'EUI-64 address added with addressAdd', key: EUI64_ADDED[0]!, rule: 'unicast-exact', deliver: ['a'] },
  { name: 'EUI-64 address one bit off', key: '02:00:00:ff:fe:00:00:03', rule: 'drop-unknown', deliver: [] },
  {
    name: 'MAC-48 whose table key equals an added EUI-64 (02:08:20:00:00:01:00:00)',
    key: '02:08:20:00:00:01',
    rule: 'drop-unknown',
    deliver: [],
  },
  { name: 'EUI-64 added over a MAC-48 key', key: '02:08:20:00:00:01:00:00', rule: 'unicast-exact', deliver: ['b'] },
  { name: 'MAC-48 added', key: '02:08:20:00:00:02', rule: 'unicast-exact', deliver: ['b'] },
  { name: 'EUI-64 whose table key equals an added MAC-48', key: '02:08:20:00:00:02:00:00', rule: 'drop-unknown', deliver: [] },
  { name: 'EUI-64 broadcast', key: 'ff:ff:ff:ff:ff:ff:ff:ff', rule: 'broadcast', deliver: ['primary', 'a', 'b'] },
  { name: 'MAC-48 broadcast padded to 64 bits is no broadcast', key: 'ff:ff:ff:ff:ff:ff:00:00', rule: 'drop-multicast', deliver: [] },
  { name: 'joined EUI-64 group', key: '03:00:00:00:00:00:00:01', rule: 'multicast-exact', deliver: ['b'] },
  { name: 'EUI-64 whose table key equals a joined MAC-48 group', key: '33:33:00:00:00:01:00:00', rule: 'drop-multicast', deliver: [] },
  { name: 'joined MAC-48 group', key: '33:33:00:00:00:01', rule: 'multicast-exact', deliver: ['b'] },
];

describe('classifyKeys against classifyKey', () => {
  it.each(KEY_CASES)('$name → $rule', async ({ key, rule, deliver }) => {
    const nic = new Nic({ primary: PRIMARY, unicastEntries: 8, multicastHash: false });
    const dp = await DataPlane.create(nic, { burst: 4, seed: 7 });
    const a = nic.openClient('a');
    const b = nic.openClient('b');
    a.addressAdd(EUI64_ADDED[0]!);
    b.addressAdd('02:08:20:00:00:02');
    b.addressAdd('02:08:20:00:00:01:00:00');
    b.multicastJoin('03:00:00:00:00:00:00:01');
    b.multicastJoin('33:33:00:00:00:01');
    const ids = { primary: nic.primaryClient.id, a: a.id, b: b.id };
    const want: Verdict = { deliver: deliver.map((w) => ids[w]), rule, path: 'hardware' };
    expect(classifyKey(nic.filterState(), Mac.parse(key))).toEqual(want);
    expect(dp.classifyKeys([Mac.parse(key)])).toEqual([want]);
    dp.close();
  });

  it('agrees on random NIC states with EUI-64 addresses and groups', async () => {
    let euiHits = 0;
    let keysTotal = 0;
    await fc.assert(
      fc.asyncProperty(configArb, opsArb, opsArb, seedArb, fc.constantFrom(1, 8, 64), async (cfg, before, after, seed, burst) => {
        const world = makeWorld(cfg, seed);
        // Every run starts with EUI-64 addresses in place (unless the configuration refuses them).
        for (const [i, mac] of EUI64_ADDED.entries()) apply(world, [2, i + 1, ADDRESSES.indexOf(mac)]);
        for (const op of before) apply(world, op);
        const dp = await DataPlane.create(world.nic, { burst, seed, lanes: cfg.lanes });
        try {
          for (const op of after) apply(world, op);
          const state = world.nic.filterState();
          const keys = keysFor(world.nic, xorshift(seed));
          const want = keys.map((k) => classifyKey(state, k));
          const counted = dp.counters().rules;
          const got = dp.classifyKeys(keys);
          keys.forEach((k, i) => {
            if (!sameVerdict(got[i]!, want[i]!)) expect({ key: k.toString(), got: got[i] }).toEqual({ key: k.toString(), got: want[i] });
            if (k.kind === 'eui64' && (want[i]!.rule === 'unicast-exact' || want[i]!.rule === 'software')) euiHits++;
          });
          const now = dp.counters().rules;
          for (const rule of RULES) expect([rule, now[rule] - counted[rule]]).toEqual([rule, want.filter((v) => v.rule === rule).length]);
          keysTotal += keys.length;
        } finally {
          dp.close();
        }
      }),
      { numRuns: 150, seed: SEED },
    );
    expect(euiHits).toBeGreaterThan(0);
    expect(keysTotal).toBeGreaterThan(150 * 64);
  }, 60_000);
});
