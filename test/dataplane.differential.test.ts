// Differential test: the Wasm data plane against the reference filter on random NIC states and syzkaller-style destinations.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataPlane, Mac, MacslotError, Nic, RULES, classifyFrame, classifyKey, type Build, type NicClient, type Rule, type Verdict } from 'macslot';

const MAX_FRAME = 1522;
const GROUPS = ['01:00:5e:00:00:01', '33:33:00:00:00:01', '33:33:ff:00:00:01', '01:00:5e:00:00:fb', '33:33:00:00:00:fb', '01:80:c2:00:00:0e', '01:00:5e:7f:ff:fa', '33:33:00:01:00:02'];
const LOCALS = ['02:08:20:00:00:01', '02:08:20:00:00:02', '02:08:20:00:00:03', '02:00:00:ff:fe:00:00:01', '00:1b:21:00:00:07'];

type Op = [kind: number, client: number, arg: number];

const configArb = fc.record({
  factory: fc.integer({ min: 0, max: 6 }),
  unicast: fc.integer({ min: 0, max: 6 }),
  multicast: fc.integer({ min: 0, max: 3 }),
  reject: fc.boolean(),
  hash: fc.constantFrom<false | 0 | 1 | 2 | 3>(false, 0, 1, 2, 3),
});
const opsArb = fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 4 }), fc.nat()), { maxLength: 40 });

/** Applies a random command; the control plane may refuse it, which is part of the state space. */
function apply(nic: Nic, clients: NicClient[], [kind, who, arg]: Op): void {
  const c = clients[who % clients.length]!;
  const slots = c.slots();
  const slot = slots.length > 0 ? slots[arg % slots.length]! : arg % 8;
  try {
    switch (kind) {
      case 0: case 1: c.addressReserve(); break;
      case 2: c.addressAdd(LOCALS[arg % LOCALS.length]!); break;
      case 3: c.addressModify(slot, Mac.fromNumber(0x0200_0000_1000 + (arg % 64))); break;
      case 4: c.multicastJoin(GROUPS[arg % GROUPS.length]!); break;
      case 5: c.multicastLeave(GROUPS[arg % GROUPS.length]!); break;
      case 6: c.setBroadcast(arg % 2 === 0); break;
      case 7: c.setPromiscuous(arg % 3 === 0); break;
      case 8: if (nic.addressGet(slot).kind === 'factory' || nic.addressGet(slot).kind === 'local') c.addressUnreserve(slot); else c.addressRemove(slot); break;
      case 9: c.addressAdd(); break;
    }
  } catch (err) {
    if (!(err instanceof MacslotError)) throw err;
  }
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** Destinations as syzkaller draws them: programmed addresses and their near misses are most likely. */
function destinations(nic: Nic, random: () => number, n: number): Uint8Array[] {
  const slotMacs = nic.slots().map((s) => s.mac).filter((m) => m.kind === 'mac48');
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const r = random();
    let dst: Uint8Array;
    if (r < 0.05) dst = new Uint8Array(6);
    else if (r < 0.35) dst = pick(slotMacs).toBytes();
    else if (r < 0.5) {
      dst = pick(slotMacs).toBytes();
      const bit = Math.floor(random() * 48);
      dst[bit >> 3]! ^= 1 << (bit & 7);
    } else if (r < 0.6) dst = Mac.parse('ff:ff:ff:ff:ff:ff').toBytes();
    else if (r < 0.75) dst = Mac.parse(pick(GROUPS)).toBytes();
    else if (r < 0.85) {
      // Same last two bytes as a group: the MTA hash cannot tell them apart.
      dst = Mac.parse(pick(GROUPS)).toBytes();
      dst[0] = 0x01 | (Math.floor(random() * 128) << 1);
      dst[2] = Math.floor(random() * 256);
    } else dst = Uint8Array.from({ length: 6 }, () => Math.floor(random() * 256));
    const rl = random();
    const length = rl < 0.03 ? Math.floor(random() * 14) : rl < 0.05 ? MAX_FRAME + 1 + Math.floor(random() * 100) : 60 + Math.floor(random() * 1455);
    const frame = new Uint8Array(length);
    frame.set(dst.subarray(0, Math.min(6, length)));
    if (length > 6) frame[Math.min(length - 1, 6 + Math.floor(random() * 6))] = 0x99;
    out.push(frame);
  }
  return out;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

const isMulticastDst = (f: Uint8Array): boolean => f.length >= 14 && (f[0]! & 1) === 1 && !f.subarray(0, 6).every((b) => b === 0xff);

type Config = { factory: number; unicast: number; multicast: number; reject: boolean; hash: false | 0 | 1 | 2 | 3 };

async function compare(build: Build, c: Config, ops: Op[], seed: number, frameCount: number): Promise<number> {
  const nic = new Nic({
    primary: '00:14:4f:00:00:00',
    factory: { base: '00:14:4f:00:00:01', count: c.factory },
    unicastEntries: c.unicast,
    multicastEntries: c.multicast,
    overflow: c.reject ? 'reject' : 'promiscuous',
    multicastHash: c.hash === false ? false : { filterType: c.hash },
    maxClients: 8,
    maxFrameLength: MAX_FRAME,
    random: (out) => out.fill(seed & 0xff),
  });
  const dp = await DataPlane.create(nic, { build, burst: 64, ringBytes: 1 << 17, lanes: 1, seed });
  const clients = [nic.primaryClient, ...['a', 'b', 'c'].map((n) => nic.openClient(n)), nic.openClient('tap', { allowPromiscuous: true })];
  for (const op of ops) apply(nic, clients, op);

  const frames = destinations(nic, rng(seed), frameCount);
  const state = nic.filterState();
  const expectRules = new Map<Rule, number>();
  const expectClients = new Map<number, { frames: number; bytes: number; broadcast: number; multicast: number }>();
  const before = dp.counters().rules;
  for (let start = 0; start < frames.length; start += dp.burst) {
    const chunk = frames.slice(start, start + dp.burst);
    const refs: Verdict[] = chunk.map((f) => classifyFrame(state, f));
    expect(dp.load(chunk)).toBe(chunk.length);
    dp.classifyBurst(chunk.length);
    const viaClassify = Array.from(dp.verdicts.subarray(0, chunk.length));
    dp.rxBurst(chunk.length);
    for (let i = 0; i < chunk.length; i++) {
      const ref = refs[i]!;
      const got = dp.decode(dp.verdicts[i]!);
      if (got.rule !== ref.rule || got.path !== ref.path || got.deliver.join() !== ref.deliver.join() || viaClassify[i] !== dp.verdicts[i]) {
        expect({ frame: Array.from(chunk[i]!.subarray(0, 6)), length: chunk[i]!.length, got, viaClassify: dp.decode(viaClassify[i]!) }).toEqual({ frame: Array.from(chunk[i]!.subarray(0, 6)), length: chunk[i]!.length, got: ref, viaClassify: ref });
      }
      expectRules.set(ref.rule, (expectRules.get(ref.rule) ?? 0) + 2);
      for (const id of ref.deliver) {
        const e = expectClients.get(id) ?? { frames: 0, bytes: 0, broadcast: 0, multicast: 0 };
        e.frames++;
        e.bytes += chunk[i]!.length;
        if (ref.rule === 'broadcast') e.broadcast++;
        else if (isMulticastDst(chunk[i]!)) e.multicast++;
        expectClients.set(id, e);
      }
    }
    for (const cl of clients) {
      // Every delivered frame is in its receiver's ring, byte for byte, in order.
      const want = chunk.filter((_, i) => refs[i]!.deliver.includes(cl.id));
      const got = dp.ring(cl.id).drain();
      expect(got.length).toBe(want.length);
      got.forEach((f, i) => {
        if (!sameBytes(f, want[i]!)) expect(Array.from(f)).toEqual(Array.from(want[i]!));
      });
    }
  }
  const after = dp.counters();
  for (const r of RULES) expect([r, after.rules[r] - before[r]]).toEqual([r, expectRules.get(r) ?? 0]);
  for (const cl of clients) expect(dp.clientCounters(cl.id)).toEqual({ ...(expectClients.get(cl.id) ?? { frames: 0, bytes: 0, broadcast: 0, multicast: 0 }), ringDrops: 0 });
  expect(after.ringFull + after.ringCorrupt).toBe(0);

  // Key bursts: every slot MAC (both kinds) and its near misses, against classifyKey.
  const keys = nic.slots().flatMap((s) => [s.mac, Mac.fromBytes(s.mac.toBytes().map((b, i) => (i === s.mac.length - 1 ? b ^ 1 : b)))]);
  keys.push(...GROUPS.map((g) => Mac.parse(g)), Mac.parse('ff:ff:ff:ff:ff:ff'), Mac.parse('ff:ff:ff:ff:ff:ff:ff:ff'), Mac.parse('02:00:00:00:00:01'));
  expect(dp.classifyKeys(keys)).toEqual(keys.map((k) => classifyKey(state, k)));
  dp.close();
  return frames.length;
}

describe('Wasm data plane against the reference filter', () => {
  it('agrees on 1,000,000 frames over random NIC states (release build)', async () => {
    let total = 0;
    await fc.assert(
      fc.asyncProperty(configArb, opsArb, fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (cfg, ops, seed) => {
        total += await compare('release', cfg, ops, seed, 5_000);
      }),
      { numRuns: Number(process.env.MACSLOT_DIFF_RUNS ?? 200) },
    );
    expect(total).toBeGreaterThanOrEqual(1_000_000);
  });

  it('agrees on the debug build', async () => {
    let total = 0;
    await fc.assert(
      fc.asyncProperty(configArb, opsArb, fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (cfg, ops, seed) => {
        total += await compare('debug', cfg, ops, seed, 2_000);
      }),
      { numRuns: 50 },
    );
    expect(total).toBe(100_000);
  });
});
